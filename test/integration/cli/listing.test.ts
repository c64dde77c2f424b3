import { expect } from 'chai';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ApprovalBook } from '../../../src/rollout/index.js';
import { FileStore, RunReason, type RunRecord } from '../../../src/store/index.js';
import { runKeelson } from '../../support/cli.js';
import { newRun } from '../store/contract.js';

describe('listing commands: -o formats, run prefixes, approvals, read-only state dirs', function () {
  this.timeout(120_000);
  let dir: string;
  let empty: string;
  let store: FileStore;
  const runs: RunRecord[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keelson-cli-listing-'));
    empty = await mkdtemp(join(tmpdir(), 'keelson-cli-listing-empty-'));
    store = await FileStore.open({ stateDir: dir });
    // Ids that share a prefix, as runs started within one second do.
    for (const [id, watch] of [['20260101-101500-aaa111', 'repo-a^main'], ['20260101-101500-aab222', 'repo-b^dev'], ['20260101-101501-ccc333', 'repo-a^main']] as const) {
      const run = await store.createRun(newRun({ id: id as RunRecord['id'], watch }));
      await store.appendLog(run.id, `log of ${id}\n`);
      runs.push(await store.transitionRun(run.id, 'running', RunReason.Started, 'going'));
      await new Promise((r) => setTimeout(r, 5));
    }
    await new ApprovalBook(store).request({ kind: 'Deployment', namespace: 'ci', name: 'app' },
      [{ container: 'app', init: false, from: 'reg/app:1.0.0', to: 'reg/app:1.1.0' }], 2, 24, new Date());
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
    await rm(empty, { recursive: true, force: true });
  });

  it('runs -o json|yaml|name|wide, and --json as before', async () => {
    const ids = [...runs].reverse().map((r) => r.id);
    const json = await runKeelson(['runs', '-o', 'json', '--state-dir', dir]);
    expect(json.status, json.stderr).to.equal(0);
    expect((JSON.parse(json.stdout) as RunRecord[]).map((r) => r.id)).to.deep.equal(ids);
    const legacy = await runKeelson(['runs', '--json', '--state-dir', dir]);
    expect(legacy.stdout).to.equal(json.stdout);
    const yaml = await runKeelson(['runs', '-o', 'yaml', '--state-dir', dir]);
    expect((parse(yaml.stdout) as RunRecord[]).map((r) => r.id)).to.deep.equal(ids);
    const name = await runKeelson(['runs', '--output', 'name', '--state-dir', dir]);
    expect(name.stdout).to.equal(ids.map((id) => `${id}\n`).join(''));
    const wide = await runKeelson(['runs', '-o', 'wide', '--state-dir', dir]);
    expect(wide.stdout.split('\n')[0]).to.match(/^ID\s+KIND\s+WATCH.*IMAGE\s+EXECUTOR\s+IMAGE REF\s+MESSAGE$/);
    expect(wide.stdout).to.contain('going');
    const bad = await runKeelson(['runs', '-o', 'xml', '--state-dir', dir]);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.equal('keelson: -o: unknown format "xml" (expected table, wide, json, yaml, name)\n');
  });

  it('logs takes a unique id prefix and latest (of one watch), and lists the candidates of an ambiguous prefix', async () => {
    const byPrefix = await runKeelson(['logs', '20260101-101501', '--state-dir', dir]);
    expect(byPrefix.status, byPrefix.stderr).to.equal(0);
    expect(byPrefix.stdout).to.equal('log of 20260101-101501-ccc333\n');
    const latest = await runKeelson(['logs', 'latest', '--state-dir', dir]);
    expect(latest.stdout).to.equal('log of 20260101-101501-ccc333\n');
    const latestOfWatch = await runKeelson(['logs', 'latest', '--watch', 'repo-b^dev', '--state-dir', dir]);
    expect(latestOfWatch.stdout).to.equal('log of 20260101-101500-aab222\n');
    const ambiguous = await runKeelson(['logs', '20260101-101500-aa', '--state-dir', dir]);
    expect(ambiguous.status).to.equal(2);
    expect(ambiguous.stderr).to.equal('keelson: run "20260101-101500-aa" matches 2 runs: 20260101-101500-aab222, 20260101-101500-aaa111; give more of the id\n');
  });

  it('approvals prints a header, -o name the ids, and says so when there are none', async () => {
    const table = await runKeelson(['approvals', '--state-dir', dir]);
    expect(table.status, table.stderr).to.equal(0);
    const [header, row] = table.stdout.trimEnd().split('\n');
    expect(header).to.match(/^ID\s+STATUS\s+VOTES\s+DEADLINE\s+WORKLOAD\s+CHANGES$/);
    expect(row).to.match(/^a-[0-9a-f]{10}\s+pending\s+0\/2\s+\S+\s+ci\/deployment\/app\s+app: reg\/app:1.0.0 -> reg\/app:1.1.0$/);
    const names = await runKeelson(['approvals', '-o', 'name', '--state-dir', dir]);
    expect(names.stdout).to.match(/^a-[0-9a-f]{10}\n$/);
    const none = await runKeelson(['approvals', '--state-dir', empty]);
    expect(none.status).to.equal(0);
    expect(none.stdout).to.equal('');
    expect(none.stderr).to.equal('keelson: no pending approvals\n');
  });

  it('runs (and approve) --state-dir of a directory that does not exist is exit 2 and creates nothing', async () => {
    const missing = join(empty, 'typo');
    const result = await runKeelson(['runs', '--state-dir', missing]);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.equal(`keelson: --state-dir ${missing}: no such directory (nothing was recorded there)\n`);
    const vote = await runKeelson(['approve', 'a-0123456789', '--state-dir', missing]);
    expect(vote.status).to.equal(2);
    expect(await stat(missing).then(() => 'created', () => 'absent')).to.equal('absent');
  });

  it('run --help lists only the flags that mean something for one run', async () => {
    const help = await runKeelson(['run', '--help']);
    expect(help.status).to.equal(0);
    expect(help.stdout).to.contain('--step').and.contain('--state-dir');
    expect(help.stdout).to.not.contain('--workers').and.not.contain('--supersede');
  });
});
