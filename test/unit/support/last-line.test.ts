import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { lastLineOf } from '../../support/cluster.js';
import { cleanupRepos, tempDir } from '../../support/git.js';

describe('lastLineOf (the ensure-*.sh scripts of the test cluster)', () => {
  after(cleanupRepos);

  it('reads the whole output, also what arrives after the script itself has exited', async () => {
    const dir = await tempDir('keelson-last-line-');
    const script = join(dir, 'late.sh');
    // The line comes from a process that outlives the script, as output still in the pipe does
    // on a busy machine when the script's exit is seen first.
    await writeFile(script, '#!/bin/sh\necho first\n(sleep 0.3; echo /the/last/line) &\nexit 0\n');
    expect(await lastLineOf(script)).to.equal('/the/last/line');
  });

  it('rejects when the script fails, with what it printed', async () => {
    const dir = await tempDir('keelson-last-line-');
    const script = join(dir, 'fails.sh');
    await writeFile(script, '#!/bin/sh\necho partial\nexit 3\n');
    const error = await lastLineOf(script).then(() => undefined, (e: unknown) => e as Error);
    expect(error?.message).to.contain('exited with 3: partial');
  });
});
