import { expect } from 'chai';
import { isDnsLabel, parseRunId } from '../../../src/domain/index.js';
import { repositoryName, runLabels, runNamespace } from '../../../src/executor/kubernetes/index.js';

describe('kubernetes run naming', () => {
  const id = parseRunId('20260102-030405-a1b2c3');

  const namespaces: Array<[string, string, string]> = [
    ['https://github.com/org/app.git', 'main', 'keelson-app-main-20260102-030405-a1b2c3'],
    ['/home/me/src/App/', 'Feature/Login_Form', 'keelson-app-feature-login-form-20260102-030405-a1b2c3'],
    ['git@github.com:org/api.git', 'release-1.2', 'keelson-api-release-1-2-20260102-030405-a1b2c3'],
    ['.', 'main', 'keelson-main-20260102-030405-a1b2c3'],
  ];
  for (const [repo, branch, expected] of namespaces) {
    it(`names the namespace of ${repo}^${branch}`, () => {
      expect(runNamespace(repo, branch, id)).to.equal(expected);
    });
  }

  it('keeps the whole run id and stays a DNS label of at most 63 characters for long names', () => {
    const name = runNamespace(`https://example.test/${'very-long-repository-name'.repeat(4)}.git`, 'feature/'.padEnd(90, 'x'), id);
    expect(name.length).to.be.at.most(63);
    expect(isDnsLabel(name)).to.equal(true);
    expect(name.endsWith('-20260102-030405-a1b2c3')).to.equal(true);
    expect(name.startsWith('keelson-very-long-repository')).to.equal(true);
  });

  it('gives two runs of the same branch different namespaces', () => {
    const other = parseRunId('20260102-030405-ffffff');
    expect(runNamespace('r', 'main', id)).not.to.equal(runNamespace('r', 'main', other));
  });

  it('keeps long branches that share a prefix apart', () => {
    const a = runNamespace('app', `feature/${'x'.repeat(60)}-one`, id);
    const b = runNamespace('app', `feature/${'x'.repeat(60)}-two`, id);
    expect(a).not.to.equal(b);
  });

  it('labels with valid label values', () => {
    const labels = runLabels('https://github.com/org/App.git', `Feature/${'y'.repeat(80)}`, id);
    expect(labels['app.kubernetes.io/managed-by']).to.equal('keelson');
    expect(labels['keelson.dev/run']).to.equal(id);
    expect(labels['keelson.dev/repository']).to.equal('app');
    for (const value of Object.values(labels)) expect(isDnsLabel(value), value).to.equal(true);
  });

  const names: Array<[string, string]> = [
    ['https://github.com/org/app.git', 'app'], ['/srv/git/tool/', 'tool'], ['git@host:org/x.git', 'x'], ['', 'repo'], ['C:\\src\\proj', 'proj'],
  ];
  for (const [input, expected] of names) {
    it(`takes the repository name of ${JSON.stringify(input)}`, () => expect(repositoryName(input)).to.equal(expected));
  }
});
