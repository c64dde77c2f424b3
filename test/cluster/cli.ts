/**
 * A test cluster for poking at by hand (`npm run cluster:up` / `npm run cluster:down`): the same
 * kwok cluster the integration tests start (test/support/cluster.ts), kept running after the
 * command ends. State lives in `${XDG_CACHE_HOME:-~/.cache}/keelson-test-cluster/manual`; `up`
 * prints where kubectl is, then `export KUBECONFIG=<path> PATH=<kubectl's dir>:"$PATH"` as its last
 * line, so `eval "$(npm run -s cluster:up | tail -1)"` points the test cluster's kubectl at it. A second `up` reuses a running cluster.
 *
 * `up --real-node` starts the cluster of test/support/real-node.ts instead: a real kubelet node
 * (containerd, runc) beside one fake node, everything inside a network namespace, the API server
 * and the test registry forwarded to 127.0.0.1. State lives in `…/keelson-test-cluster/manual-node`.
 *
 * `agent` is internal: the detached process that creates exec rules and volumes for the cluster
 * (cluster-agent.ts) while it runs; `down` ends it with the rest of the cluster's processes.
 */
import { execFile, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deleteClusterIn, ensureClusterBinaries, startCluster } from '../support/cluster.js';
import { startClusterAgent } from '../support/cluster-agent.js';
import { deleteRealNodeIn, NODE_REGISTRY, REAL_NODE_LABEL, startRealNodeCluster } from '../support/real-node.js';

const NAME = 'keelson-manual';
const stateDir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'keelson-test-cluster', 'manual');
const workdir = join(stateDir, 'kwok');
const kubeconfigPath = join(workdir, 'clusters', NAME, 'kubeconfig.yaml');
const marker = join(stateDir, 'up');
const REAL_NAME = 'keelson-manual-node';
const realStateDir = join(dirname(stateDir), 'manual-node');
const realKubeconfig = join(realStateDir, 'kubeconfig.yaml');

async function upRealNode(): Promise<void> {
  if (await isUp(realKubeconfig)) {
    console.log(`cluster ${REAL_NAME} is already running`);
    console.log(await readFile(join(realStateDir, 'usage.txt'), 'utf8').catch(() => ''));
    console.log(await shellLine(realKubeconfig));
    return;
  }
  await downRealNode();
  await mkdir(realStateDir, { recursive: true });
  const started = Date.now();
  const node = await startRealNodeCluster({ dir: realStateDir, name: REAL_NAME, agent: false });
  spawnAgent(node.cluster.kubeconfigPath, node.cluster.workdir, join(realStateDir, 'logs', 'agent.log'));
  const usage = [
    `real node ${REAL_NAME} (label ${REAL_NODE_LABEL}=real) and 1 fake node (tainted) in network namespace ${node.netns}`,
    `test registry: push to ${node.registryHost} over plain HTTP, e.g.`,
    `  buildah push --tls-verify=false IMAGE docker://${node.registryHost}/team/app:1`,
    `pods pull it as ${NODE_REGISTRY}/team/app:1 (docker.io, quay.io, gcr.io and registry.k8s.io images come from it too)`,
    `a shell inside the namespace (the cluster's own addresses): nsenter --net=/var/run/netns/${node.netns} bash`,
    `logs: ${join(realStateDir, 'logs')}`,
    'stop it with: npm run cluster:down',
  ].join('\n');
  await writeFile(join(realStateDir, 'usage.txt'), `${usage}\n`);
  console.log(`cluster ${REAL_NAME} started in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(usage);
  console.log(await shellLine(realKubeconfig));
}

async function downRealNode(): Promise<void> {
  const wasUp = await readFile(join(realStateDir, 'owner.pid'), 'utf8').then(() => true, () => false);
  await deleteRealNodeIn(realStateDir, REAL_NAME);
  await rm(realStateDir, { recursive: true, force: true });
  if (wasUp) console.log(`cluster ${REAL_NAME} stopped`);
}

/** The agent outlives this command; its command line names the workdir, so `down` finds and ends it. */
function spawnAgent(kubeconfig: string, dir: string, logFile: string): void {
  const log = openSync(logFile, 'a');
  const agent = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'agent', kubeconfig, dir], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  agent.unref();
}

async function up(): Promise<void> {
  if (await isUp(kubeconfigPath)) {
    console.log(`cluster ${NAME} is already running`);
    console.log(await shellLine(kubeconfigPath));
    return;
  }
  await down();
  await mkdir(stateDir, { recursive: true });
  const started = Date.now();
  await startCluster({ workdir, name: NAME, agent: false });
  spawnAgent(kubeconfigPath, workdir, join(stateDir, 'agent.log'));
  await writeFile(marker, `${NAME}\n`);
  console.log(`cluster ${NAME} started in ${((Date.now() - started) / 1000).toFixed(1)} s; exec into a pod runs in ${join(workdir, 'ns', '<namespace>', 'exec')}`);
  console.log(`stop it with: npm run cluster:down`);
  console.log(await shellLine(kubeconfigPath));
}

async function down(): Promise<void> {
  const wasUp = await readFile(marker, 'utf8').then(() => true, () => false);
  await deleteClusterIn(workdir, NAME);
  await rm(stateDir, { recursive: true, force: true });
  if (wasUp) console.log(`cluster ${NAME} stopped`);
}

/** The last line: where kubectl is, and a line for `eval` that sets KUBECONFIG and puts that kubectl on PATH. */
async function shellLine(kubeconfig: string): Promise<string> {
  const { binDir } = await ensureClusterBinaries();
  const quote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;
  return `kubectl: ${join(binDir, 'kubectl')}\nexport KUBECONFIG=${quote(kubeconfig)} PATH=${quote(binDir)}:"$PATH"`;
}

async function isUp(kubeconfig: string): Promise<boolean> {
  try {
    await readFile(kubeconfig, 'utf8');
    const { binDir } = await ensureClusterBinaries();
    return await new Promise((resolve) => {
      execFile(join(binDir, 'kubectl'), ['--kubeconfig', kubeconfig, 'get', '--raw', '/readyz', '--request-timeout=5s'], (error) => resolve(!error));
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
    if (rest.includes('--real-node')) await upRealNode();
    else await up();
    break;
  case 'down':
    await down();
    await downRealNode();
    break;
  case 'agent':
    agent(rest[0]!, rest[1]!);
    break;
  default:
    console.error('usage: node --import tsx test/cluster/cli.ts up [--real-node]|down');
    process.exit(2);
}
