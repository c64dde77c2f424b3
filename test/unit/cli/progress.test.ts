import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { Progress } from '../../../src/cli/progress.js';

function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
}

describe('Progress', () => {
  it('on a terminal, redraws one line per stage and clears it when done', () => {
    const out = capture();
    const progress = new Progress(pino({ level: 'silent' }), out.stream, true);
    progress.update('building team/app');
    progress.update('pushing team/app');
    progress.done();
    const text = out.text();
    expect(text).to.match(/\r\x1b\[2K. building team\/app · 0s/);
    expect(text).to.match(/\r\x1b\[2K. pushing team\/app · 0s/);
    expect(text.endsWith('\r\x1b[2K')).to.equal(true);
    expect(text).to.not.contain('\n');
  });

  it('on a terminal that reports 0 columns, shows the whole stage rather than 10 characters of it', () => {
    const out = capture();
    Object.assign(out.stream, { columns: 0 });
    const progress = new Progress(pino({ level: 'silent' }), out.stream, true);
    progress.update('building team/app');
    progress.done();
    expect(out.text()).to.match(/. building team\/app · 0s/);
  });

  it('elsewhere, writes one plain log line per stage and never redraws', () => {
    const logged: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(line) });
    const out = capture();
    const progress = new Progress(logger, out.stream, false);
    progress.update('waiting for dependencies');
    progress.update('waiting for dependencies');
    progress.update('running ./ci.sh');
    progress.done();
    expect(out.text()).to.equal('');
    expect(logged.map((line) => (JSON.parse(line) as { stage: string }).stage)).to.deep.equal(['waiting for dependencies', 'running ./ci.sh']);
  });
});
