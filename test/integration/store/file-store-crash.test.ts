import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileStore } from '../../../src/store/index.js';

const WRITER = fileURLToPath(new URL('./fixtures/file-store-writer.ts', import.meta.url));

interface Writer {
  /** Resolves once the writer has reported `count` finished loop rounds. */
  rounds(count: number): Promise<void>;
  kill(): Promise<void>;
}

/** A child process that writes to the store in a tight loop, printing a line per round. */
function startWriter(stateDir: string, name: string): Writer {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, stateDir, name], { stdio: ['ignore', 'pipe', 'pipe'] });
  let done = 0;
  let stderr = '';
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdout.on('data', (d: Buffer) => {
    done += d.toString().split('\n').length - 1;
    for (const w of waiters.filter((x) => done >= x.count)) w.resolve();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    rounds(count) {
      return new Promise((resolve, reject) => {
        if (done >= count) return resolve();
        waiters.push({ count, resolve });
        void exited.then(() => reject(new Error(`writer exited early: ${stderr}`)));
      });
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

describe('FileStore survives kill -9', function () {
  this.timeout(120_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keelson-crash-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads every record, log and state key after writers are killed hard, again and again', async () => {
    for (let round = 0; round < 4; round++) {
      // Two processes on one state dir at once, killed at an arbitrary point of their loop.
      const writers = [startWriter(dir, `a${round}`), startWriter(dir, `b${round}`)];
      await Promise.all(writers.map((w) => w.rounds(2 + round)));
      await Promise.all(writers.map((w) => w.kill()));

      const store = await FileStore.open({ stateDir: dir });
      const runs = await store.listRuns({ limit: 100_000 });
      expect(runs.length).to.be.greaterThan(0);
      for (const run of runs) {
        expect(run.phases[0]!.phase).to.equal('queued');
        expect(run.phases.at(-1)!.phase).to.equal(run.phase);
        if (run.phase === 'succeeded') expect(run.finishedAt).to.be.a('string');
        const { text } = await store.readLog(run.id);
        // Every complete line is one the writer wrote; a cut can only leave the last line short.
        const lines = text.split('\n');
        for (const line of lines.slice(0, -1)) expect(line).to.match(/^line \d+ of \S+ ✓ ünïcode$/);
      }
      for (const name of ['a', 'b']) {
        const state = await store.getState<{ round: number; writer: string }>(`writer:${name}${round}`);
        expect(state, `state of writer ${name}${round}`).to.have.property('writer', `${name}${round}`);
      }
      await store.close();
    }
    // Leftover temp files were cleared when the dir was opened with no writers alive.
    await FileStore.open({ stateDir: dir });
    for (const sub of ['runs', 'state', 'locks']) {
      expect((await readdir(join(dir, sub))).filter((n) => n.includes('.tmp-')), sub).to.deep.equal([]);
    }
  });
});
