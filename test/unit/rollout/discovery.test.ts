import { expect } from 'chai';
import { containersOf, isManaged, readWorkloadSettings } from '../../../src/rollout/index.js';
import { pullsTagOnRestart, watchedImages } from '../../../src/rollout/plan.js';
import { trimWorkload } from '../../../src/rollout/discovery.js';
import type { WorkloadKind } from '../../../src/rollout/index.js';

const metadata = {
  name: 'web', namespace: 'prod', uid: 'u-1', resourceVersion: '42', generation: 7,
  managedFields: [{ manager: 'kubectl', fieldsV1: { 'f:spec': {} } }],
  annotations: {
    'keel.sh/policy': 'minor', 'keel.sh/trigger': 'poll', 'keelson.dev/pinDigest': 'true',
    'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(10_000), 'deployment.kubernetes.io/revision': '3',
  },
  labels: { app: 'web', 'keel.sh/pollSchedule': '@every 30s' },
};
const podSpec = {
  containers: [{ name: 'app', image: 'registry.example/team/web:1.0.0', env: [{ name: 'A', value: 'b' }], resources: { limits: { cpu: '1' } } }],
  initContainers: [{ name: 'migrate', image: 'registry.example/team/migrate:1.0.0', command: ['./migrate'] }],
  volumes: [{ name: 'data', emptyDir: {} }],
};

describe('trimWorkload: what the informer cache keeps of a workload', () => {
  const cases: ReadonlyArray<{ kind: WorkloadKind; object: Record<string, unknown> }> = [
    { kind: 'Deployment', object: { metadata, spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: podSpec } }, status: { replicas: 3, conditions: [{ type: 'Available' }] } } },
    { kind: 'StatefulSet', object: { metadata, spec: { serviceName: 'web', template: { spec: podSpec } }, status: { readyReplicas: 3 } } },
    { kind: 'DaemonSet', object: { metadata, spec: { template: { spec: podSpec } } } },
    { kind: 'CronJob', object: { metadata, spec: { schedule: '* * * * *', jobTemplate: { spec: { template: { spec: podSpec } } } }, status: { lastScheduleTime: 'now' } } },
  ];
  for (const { kind, object } of cases) {
    it(`${kind}: keeps identity, keel.sh/keelson.dev metadata and container images, drops the rest`, () => {
      const trimmed = trimWorkload(kind, object);
      expect(trimmed.metadata).to.deep.equal({
        name: 'web', namespace: 'prod', uid: 'u-1', resourceVersion: '42',
        annotations: { 'keel.sh/policy': 'minor', 'keel.sh/trigger': 'poll', 'keelson.dev/pinDigest': 'true' },
        labels: { 'keel.sh/pollSchedule': '@every 30s' },
      });
      expect(containersOf(kind, trimmed, false)).to.deep.equal([{ name: 'app', image: 'registry.example/team/web:1.0.0' }]);
      expect(containersOf(kind, trimmed, true)).to.deep.equal([{ name: 'migrate', image: 'registry.example/team/migrate:1.0.0' }]);
      expect(JSON.stringify(trimmed).length).to.be.below(600); // of more than 10,000
      // The decisions read the same settings from the trimmed object as from the whole one.
      const whole = object as { metadata: typeof metadata };
      expect(isManaged(trimmed.metadata?.annotations, trimmed.metadata?.labels)).to.equal(true);
      expect(readWorkloadSettings('prod/web', trimmed.metadata?.annotations, trimmed.metadata?.labels))
        .to.deep.equal(readWorkloadSettings('prod/web', whole.metadata.annotations, whole.metadata.labels));
    });
  }

  it('keeps the replicas asked for and ready, for the dependencies on the status page', () => {
    const deployment = trimWorkload('Deployment', cases[0]!.object);
    expect((deployment.spec as { replicas?: number }).replicas).to.equal(3);
    expect((deployment as { status?: unknown }).status).to.equal(undefined);
    const statefulSet = trimWorkload('StatefulSet', cases[1]!.object);
    expect((statefulSet as { status?: unknown }).status).to.deep.equal({ readyReplicas: 3 });
  });

  it('keeps each container\'s pull policy: a re-pushed tag is rolled as the tag only to containers that pull it on every start', () => {
    const spec = {
      containers: [{ name: 'app', image: 'registry.example/team/web:main', imagePullPolicy: 'Always' }, { name: 'cached', image: 'registry.example/team/web:main', imagePullPolicy: 'IfNotPresent' }],
    };
    const trimmed = trimWorkload('Deployment', { metadata, spec: { template: { spec } } });
    const settings = readWorkloadSettings('prod/web', trimmed.metadata?.annotations, trimmed.metadata?.labels);
    expect(watchedImages('Deployment', trimmed, settings).map((image) => [image.container, pullsTagOnRestart(image)])).to.deep.equal([['app', true], ['cached', false]]);
  });

  it('keeps a workload without keel metadata or containers readable', () => {
    const trimmed = trimWorkload('Deployment', { metadata: { name: 'plain', namespace: 'default', annotations: { other: 'x' } } });
    expect(trimmed).to.deep.equal({ metadata: { name: 'plain', namespace: 'default', uid: undefined, resourceVersion: undefined }, spec: { template: { spec: { containers: [] } } } });
    expect(isManaged(trimmed.metadata?.annotations, trimmed.metadata?.labels)).to.equal(false);
  });
});
