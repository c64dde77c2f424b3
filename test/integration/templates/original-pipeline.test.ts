/**
 * The templates of the original studio-go-runner pipeline (templates/ci-*.yaml), written in the
 * stencil Go-template syntax duat users have: rendered by `keelson render` and by the library
 * (same text), applied to the real test cluster, and read back.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { stringify } from 'yaml';
import { AppsV1Api, BatchV1Api, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { parseDependencies } from '../../../src/deps/index.js';
import { readWorkloadSettings } from '../../../src/rollout/index.js';
import { renderTemplateFile, TemplateValueError, type TemplateValues } from '../../../src/template/index.js';
import { runKeelson, REPO_ROOT } from '../../support/cli.js';
import { eventually, sharedCluster, type RunningCluster } from '../../support/cluster.js';

const suffix = randomBytes(3).toString('hex');
const CI_NS = `ci-go-runner-${suffix}`;
const CACHE_NS = `makisu-cache-${suffix}`;
const BUILD_NS = `imagebuild-${suffix}`;
const REGISTRY = '127.0.0.1:5000';

const template = (name: string): string => join(REPO_ROOT, 'templates', name);

const KEEL_VALUES: TemplateValues = {
  Namespace: CI_NS,
  Registry: REGISTRY,
  duat: { gitBranch: 'feature/184-flux-trial', gitHash: '0123456789abcdef0123456789abcdef01234567', version: '0.9.27' },
  MinioUser: 'UserUser',
  MinioPassword: 'PasswordPassword',
  RabbitUser: 'rabbit',
  RabbitPassword: 'hunter2hunter2',
  PollSchedule: '@every 10s',
};

const CONTAINERIZE_VALUES: TemplateValues = {
  Namespace: BUILD_NS,
  ID: `run-${suffix}`,
  Image: `${REGISTRY}/leafai/studio-go-runner:0.9.27`,
  Registry: REGISTRY,
  duat: { gitBranch: 'main', gitHash: '0123456789abcdef0123456789abcdef01234567', version: '0.9.27' },
  CacheAddr: `redis.${CACHE_NS}.svc.cluster.local:6379`,
};

/** The 1-based line of the first line of `file` containing `needle`. */
async function lineOf(file: string, needle: string): Promise<number> {
  const index = (await readFile(file, 'utf8')).split('\n').findIndex((line) => line.includes(needle));
  if (index < 0) throw new Error(`${needle} not in ${file}`);
  return index + 1;
}

