import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { runKeelson } from '../../support/cli.js';

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
    ['output that is not a Kubernetes object', () => ['render', join(dir, 'notk8s.yaml')], /notk8s\.yaml: rendered document 1 \(output line 1\): not a Kubernetes object: missing apiVersion, kind, metadata\.name/],
    ['no template argument', () => ['render'], /^keelson: .*template/],
  ];
  for (const [title, args, stderr] of failures) {
    it(`exits 2 with one line for ${title}`, async () => {
      await writeFile(join(dir, 'with.yaml'), 'a: 1\n{{ with .X }}{{ end }}\n');
      await writeFile(join(dir, 'notk8s.yaml'), 'a: {{ .A }}\n');
      const result = await runKeelson([...args(), '--set', 'A=1']);
      expect(result.status).to.equal(2);
      expect(result.stdout).to.equal('');
      expect(result.stderr).to.match(stderr);
      expect(result.stderr.trim().split('\n')).to.have.length(1);
    });
  }
});
