import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { InputError, UsageError } from '../../../src/errors.js';
import {
  loadValuesFiles, mergeValues, parseSetFlags, renderTemplate, templateValuesFor, versionFromDescribe, versionOfCommit,
} from '../../../src/template/index.js';

const run = promisify(execFile);

describe('template values', () => {
  describe('parseSetFlags', () => {
    const cases: [flags: string[], expected: Record<string, unknown>][] = [
      [['Image=reg:5000/app:1'], { Image: 'reg:5000/app:1' }],
      [['A=x=y=z'], { A: 'x=y=z' }],
      [['A=a,b,c'], { A: 'a,b,c' }],
      [['A="quoted" and \'single\''], { A: '"quoted" and \'single\'' }],
      [['A='], { A: '' }],
      [['Commit=0123'], { Commit: '0123' }],
      [['duat.gitBranch=main', 'duat.gitHash=abc'], { duat: { gitBranch: 'main', gitHash: 'abc' } }],
      [['a.b.c=1'], { a: { b: { c: '1' } } }],
      [['a=1', 'a=2'], { a: '2' }],
      [['a=1', 'a.b=2'], { a: { b: '2' } }],
      [['my-key=v', '_x=y'], { 'my-key': 'v', _x: 'y' }],
    ];
    for (const [flags, expected] of cases) {
      it(`${JSON.stringify(flags)} → ${JSON.stringify(expected)}`, () => {
        expect(parseSetFlags(flags)).to.deep.equal(expected);
      });
    }

    const bad: [flag: string, message: string][] = [
      ['foo', '--set foo: expected KEY=VALUE'],
      ['=value', '"" is not a key'],
      ['a..b=1', '"a..b" is not a key'],
      ['a.=1', '"a." is not a key'],
      ['a[0]=1', '"a[0]" is not a key'],
    ];
    for (const [flag, message] of bad) {
      it(`refuses --set ${flag} with a UsageError`, () => {
        expect(() => parseSetFlags([flag])).to.throw(UsageError, message);
      });
    }
  });

  describe('mergeValues', () => {
    it('merges maps key by key and replaces everything else', () => {
      expect(mergeValues({ a: { x: 1, y: 2 }, l: [1, 2], s: 'a' }, { a: { y: 3 }, l: [3], s: { n: 1 } }))
        .to.deep.equal({ a: { x: 1, y: 3 }, l: [3], s: { n: 1 } });
    });
  });

  describe('loadValuesFiles', () => {
    let dir = '';
    const file = async (name: string, text: string): Promise<string> => {
      const path = join(dir, name);
      await writeFile(path, text);
      return path;
    };
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'keelson-values-'));
    });
    after(() => rm(dir, { recursive: true, force: true }));

    it('reads YAML and JSON, later files winning', async () => {
      const first = await file('a.yaml', 'Image: one\nduat:\n  gitBranch: main\n  gitHash: abc\n');
      const second = await file('b.json', '{"Image": "two", "duat": {"gitHash": "def"}}');
      expect(await loadValuesFiles([first, second])).to.deep.equal({ Image: 'two', duat: { gitBranch: 'main', gitHash: 'def' } });
    });

    it('treats an empty file as no values', async () => {
      expect(await loadValuesFiles([await file('empty.yaml', '')])).to.deep.equal({});
    });

    const bad: [name: string, text: string | undefined, message: RegExp][] = [
      ['missing.yaml', undefined, /missing\.yaml: cannot read the values file: ENOENT/],
      ['list.yaml', '- a\n- b\n', /list\.yaml: expected a mapping of names to values/],
      ['scalar.yaml', 'just text\n', /scalar\.yaml: expected a mapping/],
      ['broken.yaml', 'a: 1\nb: [\n', /broken\.yaml:\d+: invalid YAML: /],
      ['broken.json', '{"a": }', /broken\.json: invalid JSON: /],
    ];
    for (const [name, text, message] of bad) {
      it(`${name} is an InputError naming the file`, async () => {
        const path = text === undefined ? join(dir, name) : await file(name, text);
        const error = await loadValuesFiles([path]).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(InputError);
        expect((error as InputError).exitCode).to.equal(2);
        expect((error as InputError).message).to.match(message);
      });
    }
  });

  describe('templateValuesFor', () => {
    const values = templateValuesFor({
      commit: '0123456789abcdef0123456789abcdef01234567', branch: 'feature/x', url: 'https://git.example/org/repo.git',
      runId: '20260101-000000-abcdef', namespace: 'keelson-20260101-000000-abcdef', image: 'reg:5000/org/repo:feature-x',
      registry: 'reg:5000', version: '1.4.0',
    });

    it('gives keelson and stencil names for the same run', () => {
      expect(values).to.deep.equal({
        Commit: '0123456789abcdef0123456789abcdef01234567', Branch: 'feature/x', URL: 'https://git.example/org/repo.git',
        ID: '20260101-000000-abcdef', Namespace: 'keelson-20260101-000000-abcdef', Image: 'reg:5000/org/repo:feature-x',
        Registry: 'reg:5000',
        duat: { gitBranch: 'feature/x', gitHash: '0123456789abcdef0123456789abcdef01234567', gitURL: 'https://git.example/org/repo.git', version: '1.4.0' },
      });
    });

    it('renders a stencil template unchanged', () => {
      const stencil = [
        'apiVersion: batch/v1',
        'kind: Job',
        'metadata:',
        '  name: build-{{ .duat.gitBranch | dnsLabel | trunc 20 }}-{{ .duat.gitHash | trunc 7 }}',
        '  namespace: {{ default "ci" .Namespace }}',
        '  labels:',
        '    version: "{{ .duat.version }}"',
        'spec:',
        '  template:',
        '    spec:',
        '      containers:',
        '        - image: {{ .Image }}',
        '          env:',
        '            - name: REGISTRY_B64',
        '              value: {{ expandenv "$Registry" | b64enc }}',
        '',
      ].join('\n');
      const job = renderTemplate(stencil, values, { templateName: 'stencil.yaml' }).documents[0]!;
      expect(job).to.deep.include({ metadata: { name: 'build-feature-x-0123456', namespace: 'keelson-20260101-000000-abcdef', labels: { version: '1.4.0' } } });
      expect(JSON.stringify(job)).to.include('"value":"cmVnOjUwMDA="');
    });

    it('leaves duat.version out when unknown, so a template that needs it fails naming it', () => {
      const noVersion = templateValuesFor({ commit: 'c', branch: 'b', url: 'u', runId: 'r', namespace: 'n', image: 'i', registry: 'g' });
      expect(() => renderTemplate('v: {{ .duat.version }}', noVersion, { templateName: 't.yaml', requireKubernetesObjects: false }))
        .to.throw('t.yaml:1: no value for "duat.version"');
    });
  });

  describe('versionFromDescribe', () => {
    const cases: [string, string | undefined][] = [
      ['v1.2.3', '1.2.3'],
      ['1.2.3', '1.2.3'],
      ['v1.2.3-4-gabc1234', '1.2.4-dev.4.gabc1234'],
      ['v2.0.0-rc.1', '2.0.0-rc.1'],
      ['v2.0.0-rc.1-3-gdeadbee', '2.0.0-rc.1.dev.3.gdeadbee'],
      ['release-7', undefined],
      ['abc1234', undefined],
    ];
    for (const [described, expected] of cases) {
      it(`${described} → ${expected}`, () => expect(versionFromDescribe(described)).to.equal(expected));
    }
  });

  describe('versionOfCommit (real git)', function () {
    this.timeout(30_000);
    let repo = '';
    const git = async (...args: string[]): Promise<string> =>
      (await run('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'commit.gpgsign=false', '-c', 'tag.gpgsign=false', ...args])).stdout.trim();
    const commit = async (files: Record<string, string>, message: string): Promise<string> => {
      for (const [name, text] of Object.entries(files)) await writeFile(join(repo, name), text);
      await git('add', '-A');
      await git('commit', '-q', '-m', message);
      return git('rev-parse', 'HEAD');
    };
    const commits: Record<string, string> = {};

    before(async () => {
      repo = await mkdtemp(join(tmpdir(), 'keelson-version-'));
      await git('init', '-q', '-b', 'main');
      commits.plain = await commit({ 'a.txt': '1' }, 'plain');
      await git('tag', 'v0.3.0');
      commits.afterTag = await commit({ 'a.txt': '2' }, 'after tag');
      commits.pkg = await commit({ 'package.json': '{"name":"x","version":"2.1.0"}' }, 'package.json');
      commits.versionFile = await commit({ VERSION: 'v3.0.0-beta.1\n' }, 'VERSION');
      commits.readme = await commit({ 'README.md': '# x\nVersion : <repo-version>0.11.0-feature-91</repo-version>\n' }, 'README');
      // the work tree must never count: a dirty VERSION that was not committed
      await writeFile(join(repo, 'VERSION'), '9.9.9\n');
    });
    after(() => rm(repo, { recursive: true, force: true }));

    const cases: [string, string][] = [
      ['plain', '0.3.0'],
      ['afterTag', '0.3.1-dev.1.g'],
      ['pkg', '2.1.0'],
      ['versionFile', '3.0.0-beta.1'],
      ['readme', '0.11.0-feature-91'],
    ];
    for (const [name, expected] of cases) {
      it(`reads ${expected}… from the ${name} commit`, async () => {
        expect(await versionOfCommit(repo, commits[name]!)).to.match(new RegExp(`^${expected.replace(/\./g, '\\.')}`));
      });
    }

    it('is undefined for a repository with no version anywhere', async () => {
      const bare = await mkdtemp(join(tmpdir(), 'keelson-version-none-'));
      try {
        await run('git', ['-C', bare, 'init', '-q']);
        await writeFile(join(bare, 'x'), 'x');
        await run('git', ['-C', bare, 'add', 'x']);
        await run('git', ['-C', bare, '-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'commit.gpgsign=false', 'commit', '-q', '-m', 'x']);
        expect(await versionOfCommit(bare, 'HEAD')).to.equal(undefined);
      } finally {
        await rm(bare, { recursive: true, force: true });
      }
    });

    it('refuses a commit that is not in the repository', async () => {
      const error = await versionOfCommit(repo, 'ffffffffffffffffffffffffffffffffffffffff').catch((e: unknown) => e);
      expect(error).to.be.instanceOf(InputError).with.property('message').that.includes('commit ffffffffffffffffffffffffffffffffffffffff not found');
    });
  });
});
