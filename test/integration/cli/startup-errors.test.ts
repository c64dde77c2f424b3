import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runKeelson } from '../../support/cli.js';

/** One line on stderr, starting with "keelson: ". */
function oneLineError(stderr: string): string {
  const lines = stderr.split('\n').filter(Boolean);
  expect(lines, stderr).to.have.length(1);
  expect(lines[0]).to.match(/^keelson: /);
  return lines[0]!;
}

describe('the CLI refuses bad settings before it starts anything', function () {
  this.timeout(60_000);
  let scratch: string;

  beforeEach(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'keelson-cli-startup-'));
  });
  afterEach(() => rm(scratch, { recursive: true, force: true }));

  for (const [what, url, secret] of [
    ['password', 'redis://:s3cret-pa%ZZss@127.0.0.1:1/0', 's3cret-pa'],
    ['user name', 'redis://adm%E0%A4%Ain:s3cret-pass@127.0.0.1:1/0', 's3cret-pass'],
  ] as const) {
    it(`a Redis URL whose ${what} has a bad %-escape is bad input (exit 2), named without the password`, async () => {
      const result = await runKeelson(['runs', '--redis', url]);
      expect(result.status, result.stderr).to.equal(2);
      const line = oneLineError(result.stderr);
      expect(line).to.include('redis URL redis://127.0.0.1:1').and.include(`${what} has a bad %-escape`);
      expect(line).not.to.include('internal error').and.not.to.include(secret);
    });
  }
});
