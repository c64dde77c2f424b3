import { expect } from 'chai';
import { buildAnnotationPatch, buildImagePatch, type ContainerChange } from '../../../src/rollout/index.js';

const NOW = new Date('2030-01-01T00:00:00.000Z');
const app: ContainerChange = { container: 'app', init: false, from: 'reg/app:1.0.0', to: 'reg/app:1.1.0' };
const init: ContainerChange = { container: 'migrate', init: true, from: 'reg/app:1.0.0', to: 'reg/app:1.1.0@sha256:' + 'a'.repeat(64) };
const annotations = { 'keel.sh/update-time': NOW.toISOString(), 'keelson.dev/update-time': NOW.toISOString() };

describe('rollout patches', () => {
  const cases: Array<{ name: string; kind: 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'CronJob'; rv?: string; changes: ContainerChange[]; want: unknown }> = [
    {
      name: 'Deployment: only the image and the template annotations, with the resourceVersion',
      kind: 'Deployment', rv: '42', changes: [app],
      want: { metadata: { resourceVersion: '42' }, spec: { template: { metadata: { annotations }, spec: { containers: [{ name: 'app', image: 'reg/app:1.1.0' }] } } } },
    },
    {
      name: 'StatefulSet with an init container',
      kind: 'StatefulSet', rv: '7', changes: [app, init],
      want: { metadata: { resourceVersion: '7' }, spec: { template: { metadata: { annotations }, spec: { containers: [{ name: 'app', image: 'reg/app:1.1.0' }], initContainers: [{ name: 'migrate', image: init.to }] } } } },
    },
    {
      name: 'CronJob: inside the job template',
      kind: 'CronJob', rv: '9', changes: [app],
      want: { metadata: { resourceVersion: '9' }, spec: { jobTemplate: { spec: { template: { metadata: { annotations }, spec: { containers: [{ name: 'app', image: 'reg/app:1.1.0' }] } } } } } },
    },
    {
      name: 'DaemonSet without a resourceVersion (no precondition)',
      kind: 'DaemonSet', changes: [app],
      want: { metadata: {}, spec: { template: { metadata: { annotations }, spec: { containers: [{ name: 'app', image: 'reg/app:1.1.0' }] } } } },
    },
  ];
  for (const c of cases) it(c.name, () => expect(buildImagePatch(c.kind, c.rv, c.changes, NOW)).to.deep.equal(c.want));

  it('annotation patches touch metadata (and replicas when asked), never the pod template', () => {
    expect(buildAnnotationPatch('5', 'keelson.dev/hold', '{"a":null}')).to.deep.equal({ metadata: { resourceVersion: '5', annotations: { 'keelson.dev/hold': '{"a":null}' } } });
    expect(buildAnnotationPatch('5', 'keelson.dev/leases', null, 0)).to.deep.equal({ metadata: { resourceVersion: '5', annotations: { 'keelson.dev/leases': null } }, spec: { replicas: 0 } });
  });
});
