import { expect } from 'chai';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../../src/errors.js';
import { contentTypeFor, readAssets } from '../../../src/release/index.js';

describe('release assets', () => {
  const types: readonly [string, string][] = [
    ['runner-linux-amd64.tar.gz', 'application/gzip'],
    ['runner.tgz', 'application/gzip'],
    ['runner.zip', 'application/zip'],
    ['SHA256SUMS.sha256', 'text/plain'],
    ['sbom.json', 'application/json'],
    ['runner-linux-amd64', 'application/octet-stream'],
  ];
  for (const [name, type] of types) {
    it(`${name} is sent as ${type}`, () => expect(contentTypeFor(name)).to.equal(type));
  }

  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keelson-assets-'));
    await mkdir(join(dir, 'a'));
    await mkdir(join(dir, 'b'));
    await writeFile(join(dir, 'a', 'tool'), 'x');
    await writeFile(join(dir, 'b', 'tool'), 'yy');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads sizes and names', async () => {
    expect(await readAssets([join(dir, 'b', 'tool')])).to.deep.equal([
      { path: join(dir, 'b', 'tool'), name: 'tool', size: 2, contentType: 'application/octet-stream' },
    ]);
  });

  const bad: readonly [string, () => string[], RegExp][] = [
    ['a missing file', () => [join(dir, 'absent.zip')], /absent\.zip: no such file$/],
    ['a directory', () => [join(dir, 'a')], /: not a regular file$/],
    ['two files with one name', () => [join(dir, 'a', 'tool'), join(dir, 'b', 'tool')], /has the same name as .*a\/tool/],
  ];
  for (const [name, paths, message] of bad) {
    it(`rejects ${name} as bad input`, async () => {
      const error = await readAssets(paths()).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(InputError);
      expect((error as Error).message).to.match(message);
    });
  }
});
