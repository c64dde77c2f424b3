import { expect } from 'chai';
import { InputError } from '../../../src/errors.js';
import {
  backoffMs, GitAuthError, GitCommandError, GitRepositoryNotFoundError, GitUnreachableError, parseLsRemote, parseSchedule,
} from '../../../src/git/index.js';
import { remoteError } from '../../../src/git/remote-head-reader.js';
import { gitMessage } from '../../../src/git/run-git.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

describe('parseLsRemote', () => {
  it('reads the HEAD symref and ref tips', () => {
    const listing = parseLsRemote(`ref: refs/heads/trunk\tHEAD\n${A}\tHEAD\n${B}\trefs/heads/dev\n`);
    expect(listing.symrefs.get('HEAD')).to.equal('refs/heads/trunk');
    expect(listing.refs.get('HEAD')).to.equal(A);
    expect(listing.refs.get('refs/heads/dev')).to.equal(B);
  });
  it('ignores blank and unknown lines', () => {
    const listing = parseLsRemote(`\nwarning: redirecting\n${A}\trefs/heads/x\n`);
    expect([...listing.refs.keys()]).to.deep.equal(['refs/heads/x']);
    expect(listing.symrefs.size).to.equal(0);
  });
});

describe('remoteError', () => {
  const failure = (stderr: string) => Object.assign(new GitCommandError('ls-remote', 128, gitMessage(stderr)), { stderr });
  const cases: Array<[string, new (...args: never[]) => Error]> = [
    ["fatal: could not read Username for 'https://host': terminal prompts disabled", GitAuthError],
    ["remote: HTTP Basic: Access denied\nfatal: Authentication failed for 'https://host/r.git/'", GitAuthError],
    ['git@host: Permission denied (publickey).\nfatal: Could not read from remote repository.', GitAuthError],
    ["fatal: unable to access 'https://nohost/r.git/': Could not resolve host: nohost", GitUnreachableError],
    ["fatal: '/srv/none' does not appear to be a git repository", GitRepositoryNotFoundError],
    ["remote: Repository not found.\nfatal: repository 'https://github.com/o/none.git/' not found", GitRepositoryNotFoundError],
  ];
  for (const [stderr, type] of cases) {
    it(`classifies "${stderr.split('\n')[0]}" as ${type.name}`, () => {
      expect(remoteError('repo', failure(stderr))).to.be.instanceOf(type);
    });
  }
  it('never repeats credentials from a URL in git\'s message', () => {
    const error = remoteError('https://host/r.git', failure("fatal: Authentication failed for 'https://bot:hunter22@host/r.git/'"));
    expect(error.message).to.not.include('hunter22');
    expect(error.message).to.include('https://host/r.git');
  });
});

describe('parseSchedule', () => {
  it('reads @every and bare durations', () => {
    expect(parseSchedule('@every 30s').intervalMs()).to.equal(30_000);
    expect(parseSchedule('2m').nextDelayMs()).to.equal(120_000);
    expect(parseSchedule('@every 1h30m').kind).to.equal('every');
  });
  it('reads cron expressions, with the gap between runs as interval', () => {
    const schedule = parseSchedule('*/5 * * * *');
    try {
      expect(schedule.kind).to.equal('cron');
      expect(schedule.intervalMs()).to.equal(300_000);
      expect(schedule.nextDelayMs()).to.be.within(0, 300_000);
    } finally {
      schedule.dispose();
    }
  });
  const bad = ['@every 0s', '@every 500ms', '@daily-ish', '61 * * * *', 'often'];
  for (const text of bad) {
    it(`refuses "${text}" naming the option`, () => {
      expect(() => parseSchedule(text, 'spec.schedule')).to.throw(InputError, /^spec\.schedule: /);
    });
  }
});

describe('backoffMs', () => {
  it('is 0 while healthy, doubles per failure and is capped', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, 30_000, 600_000)))
      .to.deep.equal([0, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000]);
  });
  it('never goes below one interval of a slow schedule', () => {
    expect(backoffMs(1, 3_600_000, 600_000)).to.equal(3_600_000);
    expect(backoffMs(1000, 1000, 600_000)).to.equal(600_000);
  });
});

describe('gitMessage', () => {
  it("keeps git's fatal lines, not the advice after them", () => {
    const stderr = "fatal: '/srv/x' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\n" +
      'Please make sure you have the correct access rights\nand the repository exists.\n';
    expect(gitMessage(stderr)).to.equal("'/srv/x' does not appear to be a git repository; Could not read from remote repository.");
  });
  it('drops hints and says so when git said nothing', () => {
    expect(gitMessage('hint: try this\n')).to.equal('no message from git');
  });
});
