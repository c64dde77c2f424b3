import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { endProcessGroup, isRunning, processGroupMembers, processIdentity } from '../../../src/proc/index.js';
import { until } from '../../support/wait.js';

describe('process groups left behind', function () {
  this.timeout(30_000);

  it('recognises a process by pid and start time, not by pid alone', () => {
    const me = processIdentity(process.pid)!;
    expect(me.startTime).to.match(/^[0-9a-f-]+:\d+$/);
    expect(isRunning(me)).to.equal(true);
    expect(isRunning({ pid: process.pid, startTime: `${me.startTime!.split(':')[0]}:1` }), 'same pid, other start').to.equal(false);
  });

  it('ends every member of a group, also one that ignores SIGTERM and outlived its leader', async () => {
    // The leader starts a child that ignores SIGTERM, then exits: the child keeps the group.
    const leader = spawn('sh', ['-c', 'sh -c \'trap "" TERM; echo $$; sleep 60 & wait\' & sleep 60'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const childPid = Number(await new Promise<string>((resolve) => leader.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()))));
    const identity = processIdentity(leader.pid!)!;
    expect(processGroupMembers(identity)).to.include.members([leader.pid!, childPid]);
    process.kill(leader.pid!, 'SIGKILL');
    await until(async () => !processGroupMembers(identity).includes(leader.pid!), 'the leader to be gone');
    expect(processGroupMembers(identity), 'members outlive the leader').to.include(childPid);

    const ended = await endProcessGroup(identity, { graceMs: 300 });
    expect(ended.found).to.be.at.least(2);
    expect(ended.left).to.equal(0);
    expect(processGroupMembers(identity)).to.deep.equal([]);
  });

  it('leaves a group alone whose leader pid now belongs to a newer process', async () => {
    const other = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    try {
      const identity = processIdentity(other.pid!)!;
      const stale = { pid: other.pid!, startTime: `${identity.startTime!.split(':')[0]}:1` };
      expect(processGroupMembers(stale)).to.deep.equal([]);
      expect((await endProcessGroup(stale, { graceMs: 100 })).found).to.equal(0);
      expect(isRunning(identity), 'still running').to.equal(true);
    } finally {
      other.kill('SIGKILL');
    }
  });
});
