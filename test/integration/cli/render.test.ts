import { mkdtemp, readFile, readdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { runKeelson } from '../../support/cli.js';
import { cleanupRepos, commitFile, makeRepo } from '../../support/git.js';

const STENCIL_JOB = `apiVersion: batch/v1
kind: Job
metadata:
  name: build-{{ .duat.gitBranch | dnsLabel }}
  namespace: {{ default "ci" .Namespace }}
  annotations:
    note: '{{ .Note }}'
spec:
  template:
    spec:
      containers:
        - name: build
          image: {{ .Image }}
          {{- $b := .duat.gitBranch }}
          args: ["--branch={{ $b }}"]
          env:
{{- range .Env2 }}
            - name: {{ .name }}
              value: "{{ .value }}"
{{- end }}
            - name: REGISTRY
              value: {{ expandenv "$Registry" | b64enc }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg-{{ .duat.gitHash | trunc 7 }}
`;

const VALUES = `Image: reg:5000/team/app:1.0
Registry: reg:5000
duat:
  gitBranch: Feature/Login
  gitHash: 0123456789abcdef
Env2:
  - { name: A, value: "1" }
  - { name: B, value: "2" }
`;

describe('keelson render', function () {
  this.timeout(60_000);
  let dir = '';
  let template = '';
  let values = '';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keelson-render-cli-'));
    template = join(dir, 'job.yaml');
    values = join(dir, 'values.yaml');
    await writeFile(template, STENCIL_JOB);
    await writeFile(values, VALUES);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('renders a stencil template to stdout, --set overriding --values', async () => {
    const result = await runKeelson(['render', template, '--values', values, '--set', 'Note=a,b=c "q"', '--set', 'duat.gitHash=fedcba9876543210']);
    expect(result.stderr).to.equal('');
    expect(result.status).to.equal(0);
    const docs = parseAllDocuments(result.stdout) as unknown as { toJS(): Record<string, any> }[];
    const [job, cm] = docs.map((d) => d.toJS());
    expect(job!.metadata).to.deep.equal({ name: 'build-feature-login', namespace: 'ci', annotations: { note: 'a,b=c "q"' } });
    const container = job!.spec.template.spec.containers[0];
    expect(container.image).to.equal('reg:5000/team/app:1.0');
    expect(container.args).to.deep.equal(['--branch=Feature/Login']);
    expect(container.env).to.deep.equal([
      { name: 'A', value: '1' }, { name: 'B', value: '2' }, { name: 'REGISTRY', value: Buffer.from('reg:5000').toString('base64') },
    ]);
    expect(cm!.metadata.name).to.equal('cfg-fedcba9');
  });

  it('reads the template from stdin with -', async () => {
    const result = await runKeelson(['render', '-', '--set', 'Name=from-stdin'], {
      stdin: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{Name}}\n',
    });
    expect(result.stderr).to.equal('');
    expect(result.status).to.equal(0);
    expect(result.stdout).to.equal('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-stdin\n');
  });

  it('writes -o FILE and nothing to stdout', async () => {
    const out = join(dir, 'out.yaml');
    const result = await runKeelson(['render', template, '--values', values, '--set', 'Note=n', '-o', out]);
    expect(result.stderr).to.equal('');
    expect(result.status).to.equal(0);
    expect(result.stdout).to.equal('');
    expect(await readFile(out, 'utf8')).to.include('name: build-feature-login');
  });

  it('exits 2 naming template, line and key for a missing value, and leaves -o FILE as it was', async () => {
    const out = join(dir, 'kept.yaml');
    await writeFile(out, 'previous\n');
    const result = await runKeelson(['render', template, '--values', values, '-o', out]);
    expect(result.status).to.equal(2);
    expect(result.stdout).to.equal('');
    expect(result.stderr).to.equal(`keelson: ${template}:7: no value for "Note"; pass --set Note=VALUE or add it to a --values file\n`);
    expect(await readFile(out, 'utf8')).to.equal('previous\n');
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
  });

  it('exits 2 for a missing value read from stdin, naming <stdin>', async () => {
    const result = await runKeelson(['render', '-'], { stdin: 'a: 1\nb: {{ .Imagee }}\n' });
    expect(result.status).to.equal(2);
    expect(result.stderr).to.match(/^keelson: <stdin>:2: no value for "Imagee"; pass --set Imagee=VALUE/);
  });

  const failures: [title: string, args: () => string[], stderr: RegExp][] = [
    ['--set without =', () => ['render', template, '--set', 'foo'], /^keelson: --set foo: expected KEY=VALUE/],
    ['a values file that does not exist', () => ['render', template, '--values', join(dir, 'nope.yaml')], /nope\.yaml: cannot read the values file: ENOENT/],
    ['a template that does not exist', () => ['render', join(dir, 'nope-template.yaml')], /nope-template\.yaml: cannot read the template: ENOENT/],
    ['an unsupported Go construct', () => ['render', join(dir, 'with.yaml')], /with\.yaml:2: "with" is not supported/],
    ['output that is not a Kubernetes object, with --kubernetes', () => ['render', join(dir, 'notk8s.yaml'), '--kubernetes'], /notk8s\.yaml: rendered document 1 \(output line 1\): not a Kubernetes object: missing apiVersion, kind, metadata\.name/],
    ['Kubernetes YAML without metadata.name', () => ['render', '-'], /<stdin>: rendered document 1 \(output line 1\): not a Kubernetes object: missing metadata\.name/],
    ['no template argument', () => ['render'], /^keelson: .*template/],
  ];
  for (const [title, args, stderr] of failures) {
    it(`exits 2 with one line for ${title}`, async () => {
      await writeFile(join(dir, 'with.yaml'), 'a: 1\n{{ with .X }}{{ end }}\n');
      await writeFile(join(dir, 'notk8s.yaml'), 'a: {{ .A }}\n');
      const result = await runKeelson([...args(), '--set', 'A=1'], { stdin: 'apiVersion: v1\nkind: ConfigMap\n' });
      expect(result.status).to.equal(2);
      expect(result.stdout).to.equal('');
      expect(result.stderr).to.match(stderr);
      expect(result.stderr.trim().split('\n')).to.have.length(1);
    });
  }

  it('renders any text: a Dockerfile, a registry config, a one-liner from stdin', async () => {
    await writeFile(join(dir, 'Dockerfile.tmpl'), 'FROM {{ .Base }}\nRUN echo "{{ .Registry }}"\n');
    const dockerfile = await runKeelson(['render', join(dir, 'Dockerfile.tmpl'), '--set', 'Base=debian:12', '--set', 'Registry=reg:5000']);
    expect(dockerfile.stderr).to.equal('');
    expect(dockerfile.stdout).to.equal('FROM debian:12\nRUN echo "reg:5000"\n');
    const registry = await runKeelson(['render', '-', '--set', 'Registry=reg:5000'], {
      stdin: '{{ .Registry }}:\n  .*:\n    security:\n      tls: { client: { disabled: true } }\n',
    });
    expect(registry.stdout).to.equal('reg:5000:\n  .*:\n    security:\n      tls: { client: { disabled: true } }\n');
    const oneLiner = await runKeelson(['render', '-', '--set', 'Name=x'], { stdin: 'hello {{ .Name }}' });
    expect(oneLiner.stdout).to.equal('hello x');
  });

  it('reports every missing value and unknown function at once, with their lines', async () => {
    const result = await runKeelson(['render', '-'], { stdin: 'a: {{ .A }}\nb: {{ frob .B }}\nc: {{ .C }}\n' });
    expect(result.status).to.equal(2);
    expect(result.stderr.trim().split('\n')).to.have.length(1);
    expect(result.stderr).to.match(/^keelson: <stdin>: 4 problems: <stdin>:2: unsupported function "frob".*; <stdin>:1: no value for "A".*; <stdin>:2: no value for "B".*; <stdin>:3: no value for "C"/);
  });

  it('expandenv of an unset variable is empty, as in Go; a missing template value is still an error', async () => {
    const env = { ...process.env };
    delete env.NVIDIA_VISIBLE_DEVICES;
    const idiom = 'gpus: {{ expandenv "$NVIDIA_VISIBLE_DEVICES" | empty | ternary "0" "2" }}\n';
    const unset = await runKeelson(['render', '-'], { stdin: idiom, env });
    expect(unset.stderr).to.equal('');
    expect(unset.stdout).to.equal('gpus: 0\n');
    const set = await runKeelson(['render', '-'], { stdin: idiom, env: { NVIDIA_VISIBLE_DEVICES: 'all' } });
    expect(set.stdout).to.equal('gpus: 2\n');
    const strict = await runKeelson(['render', '-'], { stdin: 'x: {{ .NotGiven }}\n' });
    expect(strict.status).to.equal(2);
  });

  it('derives duat values from the git checkout of -C or the current directory; --set wins', async () => {
    const repo = await makeRepo({ branch: 'feature/x' });
    const commit = await commitFile(repo, 'VERSION', '1.4.2\n');
    const tmpl = 'b={{ .duat.gitBranch }} h={{ .duat.gitHash }} v={{ .duat.version }} d={{ .duat.gitDir }}';
    const fromFlag = await runKeelson(['render', '-', '-C', repo], { stdin: tmpl });
    expect(fromFlag.stderr).to.equal('');
    expect(fromFlag.stdout).to.equal(`b=feature/x h=${commit} v=1.4.2 d=${await realpath(repo)}`);
    const fromCwd = await runKeelson(['render', '-', '--set', 'duat.gitBranch=main'], { stdin: tmpl, cwd: repo });
    expect(fromCwd.stdout).to.equal(`b=main h=${commit} v=1.4.2 d=${await realpath(repo)}`);
    const outside = await runKeelson(['render', '-', '-C', dir], { stdin: '{{ .duat.gitHash }}' });
    expect(outside.status, 'not a checkout: no duat values').to.equal(2);
    await cleanupRepos();
  });

  it('says where it looked for duat.version when the checkout has no version, and that --set gives one', async () => {
    const repo = await makeRepo();
    await commitFile(repo, 'README.md', '# no version here\n');
    const tmpl = 'v: {{ .duat.version }}\n';
    const missing = await runKeelson(['render', '-'], { stdin: tmpl, cwd: repo });
    expect(missing.status).to.equal(2);
    expect(missing.stdout).to.equal('');
    expect(missing.stderr.trim().split('\n')).to.have.length(1);
    expect(missing.stderr).to.include('<stdin>:1: no value for "duat.version"')
      .and.include('<repo-version> in README.md').and.include('a VERSION file').and.include('"version" in package.json').and.include('git describe --tags')
      .and.include('--set duat.version=');
    const set = await runKeelson(['render', '-', '--set', 'duat.version=1.0.0'], { stdin: tmpl, cwd: repo });
    expect(set.stdout).to.equal('v: 1.0.0\n');
    await cleanupRepos();
  });

  it('-o FILE is readable by its owner only when the output holds a Secret', async () => {
    const secretOut = join(dir, 'secret.yaml');
    const configOut = join(dir, 'config.yaml');
    const secret = await runKeelson(['render', '-', '--set', 'P=pw', '-o', secretOut], {
      stdin: 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: {{ .P }}\n',
    });
    expect(secret.status, secret.stderr).to.equal(0);
    expect((await stat(secretOut)).mode & 0o777).to.equal(0o600);
    const config = await runKeelson(['render', '-', '-o', configOut], { stdin: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n' });
    expect(config.status, config.stderr).to.equal(0);
    expect((await stat(configOut)).mode & 0o077, 'not a Secret: the usual mode').to.not.equal(0);
  });
});
