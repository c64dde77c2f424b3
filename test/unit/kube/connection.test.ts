import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { expect } from 'chai';
import { InputError } from '../../../src/errors.js';
import { resolveKubeConnection, type KubeConnection } from '../../../src/kube/index.js';

const CA = '-----BEGIN CERTIFICATE-----\nY2E=\n-----END CERTIFICATE-----\n';
const CERT = '-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n';
const b64 = (text: string): string => Buffer.from(text).toString('base64');

describe('resolveKubeConnection: where the API server is and who keelson is', () => {
  let dir: string;
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'keelson-kubeconfig-')); });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  const write = async (name: string, text: string): Promise<string> => {
    const file = join(dir, name);
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, text);
    return file;
  };
  /** No KUBECONFIG, a home without ~/.kube/config and no service account, unless a test gives them. */
  const resolve = (options: Parameters<typeof resolveKubeConnection>[0] = {}): KubeConnection =>
    resolveKubeConnection({ env: {}, home: join(dir, 'home'), serviceAccountDir: join(dir, 'no-sa'), ...options });
  const failure = (run: () => unknown): InputError => {
    try {
      run();
    } catch (error) {
      expect(error).to.be.instanceOf(InputError);
      expect((error as InputError).exitCode).to.equal(2);
      expect((error as Error).message).to.not.include('\n');
      return error as InputError;
    }
    throw new Error('expected an InputError');
  };

  it('reads the current context: server, CA and client certificate from -data fields, and its namespace', async () => {
    const file = await write('config', [
      'apiVersion: v1', 'kind: Config', 'current-context: dev',
      'clusters:',
      `- name: k\n  cluster:\n    server: https://10.0.0.1:6443/\n    certificate-authority-data: ${b64(CA)}\n    tls-server-name: kubernetes`,
      'users:',
      `- name: admin\n  user:\n    client-certificate-data: ${b64(CERT)}\n    client-key-data: ${b64(KEY)}`,
      'contexts:',
      '- name: dev\n  context: { cluster: k, user: admin, namespace: team }',
      '- name: other\n  context: { cluster: k, user: admin }',
    ].join('\n'));
    const c = resolve({ file });
    expect(c.server).to.equal('https://10.0.0.1:6443');
    expect(c.ca?.toString()).to.equal(CA);
    expect(c.cert?.toString()).to.equal(CERT);
    expect(c.key?.toString()).to.equal(KEY);
    expect(c.tlsServerName).to.equal('kubernetes');
    expect(c.insecureSkipTlsVerify).to.equal(false);
    expect(c.namespace).to.equal('team');
    expect(c.auth).to.deep.equal({ kind: 'none' });
    expect(resolve({ file, context: 'other' }).namespace).to.equal(undefined);
  });

  it('reads certificate, key and token files relative to the kubeconfig\'s own folder', async () => {
    await write('kube/certs/ca.crt', CA);
    await write('kube/certs/me.crt', CERT);
    await write('kube/certs/me.key', KEY);
    const file = await write('kube/config', [
      'current-context: c',
      'clusters: [{ name: k, cluster: { server: "https://k:6443", certificate-authority: certs/ca.crt } }]',
      'users: [{ name: u, user: { client-certificate: certs/me.crt, client-key: ./certs/me.key, tokenFile: certs/token } }]',
      'contexts: [{ name: c, context: { cluster: k, user: u } }]',
    ].join('\n'));
    const c = resolve({ file });
    expect(c.ca?.toString()).to.equal(CA);
    expect(c.cert?.toString()).to.equal(CERT);
    expect(c.key?.toString()).to.equal(KEY);
    expect(c.auth).to.deep.equal({ kind: 'token-file', path: join(dir, 'kube/certs/token') });
  });

  it('prefers a -data field to its file, as kubectl does', async () => {
    const file = await write('config', [
      'current-context: c',
      `clusters: [{ name: k, cluster: { server: "https://k", certificate-authority: missing.crt, certificate-authority-data: ${b64(CA)} } }]`,
      'contexts: [{ name: c, context: { cluster: k } }]',
    ].join('\n'));
    expect(resolve({ file }).ca?.toString()).to.equal(CA);
  });

  it('merges the KUBECONFIG files: the first to set the current-context or define a name wins', async () => {
    const first = await write('a/config', [
      'clusters: [{ name: shared, cluster: { server: "https://first" } }]',
      'users: [{ name: u, user: { token: first-token } }]',
    ].join('\n'));
    const second = await write('b/config', [
      'current-context: c',
      'clusters: [{ name: shared, cluster: { server: "https://second" } }]',
      'users: [{ name: u, user: { token: second-token } }]',
      'contexts: [{ name: c, context: { cluster: shared, user: u, namespace: from-second } }]',
    ].join('\n'));
    const third = await write('c/config', 'current-context: ignored\ncontexts: [{ name: ignored, context: { cluster: shared } }]\n');
    const c = resolve({ env: { KUBECONFIG: [first, second, third].join(delimiter) } });
    expect(c.server).to.equal('https://first');
    expect(c.auth).to.deep.equal({ kind: 'token', token: 'first-token' });
    expect(c.namespace).to.equal('from-second');
    expect(c.source).to.include('context c');
  });

  it('skips empty KUBECONFIG entries and empty files, and takes --kubeconfig over KUBECONFIG', async () => {
    const empty = await write('empty', '');
    const real = await write('real', 'current-context: c\nclusters: [{ name: k, cluster: { server: "http://real" } }]\ncontexts: [{ name: c, context: { cluster: k } }]\n');
    const other = await write('other', 'current-context: c\nclusters: [{ name: k, cluster: { server: "http://other" } }]\ncontexts: [{ name: c, context: { cluster: k } }]\n');
    expect(resolve({ env: { KUBECONFIG: `${delimiter}${empty}${delimiter}${real}` } }).server).to.equal('http://real');
    expect(resolve({ file: other, env: { KUBECONFIG: real } }).server).to.equal('http://other');
  });

  it('falls back to ~/.kube/config, then to the pod\'s service account', async () => {
    await write('home/.kube/config', 'current-context: c\nclusters: [{ name: k, cluster: { server: "https://home" } }]\ncontexts: [{ name: c, context: { cluster: k } }]\n');
    expect(resolve().server).to.equal('https://home');

    await write('sa/token', 'sa-token\n');
    await write('sa/ca.crt', CA);
    await write('sa/namespace', 'keelson-system');
    const pod = resolveKubeConnection({ env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, home: join(dir, 'nohome'), serviceAccountDir: join(dir, 'sa') });
    expect(pod.server).to.equal('https://[fd00::1]:443');
    expect(pod.ca?.toString()).to.equal(CA);
    expect(pod.namespace).to.equal('keelson-system');
    expect(pod.auth).to.deep.equal({ kind: 'token-file', path: join(dir, 'sa', 'token') });
    expect(pod.source).to.equal('in-cluster');
  });

  it('tells how to give a kubeconfig when there is none', () => {
    expect(failure(() => resolve()).message).to.match(/^kubeconfig: none found: pass --kubeconfig, set KUBECONFIG/);
  });

  it('leaves credential plugins and auth providers to client-node, with the plugin command made absolute', async () => {
    const file = await write('kube/config', [
      'current-context: c',
      'clusters: [{ name: k, cluster: { server: "https://k" } }]',
      'users:',
      '- name: plugin\n  user:\n    exec: { apiVersion: client.authentication.k8s.io/v1, command: ./bin/get-token, args: [--x] }',
      '- name: gcp\n  user:\n    auth-provider: { name: gcp, config: { access-token: t } }',
      '- name: by-path\n  user:\n    exec: { apiVersion: client.authentication.k8s.io/v1, command: aws }',
      'contexts: [{ name: c, context: { cluster: k, user: plugin } }, { name: g, context: { cluster: k, user: gcp } }, { name: p, context: { cluster: k, user: by-path } }]',
    ].join('\n'));
    const plugin = resolve({ file }).auth;
    expect(plugin.kind).to.equal('client-node');
    expect(plugin.kind === 'client-node' && plugin.user.exec).to.deep.include({ command: join(dir, 'kube/bin/get-token'), args: ['--x'] });
    expect(resolve({ file, context: 'g' }).auth.kind).to.equal('client-node');
    const byPath = resolve({ file, context: 'p' }).auth;
    expect(byPath.kind === 'client-node' && byPath.user.exec).to.deep.include({ command: 'aws' });
  });

  it('reads a token file before a token, and basic auth when there is neither', async () => {
    const file = await write('config', [
      'current-context: a',
      'clusters: [{ name: k, cluster: { server: "https://k" } }]',
      'users: [{ name: both, user: { token: t, tokenFile: /run/token } }, { name: basic, user: { username: ann, password: pw } }]',
      'contexts: [{ name: a, context: { cluster: k, user: both } }, { name: b, context: { cluster: k, user: basic } }]',
    ].join('\n'));
    expect(resolve({ file }).auth).to.deep.equal({ kind: 'token-file', path: '/run/token' });
    expect(resolve({ file, context: 'b' }).auth).to.deep.equal({ kind: 'basic', username: 'ann', password: 'pw' });
  });

  describe('a bad kubeconfig: one line naming the file and the field, exit 2', () => {
    const cases: ReadonlyArray<{ what: string; text: string; message: RegExp; context?: string }> = [
      { what: 'not YAML', text: 'clusters: [\n', message: /config:\d+: not valid YAML/ },
      { what: 'a field of the wrong type', text: 'users: [{ name: admin, user: { token: 42 } }]', message: /config: users\["admin"\]\.user\.token: .*string/ },
      { what: 'a cluster without a server', text: 'clusters: [{ name: k, cluster: {} }]', message: /config: clusters\["k"\]\.cluster\.server: / },
      { what: 'no current-context', text: 'clusters: []', message: /config: current-context: not set/ },
      { what: 'an unknown context', text: 'current-context: nope\ncontexts: [{ name: dev, context: { cluster: k } }]', message: /config: context "nope" is not defined \(contexts: dev\)/ },
      { what: 'an undefined cluster', text: 'current-context: c\ncontexts: [{ name: c, context: { cluster: k } }]', message: /config: context "c": cluster "k" is not defined/ },
      { what: 'an undefined user', text: 'current-context: c\nclusters: [{ name: k, cluster: { server: "https://k" } }]\ncontexts: [{ name: c, context: { cluster: k, user: ghost } }]', message: /config: context "c": user "ghost" is not defined/ },
      { what: 'a server that is not a URL', text: 'current-context: c\nclusters: [{ name: k, cluster: { server: "k:6443" } }]\ncontexts: [{ name: c, context: { cluster: k } }]', message: /config: clusters\["k"\]\.cluster\.server: "k:6443" is not an http/ },
      { what: 'a missing certificate file', text: 'current-context: c\nclusters: [{ name: k, cluster: { server: "https://k", certificate-authority: nope.crt } }]\ncontexts: [{ name: c, context: { cluster: k } }]', message: /config: clusters\["k"\]\.cluster\.certificate-authority: cannot read .*nope\.crt/ },
      { what: 'data that is not base64 PEM', text: 'current-context: c\nclusters: [{ name: k, cluster: { server: "https://k", certificate-authority-data: "not pem" } }]\ncontexts: [{ name: c, context: { cluster: k } }]', message: /config: clusters\["k"\]\.cluster\.certificate-authority-data: not a base64-encoded PEM/ },
      { what: 'a socks proxy', text: 'current-context: c\nclusters: [{ name: k, cluster: { server: "https://k", proxy-url: "socks5://p:1080" } }]\ncontexts: [{ name: c, context: { cluster: k } }]', message: /proxy-url: "socks5:\/\/p:1080" is not an http/ },
    ];
    for (const { what, text, message } of cases) {
      it(what, async () => {
        const file = await write('config', text);
        expect(failure(() => resolve({ file })).message).to.match(message);
      });
    }

    it('a missing file', () => {
      expect(failure(() => resolve({ file: join(dir, 'absent') })).message).to.match(/absent: cannot read the kubeconfig: ENOENT/);
    });
  });
});
