/**
 * A test cluster for poking at by hand (`npm run cluster:up` / `npm run cluster:down`): the same
 * kwok cluster the integration tests start (test/support/cluster.ts), kept running after the
 * command ends. State lives in `${XDG_CACHE_HOME:-~/.cache}/keelson-test-cluster/manual`; `up`
 * prints `KUBECONFIG=<path>` as its last line, so `eval "$(npm run -s cluster:up | tail -1)"`
 * points kubectl at it. A second `up` reuses a running cluster.
 *
 * `agent` is internal: the detached process that creates exec rules and volumes for the cluster
 * (cluster-agent.ts) while it runs; `down` ends it with the rest of the cluster's processes.
 */
import { execFile, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deleteClusterIn, ensureClusterBinaries, startCluster } from '../support/cluster.js';
import { startClusterAgent } from '../support/cluster-agent.js';

const NAME = 'keelson-manual';
const stateDir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'keelson-test-cluster', 'manual');
const workdir = join(stateDir, 'kwok');
const kubeconfigPath = join(workdir, 'clusters', NAME, 'kubeconfig.yaml');
const marker = join(stateDir, 'up');

async function up(): Promise<void> {
  if (await isUp()) {
    console.log(`cluster ${NAME} is already running`);
    console.log(`KUBECONFIG=${kubeconfigPath}`);
    return;
  }
  await down();
  await mkdir(stateDir, { recursive: true });
  const started = Date.now();
  await startCluster({ workdir, name: NAME, agent: false });
  const log = openSync(join(stateDir, 'agent.log'), 'a');
  // The agent's command line names the workdir, so `down` finds and ends it with the cluster.
  const agent = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'agent', kubeconfigPath, workdir], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  agent.unref();
  await writeFile(marker, `${NAME}\n`);
  console.log(`cluster ${NAME} started in ${((Date.now() - started) / 1000).toFixed(1)} s; exec into a pod runs in ${join(workdir, 'ns', '<namespace>', 'exec')}`);
  console.log(`stop it with: npm run cluster:down`);
  console.log(`KUBECONFIG=${kubeconfigPath}`);
}

async function down(): Promise<void> {
  const wasUp = await readFile(marker, 'utf8').then(() => true, () => false);
  await deleteClusterIn(workdir, NAME);
  await rm(stateDir, { recursive: true, force: true });
  if (wasUp) console.log(`cluster ${NAME} stopped`);
}

async function isUp(): Promise<boolean> {
  try {
    await readFile(marker, 'utf8');
    const { binDir } = await ensureClusterBinaries();
    return await new Promise((resolve) => {
      execFile(join(binDir, 'kubectl'), ['--kubeconfig', kubeconfigPath, 'get', '--raw', '/readyz', '--request-timeout=5s'], (error) => resolve(!error));
    });
  } catch {
    return false;
  }
}

function agent(kubeconfig: string, dir: string): void {
  const running = startClusterAgent(kubeconfig, dir);
  const stop = () => { void running.stop().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case 'up':
    await up();
    break;
  case 'down':
    await down();
    break;
  case 'agent':
    agent(rest[0]!, rest[1]!);
    break;
  default:
    console.error('usage: node --import tsx test/cluster/cli.ts up|down');
    process.exit(2);
}
