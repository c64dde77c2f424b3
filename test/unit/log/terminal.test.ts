import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { createLogger, TerminalStatus } from '../../../src/log/index.js';

const CLEAR = '\r\x1b[2K';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
}

/** What a terminal shows: each line is what follows the last clear-line on it. */
function visibleLines(text: string): string[] {
  return text.split('\n').map((line) => line.split(CLEAR).at(-1)!);
}

describe('TerminalStatus', () => {
  it('takes the status line away for each write and puts it back below', () => {
    const out = capture();
    const status = new TerminalStatus(out.stream);
    status.show('⠋ building · 0s');
    status.write('log line one\n');
    status.show('⠙ building · 1s');
    status.write('log line two\n');
    status.hide();
    expect(out.text()).to.equal(`${CLEAR}⠋ building · 0s${CLEAR}log line one\n⠋ building · 0s${CLEAR}⠙ building · 1s${CLEAR}log line two\n⠙ building · 1s${CLEAR}`);
    expect(visibleLines(out.text())).to.deep.equal(['log line one', 'log line two', '']);
  });

  it('never draws the status line inside an unfinished line of output', () => {
    const out = capture();
    const other = capture();
    const status = new TerminalStatus(out.stream);
    status.show('⠋ step');
    status.write('partial ', other.stream);
    status.show('⠙ step');
    status.write('rest\n', other.stream);
    expect(other.text()).to.equal('partial rest\n');
    expect(out.text()).to.equal(`${CLEAR}⠋ step${CLEAR}⠙ step`);
  });
});

describe('pretty logs', () => {
  it('take one line per event, fields included', () => {
    const out = capture();
    const logger = createLogger({ pretty: true, destination: out.stream, level: 'info' });
    logger.info({ watch: 'repo^main', commit: 'abc', skipped: 0, nested: { a: 1 } }, 'new commit, triggering pipeline');
    logger.warn({ reason: 'boom' }, 'git poll failed');
    const lines = out.text().trimEnd().split('\n');
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(/^\[\d\d:\d\d:\d\d\] INFO: new commit, triggering pipeline \{"watch":"repo\^main","commit":"abc","skipped":0,"nested":\{"a":1\}\}$/);
    expect(lines[1]).to.match(/WARN: git poll failed \{"reason":"boom"\}$/);
  });
});
