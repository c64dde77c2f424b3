/**
 * manifests/rbac.yaml is enough for the Kubernetes executor and not more. The
 * manifests are applied to the test cluster, a token is minted for keelson's ServiceAccount
 * (TokenRequest API) and the executor runs end to end as that identity; then the API server is
 * asked what else the identity may do.
 */
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { AppsV1Api, AuthenticationV1Api, AuthorizationV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type V1ResourceAttributes } from '@kubernetes/client-node';
import { KubernetesExecutor } from '../../../src/executor/kubernetes/index.js';
import { parseRegistryConfig } from '../../../src/registry/index.js';
import { sharedCluster, type RunningCluster } from '../../support/cluster.js';
import { sourceFixture, testRequest, type SourceFixture } from './kubernetes-fixtures.js';

const MANIFESTS = fileURLToPath(new URL('../../../manifests/', import.meta.url));

/** A kubeconfig for the same API server that authenticates with `token` only. */
function tokenKubeConfig(admin: KubeConfig, token: string): KubeConfig {
  const cluster = admin.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: cluster.server, caData: cluster.caData, caFile: cluster.caFile, skipTLSVerify: cluster.skipTLSVerify }],
    users: [{ name: 'keelson', token }],
    contexts: [{ name: 'keelson', cluster: 'test', user: 'keelson' }],
    currentContext: 'keelson',
  });
  return kc;
}

describe('manifests/rbac.yaml against a kwok cluster', function () {
  this.timeout(120_000);
  let cluster: RunningCluster;
  let fixture: SourceFixture;
  let asKeelson: KubeConfig;

  before(async function () {
    this.timeout(60 * 60_000);
    cluster = await sharedCluster();
    fixture = await sourceFixture();
    for (const file of ['namespace.yaml', 'serviceaccount.yaml', 'rbac.yaml']) {
      await cluster.kubectl(['apply', '-f', `${MANIFESTS}${file}`]);
    }
    const token = await cluster.kubeConfig().makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      name: 'keelson', namespace: 'keelson', body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    asKeelson = tokenKubeConfig(cluster.kubeConfig(), token.status!.token);
  });
  after(() => fixture?.remove());

  async function allowed(attributes: V1ResourceAttributes): Promise<boolean> {
    const review = await asKeelson.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
      body: { spec: { resourceAttributes: attributes } },
    });
    return review.status!.allowed;
  }

  it('is the keelson ServiceAccount, not an admin', async () => {
    const review = await asKeelson.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(review.status?.userInfo?.username).to.equal('system:serviceaccount:keelson:keelson');
  });

  it('runs the Kubernetes executor end to end as the keelson ServiceAccount', async () => {
    const credentials = parseRegistryConfig('"127.0.0.1:5000":\n  ".*":\n    security:\n      basic: { username: robot, password: rbac-pw }\n', 'registry.yaml');
    const req = testRequest(fixture.source, { build: { image: 'team/app' } });
    const result = await new KubernetesExecutor({ kubeConfig: asKeelson, credentials }).execute(req);
    expect(result, `${result.message}\n${req.logs.join('')}`).to.include({ ok: true });
    expect(req.logs.join('')).not.to.contain('forbidden');
  });

  it('keeps a failed run\'s namespace (patch) and cleans expired ones (list, delete) as that identity', async () => {
    const req = testRequest(fixture.source, { build: { image: 'team/app' }, kubernetes: { maxSourceBytes: 10 } });
    const result = await new KubernetesExecutor({ kubeConfig: asKeelson }).execute(req);
    expect(result, result.message).to.include({ ok: false, reason: 'SourceFailed' });
    const ns = await cluster.kubeConfig().makeApiClient(CoreV1Api).readNamespace({ name: req.namespace });
    expect(ns.metadata?.annotations?.['keelson.dev/expires-at']).to.be.a('string');
  });

  const denied: Array<[string, V1ResourceAttributes]> = [
    ['read secrets in any namespace', { verb: 'list', resource: 'secrets' }],
    ['read a secret in kube-system', { verb: 'get', resource: 'secrets', namespace: 'kube-system' }],
    ['read back the registry Secret it wrote', { verb: 'get', resource: 'secrets', namespace: 'keelson-app-main-x' }],
    ['delete deployments', { verb: 'delete', group: 'apps', resource: 'deployments', namespace: 'default' }],
    ['create deployments', { verb: 'create', group: 'apps', resource: 'deployments', namespace: 'default' }],
    ['create clusterrolebindings', { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' }],
    ['create rolebindings', { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'rolebindings', namespace: 'default' }],
    ['escalate a cluster role', { verb: 'escalate', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' }],
    ['update a Job (only create)', { verb: 'update', group: 'batch', resource: 'jobs', namespace: 'default' }],
    ['delete a Job (the namespace goes instead)', { verb: 'delete', group: 'batch', resource: 'jobs', namespace: 'default' }],
    ['impersonate users', { verb: 'impersonate', resource: 'users' }],
    ['touch nodes', { verb: 'patch', resource: 'nodes' }],
    ['attach to pods', { verb: 'create', resource: 'pods', subresource: 'attach', namespace: 'default' }],
    ['create ServiceAccount tokens', { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: 'keelson' }],
  ];
  for (const [what, attributes] of denied) {
    it(`cannot ${what}`, async () => {
      expect(await allowed(attributes)).to.equal(false);
    });
  }

  it('gets 403 from the API server for secrets cluster-wide, deleting a deployment and binding cluster-admin', async () => {
    const status = (promise: Promise<unknown>) => promise.then(() => 200, (error: { code?: number }) => error.code);
    expect(await status(asKeelson.makeApiClient(CoreV1Api).listSecretForAllNamespaces())).to.equal(403);
    expect(await status(asKeelson.makeApiClient(AppsV1Api).deleteNamespacedDeployment({ name: 'anything', namespace: 'default' }))).to.equal(403);
    expect(await status(asKeelson.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
      body: {
        metadata: { name: 'keelson-takes-over' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: 'keelson', namespace: 'keelson' }],
      },
    }))).to.equal(403);
  });
});
