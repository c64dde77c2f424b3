import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { constants } from 'node:os';
import type { Command } from 'commander';
import { findOwnWorkload, parseDependencies, recordCiResult, runWithDependencies, type DependencySpec } from '../../deps/index.js';
import { Duration } from '../../domain/index.js';
import { connectKube } from '../../kube/index.js';
import { createLogger } from '../../log/index.js';
import { apiMessage, statusOf, WORKLOAD_KINDS, WorkloadApi, workloadKey, type WorkloadRef } from '../../rollout/index.js';
import { collect, ExitStatus } from '../program.js';
import { Progress } from '../progress.js';
import { ExternalError, isKeelsonError, messageOf, UsageError } from '../../errors.js';

interface CiFlags {
  readonly workload?: string;
  readonly namespace?: string;
  readonly dependency: string[];
  readonly timeout: string;
  readonly leaseTtl: string;
  readonly runId?: string;
  readonly kubeconfig?: string;
}

function parseDuration(flag: string, text: string): Duration {
  const duration = Duration.tryParse(text);
  if (!duration || duration.milliseconds <= 0) throw new UsageError(`${flag}: "${text}" is not a duration (expected e.g. 90s, 5m)`);
  return duration;
}

function parseWorkload(text: string, namespace: string): WorkloadRef {
  const match = /^([a-z]+)\/([a-z0-9][-a-z0-9.]*)$/i.exec(text);
  const aliases: Record<string, WorkloadRef['kind']> = { deploy: 'Deployment', sts: 'StatefulSet', ds: 'DaemonSet', cj: 'CronJob' };
  const kindText = match?.[1]?.toLowerCase() ?? '';
  const kind = WORKLOAD_KINDS.find((k) => k.toLowerCase() === kindText) ?? aliases[kindText];
  if (!match || !kind) throw new UsageError(`--workload: "${text}" is not KIND/NAME (deployment/NAME, statefulset/NAME, daemonset/NAME or cronjob/NAME)`);
  return { kind, namespace, name: match[2]! };
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * `keelson ci -- CMD...`, run inside a build pod: hold the pod's workload, scale its dependencies
 * up, wait until ready, run CMD with their endpoints in the environment, scale them back down and
 * release the hold however CMD ends, and exit with CMD's status. SIGTERM/SIGINT go to CMD first;
 * the cleanup runs after it exits.
 */
export function registerCiCommand(program: Command): void {
  program
    .command('ci')
    .description('in a build pod: hold the workload, scale dependencies up, run CMD, scale them down, exit with its status')
    .argument('<command...>', 'the command to run, after --')
    .option('--workload <kind/name>', 'the workload to hold and read keelson.dev/dependencies from (default: the pod\'s own, from POD_NAME)')
    .option('--namespace <ns>', 'namespace of the workload and dependencies (default: POD_NAMESPACE, else the kubeconfig context\'s)')
    .option('--dependency <name=replicas>', 'a dependency (repeatable, or comma-separated); replaces keelson.dev/dependencies', collect, [])
    .option('--timeout <duration>', 'how long dependencies may take to be ready', '5m')
    .option('--lease-ttl <duration>', 'how long the hold and leases outlive a killed run', '10m')
    .option('--run-id <id>', 'names this run in the hold and leases (default: pod name + random suffix)')
    .option('--kubeconfig <path>', 'kubeconfig file (default: KUBECONFIG, ~/.kube/config or the in-cluster service account)')
    .action(async (command: string[], flags: CiFlags) => {
      const readyTimeout = parseDuration('--timeout', flags.timeout);
      const leaseTtl = parseDuration('--lease-ttl', flags.leaseTtl);
      const dependencies: DependencySpec[] | undefined = flags.dependency.length > 0
        ? parseDependencies('--dependency', flags.dependency.join(','))
        : undefined;
      const kube = connectKube(flags.kubeconfig === undefined ? {} : { file: flags.kubeconfig });
      const namespace = flags.namespace ?? process.env.POD_NAMESPACE ?? kube.namespace ?? 'default';
      const podName = process.env.POD_NAME;
      const workload = flags.workload
        ? parseWorkload(flags.workload, namespace)
        : podName ? await findOwnWorkload(new WorkloadApi(kube), namespace, podName).catch((error: unknown) => { throw explainApiError(error); }) : undefined;
      const holderId = flags.runId ?? `${podName ?? hostname()}-${randomBytes(3).toString('hex')}`;
      const logger = createLogger();

      const abort = new AbortController();
      let child: ReturnType<typeof spawn> | undefined;
      let received: NodeJS.Signals | undefined;
      const onSignal = (signal: NodeJS.Signals): void => {
        received ??= signal;
        if (child && child.exitCode === null) child.kill(signal);
        else abort.abort(new Error(`received ${signal}`));
      };
      for (const signal of SIGNALS) process.on(signal, onSignal);

      const progress = new Progress(logger);
      let status: number;
      try {
        status = await runWithDependencies({
          kube, namespace, holderId, readyTimeout, leaseTtl, logger, signal: abort.signal,
          onStage: (stage) => (stage === undefined ? progress.done() : progress.update(stage)),
          ...(workload ? { workload } : {}),
          ...(dependencies ? { dependencies } : {}),
        }, async (env) => {
          const code = await new Promise<number>((resolve, reject) => {
            child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env: { ...process.env, ...env, KEELSON_RUN_ID: holderId } });
            child.once('error', (error) => reject(new UsageError(`cannot run ${command[0]}: ${error.message}`)));
            child.once('exit', (exit, signal) => resolve(exit ?? 128 + (signal ? constants.signals[signal] : 1)));
          });
          // Still held here, so the images named are the ones that were tested.
          if (workload) {
            await recordCiResult(new WorkloadApi(kube), workload, podName, holderId, code, new Date()).then(
              () => logger.info({ workload: workloadKey(workload), exitCode: code }, 'ci result recorded on the workload'),
              (error: unknown) => logger.warn({ workload: workloadKey(workload), err: messageOf(error) }, 'cannot record the ci result on the workload'),
            );
          }
          return code;
        });
      } catch (error) {
        if (received && abort.signal.aborted) status = 128 + constants.signals[received];
        else throw explainApiError(error);
      } finally {
        progress.done();
        for (const signal of SIGNALS) process.off(signal, onSignal);
        await kube.close();
      }
      if (status !== 0) throw new ExitStatus(status);
    });
}

/**
 * An API server refusal as a one-line error saying what was refused; a 403 also says which role
 * the pod's ServiceAccount lacks, the usual cause in a build pod.
 */
function explainApiError(error: unknown): unknown {
  const status = statusOf(error);
  if (status === undefined || isKeelsonError(error)) return error;
  const hint = status === 403 ? "; bind the keelson-ci ClusterRole (manifests/rbac.yaml) to the pod's ServiceAccount with a RoleBinding in its namespace" : '';
  return new ExternalError(`the Kubernetes API server refused: ${apiMessage(error)}${hint}`, { cause: error });
}
