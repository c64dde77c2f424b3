import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCommand } from '../../../src/executor/index.js';
import { processGroupMembers } from '../../../src/proc/index.js';
import type { RunProcess } from '../../../src/store/index.js';
import { until } from '../../support/wait.js';

describe('runCommand with its process group recorded before it starts', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'keelson-run-command-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const base = () => ({ cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, log: () => {}, signal: new AbortController().signal });

  it('records the group first, runs the command as keelson\'s child with its exit status, and ends what it left in the background', async () => {
    const recorded: RunProcess[] = [];
    const result = await runCommand('sh', ['-c', `echo $PPID > ${dir}/ppid; sleep 60 & echo $! > ${dir}/bg; exit 3`], {
      ...base(), recordProcess: async (group) => { recorded.push(group); },
    });
    expect(result.exitCode).to.equal(3);
    expect(recorded).to.have.length(1);
    expect(recorded[0]!.command).to.equal('sh');
    expect(Number(readFileSync(`${dir}/ppid`, 'utf8')), 'the command is keelson\'s own child').to.equal(process.pid);
    expect(Number(readFileSync(`${dir}/bg`, 'utf8'))).to.be.greaterThan(0);
    await until(async () => processGroupMembers(recorded[0]!).length === 0, 'the background sleep to be ended', 10_000);
  });

  it('never starts the command when its group cannot be recorded', async () => {
    const lines: string[] = [];
    const result = await runCommand('sh', ['-c', `touch ${dir}/ran`], {
      ...base(), log: (text) => lines.push(text), recordProcess: async () => { throw new Error('store is down'); },
    });
    expect(result.exitCode).to.equal(125);
    expect(lines.join('')).to.contain('cannot record its process: store is down');
    expect(() => readFileSync(`${dir}/ran`), 'the command did not run').to.throw();
  });
});
