import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { packSource, SourceTooLargeError, unpackCommand } from '../../../src/executor/kubernetes/index.js';

/** Runs the pod-side command on this host (same sh, head, sha256sum and tar as busybox offers). */
function runUnpack(command: string[], cwd: string, stdinFile: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { cwd, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
    child.stdin.on('error', () => undefined); // the command stops reading after `bytes`
    createReadStream(stdinFile).pipe(child.stdin);
  });
}

describe('packSource and unpackCommand', () => {
  let dir: string;
  let source: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keelson-archive-'));
    source = join(dir, 'source');
    await mkdir(join(source, 'src', 'deep'), { recursive: true });
    await mkdir(join(source, '.git', 'objects'), { recursive: true });
    await writeFile(join(source, 'Dockerfile'), 'FROM scratch\n');
    await writeFile(join(source, 'src', 'deep', 'main.txt'), 'hello\n');
    await writeFile(join(source, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(source, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    await symlink('src/deep/main.txt', join(source, 'link'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('round-trips the tree without .git, with modes and symlinks, and removes the tar', async () => {
    const archive = await packSource(source, 1024 * 1024);
    const target = await mkdtemp(join(dir, 'unpacked-'));
    try {
      const result = await runUnpack(unpackCommand(archive.bytes, archive.sha256), target, archive.file);
      expect(result, result.stderr).to.deep.equal({ code: 0, stderr: '' });
      expect((await readdir(target)).sort()).to.deep.equal(['Dockerfile', 'link', 'run.sh', 'src']);
      expect(await readFile(join(target, 'src', 'deep', 'main.txt'), 'utf8')).to.equal('hello\n');
      expect(await readlink(join(target, 'link'))).to.equal('src/deep/main.txt');
      const { stat } = await import('node:fs/promises');
      expect((await stat(join(target, 'run.sh'))).mode & 0o777).to.equal(0o755);
    } finally {
      await archive.dispose();
    }
  });

  it('reports the size and sha256 of the tar file it wrote', async () => {
    const archive = await packSource(source, 1024 * 1024);
    try {
      const bytes = await readFile(archive.file);
      expect(archive.bytes).to.equal(bytes.length);
      expect(archive.sha256).to.equal(createHash('sha256').update(bytes).digest('hex'));
    } finally {
      await archive.dispose();
    }
  });

  it('refuses bytes that do not match the checksum before unpacking anything', async () => {
    const archive = await packSource(source, 1024 * 1024);
    const target = await mkdtemp(join(dir, 'mismatch-'));
    try {
      const result = await runUnpack(unpackCommand(archive.bytes, 'f'.repeat(64)), target, archive.file);
      expect(result.code).to.equal(3);
      expect(result.stderr).to.contain('checksum mismatch');
      expect(await readdir(target)).to.deep.equal(['.keelson-source.tar']);
    } finally {
      await archive.dispose();
    }
  });

  it('stops at maxBytes with SourceTooLargeError and leaves no temp file', async () => {
    const big = join(dir, 'big');
    await mkdir(big, { recursive: true });
    await writeFile(join(big, 'blob'), Buffer.alloc(64 * 1024, 1));
    const before = (await readdir(tmpdir())).filter((e) => e.startsWith('keelson-source-')).length;
    let error: unknown;
    try {
      await packSource(big, 16 * 1024);
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(SourceTooLargeError);
    expect((error as Error).message).to.contain('maxSourceBytes');
    expect((await readdir(tmpdir())).filter((e) => e.startsWith('keelson-source-')).length).to.be.at.most(before);
  });

  const bad: Array<[string, number, string]> = [
    ['a negative size', -1, 'a'.repeat(64)],
    ['a fractional size', 1.5, 'a'.repeat(64)],
    ['a short checksum', 10, 'abc'],
    ['a checksum with shell characters', 10, `${'a'.repeat(63)};`],
  ];
  for (const [what, bytes, sha] of bad) {
    it(`refuses ${what}`, () => {
      expect(() => unpackCommand(bytes, sha)).to.throw('unpackCommand');
    });
  }
});
