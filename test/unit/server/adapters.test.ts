import { expect } from 'chai';
import { repositoryIdentity, watchesForPush } from '../../../src/server/index.js';

describe('matching GitHub pushes to watches', () => {
  const identities: Array<[string, string]> = [
    ['https://github.com/Team/App.git', 'github.com/Team/App'],
    ['https://GitHub.com/team/app/', 'github.com/team/app'],
    ['git@github.com:team/app.git', 'github.com/team/app'],
    ['github.com:team/app', 'github.com/team/app'],
    ['ssh://git@github.com/team/app.git', 'github.com/team/app'],
    ['ssh://git@github.com:2222/team/app', 'github.com:2222/team/app'],
    ['https://git.example:8443/group/sub/app.git', 'git.example:8443/group/sub/app'],
    ['/srv/git/app.git', '/srv/git/app'],
    ['file:///srv/git/app.git', '/srv/git/app'],
    ['file:///srv/git/my%20app/', '/srv/git/my app'],
  ];
  for (const [url, identity] of identities) {
    it(`${url} is ${identity}`, () => expect(repositoryIdentity(url)).to.equal(identity));
  }

  const keys = [
    'https://github.com/team/app^main',
    'git@github.com:team/app^feature',
    'ssh://git@github.com/team/app^HEAD',
    'https://github.com/team/other^main',
    '/home/me/app^main',
  ];
  const event = {
    repoUrls: ['https://github.com/team/app.git', 'git@github.com:team/app.git', 'https://github.com/team/app'],
    branch: 'main', commit: 'a'.repeat(40),
  };

  it('polls the watches of the pushed repository and branch, and those following its default branch', () => {
    expect(watchesForPush(keys, event)).to.deep.equal(['https://github.com/team/app^main', 'ssh://git@github.com/team/app^HEAD']);
  });

  it('polls nothing for a repository nobody watches', () => {
    expect(watchesForPush(keys, { ...event, repoUrls: ['https://github.com/someone/else.git'] })).to.deep.equal([]);
  });
});
