import { expect } from 'chai';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InputError } from '../../../src/errors.js';
import { branchNameProblem, DEFAULT_BRANCH_KEY, parseWatchSpec } from '../../../src/git/index.js';
import { redactSecrets } from '../../../src/log/index.js';

describe('parseWatchSpec (remote repositories)', () => {
  const cases: Array<[string, { key: string; branch?: string; display: string }]> = [
    ['https://github.com/org/repo.git^main', { key: 'https://github.com/org/repo.git^main', branch: 'main', display: 'https://github.com/org/repo.git^main' }],
    ['https://GitHub.com/org/repo.git/', { key: `https://github.com/org/repo.git^${DEFAULT_BRANCH_KEY}`, display: 'https://github.com/org/repo.git' }],
    ['https://host/org/repo.git^HEAD', { key: 'https://host/org/repo.git^HEAD', display: 'https://host/org/repo.git' }],
    ['https://host/org/repo.git^refs/heads/feature/x', { key: 'https://host/org/repo.git^feature/x', branch: 'feature/x', display: 'https://host/org/repo.git^feature/x' }],
    ['ssh://git@Host.example:2222/org/repo.git^dev', { key: 'ssh://git@host.example:2222/org/repo.git^dev', branch: 'dev', display: 'ssh://git@host.example:2222/org/repo.git^dev' }],
    ['git://host/repo^release-1.2', { key: 'git://host/repo^release-1.2', branch: 'release-1.2', display: 'git://host/repo^release-1.2' }],
    ['file:///srv/git/repo.git^trunk', { key: 'file:///srv/git/repo.git^trunk', branch: 'trunk', display: 'file:///srv/git/repo.git^trunk' }],
    ['git@GitHub.com:org/repo.git^main', { key: 'git@github.com:org/repo.git^main', branch: 'main', display: 'git@github.com:org/repo.git^main' }],
    ['host:srv/repo.git', { key: 'host:srv/repo.git^HEAD', display: 'host:srv/repo.git' }],
  ];
  for (const [text, want] of cases) {
    it(`parses ${text}`, () => {
      const spec = parseWatchSpec(text);
      expect(spec.kind).to.equal('remote');
      expect(spec.key).to.equal(want.key);
      expect(spec.branch).to.equal(want.branch);
      expect(spec.display).to.equal(want.display);
    });
  }

  it('gives git the URL as written but keeps credentials out of the key and display, and registers them', () => {
    const spec = parseWatchSpec('https://bot:s3cr3t-pa%24%24@git.example/org/repo.git^main');
    expect(spec.repo).to.equal('https://bot:s3cr3t-pa%24%24@git.example/org/repo.git');
    expect(spec.key).to.equal('https://git.example/org/repo.git^main');
    expect(spec.display).to.not.include('s3cr3t');
    expect(redactSecrets('password is s3cr3t-pa$$ here')).to.not.include('s3cr3t');
    expect(redactSecrets('raw s3cr3t-pa%24%24')).to.not.include('s3cr3t');
  });

  it('treats a lone https user name as a token', () => {
    const spec = parseWatchSpec('https://ghp_tokentokentoken@github.com/org/repo.git');
    expect(spec.key).to.equal('https://github.com/org/repo.git^HEAD');
    expect(redactSecrets('used ghp_tokentokentoken')).to.equal('used [REDACTED]');
  });

  it('keys file:// of a directory on this machine by its real path, as the path itself is keyed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keelson-spec-'));
    try {
      const real = realpathSync(dir);
      expect(parseWatchSpec(`${pathToFileURL(dir).href}/^main`).key).to.equal(`${real}^main`);
      expect(parseWatchSpec(`${pathToFileURL(dir).href}`).kind).to.equal('remote');
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('keeps two branches of one repository apart', () => {
    const a = parseWatchSpec('https://host/org/repo.git^main');
    const b = parseWatchSpec('https://host/org/repo.git^dev');
    expect(a.key).to.not.equal(b.key);
    expect(a.repo).to.equal(b.repo);
  });

  const bad: Array<[string, RegExp]> = [
    ['https://host/repo.git^', /not a valid branch name: it is empty/],
    ['https://host/repo.git^a..b', /contains "\.\."/],
    ['https://host/repo.git^-x', /starts with "-"/],
    ['^main', /no repository/],
    ['--upload-pack=evil', /cannot start with "-"/],
    ['ext::sh -c evil', /unsupported transport "ext"/],
    ['ftp://host/repo.git', /unsupported scheme "ftp"/],
  ];
  for (const [text, message] of bad) {
    it(`refuses ${text} with an InputError`, () => {
      let caught: unknown;
      try {
        parseWatchSpec(text);
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(InputError);
      expect((caught as InputError).exitCode).to.equal(2);
      expect((caught as Error).message).to.match(message);
    });
  }
});

describe('branchNameProblem', () => {
  const valid = ['main', 'feature/x', 'release-1.2', 'user/name/topic', 'v1.0'];
  const invalid = ['', 'a b', 'a~b', 'a:b', 'a?b', 'a*b', 'a[b', 'a\\b', '.hidden', 'x/.y', 'a.lock', 'a/', '/a', 'a//b', 'a.', '@', 'a@{b'];
  for (const name of valid) it(`accepts "${name}"`, () => expect(branchNameProblem(name)).to.equal(undefined));
  for (const name of invalid) it(`refuses "${name}"`, () => expect(branchNameProblem(name)).to.be.a('string'));
});