describe('templates of the original studio-go-runner pipeline', function () {
  this.timeout(120_000);
  let cluster: RunningCluster;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  let batch: BatchV1Api;
  let rbac: RbacAuthorizationV1Api;
  let dir = '';

  /** Renders with the CLI (values from a file, as a duat user would pass them) and checks the library agrees. */
  async function render(name: string, values: TemplateValues): Promise<string> {
    const valuesFile = join(dir, `${name}.values.yaml`);
    await writeFile(valuesFile, stringify(values));
    const cli = await runKeelson(['render', template(name), '--values', valuesFile]);
    expect(cli.stderr).to.equal('');
    expect(cli.status).to.equal(0);
    const library = await renderTemplateFile(template(name), values);
    expect(library.text).to.equal(cli.stdout);
    return cli.stdout;
  }

  before(async function () {
    this.timeout(60 * 60_000); // a cold build of the cluster binaries
    cluster = await sharedCluster();
    const kc = cluster.kubeConfig();
    apps = kc.makeApiClient(AppsV1Api);
    core = kc.makeApiClient(CoreV1Api);
    batch = kc.makeApiClient(BatchV1Api);
    rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    dir = await mkdtemp(join(tmpdir(), 'keelson-templates-it-'));
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    for (const name of [CI_NS, CACHE_NS, BUILD_NS]) {
      await core?.deleteNamespace({ name }).catch(() => undefined);
    }
  });

  it('ci-keel.yaml: an annotated build Deployment, minio and RabbitMQ at 0 replicas, their Services and Secrets', async () => {
    const text = await render('ci-keel.yaml', KEEL_VALUES);
    await cluster.kubectl(['apply', '-f', '-'], text);

    const build = await apps.readNamespacedDeployment({ name: 'build', namespace: CI_NS });
    const annotations = build.metadata?.annotations ?? {};
    expect(annotations).to.include({
      'keel.sh/policy': 'force',
      'keel.sh/trigger': 'poll',
      'keel.sh/pollSchedule': '@every 10s',
      'keelson.dev/dependencies': 'minio=1,rabbitmq=1',
    });
    // The rollout controller and `keelson ci` read exactly what the template wrote.
    const settings = readWorkloadSettings(`${CI_NS}/deployment/build`, annotations, build.metadata?.labels);
    expect(settings.trigger).to.equal('poll');
    expect(settings.pollSchedule).to.equal('@every 10s');
    expect(parseDependencies('build', annotations['keelson.dev/dependencies']!)).to.deep.equal([
      { name: 'minio', replicas: 1 }, { name: 'rabbitmq', replicas: 1 },
    ]);
    const container = build.spec?.template?.spec?.containers[0];
    expect(container?.image).to.equal(`${REGISTRY}/leafai/studio-go-runner-standalone-build:feature_184-flux-trial`);
    expect(container?.command).to.deep.equal(['keelson', 'ci', '--', '/bin/sh', '-c', './ci.sh']);
    expect(build.spec?.template?.spec?.serviceAccountName).to.equal('build');

    for (const name of ['minio', 'rabbitmq']) {
      const dependency = await apps.readNamespacedDeployment({ name, namespace: CI_NS });
      expect(dependency.spec?.replicas, name).to.equal(0);
    }
    // The build runs (kwok pods), the dependencies do not until `keelson ci` scales them.
    await eventually(async () => {
      const ready = (await apps.readNamespacedDeployment({ name: 'build', namespace: CI_NS })).status?.readyReplicas;
      if (ready !== 1) throw new Error(`build has ${ready ?? 0} ready replicas`);
    });
    const pods = await core.listNamespacedPod({ namespace: CI_NS });
    expect(pods.items.map((p) => p.metadata?.labels?.app)).to.deep.equal(['build']);

    const services = (await core.listNamespacedService({ namespace: CI_NS })).items.map((s) => s.metadata?.name).sort();
    expect(services).to.deep.equal(['minio-service', 'rabbitmq-service']);
    const decode = (data: Record<string, string> | undefined, key: string): string => Buffer.from(data?.[key] ?? '', 'base64').toString('utf8');
    const minio = await core.readNamespacedSecret({ name: 'minio-credentials', namespace: CI_NS });
    expect(decode(minio.data, 'MINIO_ACCESS_KEY')).to.equal('UserUser');
    expect(decode(minio.data, 'MINIO_SECRET_KEY')).to.equal('PasswordPassword');
    const rabbit = await core.readNamespacedSecret({ name: 'rabbitmq-credentials', namespace: CI_NS });
    expect(decode(rabbit.data, 'RABBITMQ_DEFAULT_USER')).to.equal('rabbit');
    expect(decode(rabbit.data, 'RABBITMQ_DEFAULT_PASS')).to.equal('hunter2hunter2');
    const token = await core.readNamespacedSecret({ name: 'release-github-token', namespace: CI_NS });
    expect(decode(token.data, 'github_token')).to.equal('');
    // Credentials live in Secrets only, never in the ConfigMap.
    const env = await core.readNamespacedConfigMap({ name: 'build-env', namespace: CI_NS });
    expect(JSON.stringify(env.data)).to.not.include('PasswordPassword');
    const role = await rbac.readNamespacedRole({ name: 'keelson-ci', namespace: CI_NS });
    expect(role.rules?.some((r) => r.resources?.includes('deployments') && r.verbs.includes('patch'))).to.equal(true);
  });

  it('ci-containerize-cache.yaml: the Redis layer cache as a Deployment and Service', async () => {
    const text = await render('ci-containerize-cache.yaml', { Namespace: CACHE_NS });
    await cluster.kubectl(['apply', '-f', '-'], text);
    await eventually(async () => {
      const ready = (await apps.readNamespacedDeployment({ name: 'redis', namespace: CACHE_NS })).status?.readyReplicas;
      if (ready !== 1) throw new Error(`redis has ${ready ?? 0} ready replicas`);
    });
    const service = await core.readNamespacedService({ name: 'redis', namespace: CACHE_NS });
    expect(service.spec?.ports?.[0]?.port).to.equal(6379);
    expect(service.spec?.selector).to.deep.equal({ redis: 'true' });
    const args = (await apps.readNamespacedDeployment({ name: 'redis', namespace: CACHE_NS })).spec?.template?.spec?.containers[0]?.args;
    expect(args).to.include.members(['--maxmemory-policy', 'allkeys-lru']);
  });

  it('ci-containerize.yaml: the image-build Job over the source PVC, makisu with the Redis cache or kaniko, runs to completion', async () => {
    await core.createNamespace({ body: { metadata: { name: BUILD_NS } } });
    await eventually(() => core.readNamespacedServiceAccount({ name: 'default', namespace: BUILD_NS }));
    await core.createNamespacedPersistentVolumeClaim({
      namespace: BUILD_NS,
      body: { metadata: { name: 'source' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
    });

    const makisu = await render('ci-containerize.yaml', CONTAINERIZE_VALUES);
    await cluster.kubectl(['apply', '-f', '-'], makisu);
    const jobName = `imagebuilder-run-${suffix}`;
    const job = await batch.readNamespacedJob({ name: jobName, namespace: BUILD_NS });
    expect(job.metadata?.labels?.['keelson.dev/run']).to.equal(`run-${suffix}`);
    expect(job.metadata?.annotations).to.include({
      'keelson.dev/image': `${REGISTRY}/leafai/studio-go-runner:0.9.27`,
      'keelson.dev/git-branch': 'main',
      'keelson.dev/version': '0.9.27',
    });
    const container = job.spec?.template.spec?.containers[0];
    expect(container?.name).to.equal('makisu');
    expect(container?.args).to.include.members([
      `--push=${REGISTRY}`,
      '-t=leafai/studio-go-runner:0.9.27',
      `--redis-cache-addr=redis.${CACHE_NS}.svc.cluster.local:6379`,
    ]);
    expect(job.spec?.template.spec?.volumes?.find((v) => v.name === 'source')?.persistentVolumeClaim?.claimName).to.equal('source');
    await eventually(async () => {
      const conditions = (await batch.readNamespacedJob({ name: jobName, namespace: BUILD_NS })).status?.conditions ?? [];
      if (!conditions.some((c) => c.type === 'Complete' && c.status === 'True')) throw new Error('the build Job has not completed');
    });

    const kaniko = await render('ci-containerize.yaml', { ...CONTAINERIZE_VALUES, ID: `kaniko-${suffix}`, Builder: 'kaniko' });
    await cluster.kubectl(['apply', '-f', '-'], kaniko);
    const kanikoJob = await batch.readNamespacedJob({ name: `imagebuilder-kaniko-${suffix}`, namespace: BUILD_NS });
    expect(kanikoJob.spec?.template.spec?.containers[0]?.args).to.include(`--destination=${REGISTRY}/leafai/studio-go-runner:0.9.27`);
  });

  it('a missing value fails with template:line:key, in the CLI (exit 2) and the library, and renders nothing', async () => {
    const file = template('ci-keel.yaml');
    const { MinioPassword: _dropped, ...values } = KEEL_VALUES;
    const valuesFile = join(dir, 'incomplete.values.yaml');
    await writeFile(valuesFile, stringify(values));
    const line = await lineOf(file, '.MinioPassword | b64enc');

    const cli = await runKeelson(['render', file, '--values', valuesFile]);
    expect(cli.status).to.equal(2);
    expect(cli.stdout).to.equal('');
    expect(cli.stderr).to.include(`${file}:${line}: no value for "MinioPassword"`);

    let error: unknown;
    try {
      await renderTemplateFile(file, values);
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(TemplateValueError);
    expect(error).to.include({ line, key: 'MinioPassword' });

    const containerize = template('ci-containerize.yaml');
    const { duat: _duat, ...withoutDuat } = CONTAINERIZE_VALUES;
    // -C a directory that is not a checkout: no duat values are derived from it
    const missingVersion = await runKeelson(['render', containerize, '-C', dir, '--values', await writeValues('no-duat', { ...withoutDuat, duat: { gitBranch: 'main' } })]);
    expect(missingVersion.status).to.equal(2);
    expect(missingVersion.stderr).to.include(`${containerize}:${await lineOf(containerize, 'keelson.dev/version: {{ .duat.version')}: no value for "duat.version"`);
  });

  async function writeValues(name: string, values: TemplateValues): Promise<string> {
    const file = join(dir, `${name}.values.yaml`);
    await writeFile(file, stringify(values));
    return file;
  }
});
