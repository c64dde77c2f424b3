import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { InputError, UsageError } from '../../errors.js';
import { createLogger, registerSecret } from '../../log/index.js';
import { GitHubReleases, readAssets } from '../../release/index.js';
import { githubOwnerRepo, parseForgeRepository, readTokenFile } from '../../report/index.js';
import { collect } from '../program.js';

interface ReleaseFlags {
  readonly tag: string;
  readonly asset: string[];
  readonly repo?: string;
  readonly tokenFile?: string;
  readonly apiUrl?: string;
  readonly name?: string;
  readonly notesFile?: string;
  readonly commit?: string;
}

/** `owner/name` from the checkout's `origin` remote, when it is a GitHub-style URL. */
function originRepo(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('git', ['remote', 'get-url', 'origin'], (error, stdout) => {
      const forge = error ? undefined : parseForgeRepository(stdout.trim());
      const parsed = forge ? githubOwnerRepo(forge.path) : undefined;
      resolve(parsed ? `${parsed.owner}/${parsed.repo}` : undefined);
    });
  });
}

async function token(flags: ReleaseFlags): Promise<string> {
  if (flags.tokenFile !== undefined) return readTokenFile(flags.tokenFile, '--token-file');
  // What CI systems provide; a file is preferred so the token stays out of the process table.
  const fromEnv = process.env.GITHUB_TOKEN?.trim();
  if (fromEnv) {
    registerSecret(fromEnv);
    return fromEnv;
  }
  throw new UsageError('--token-file is required (or set GITHUB_TOKEN)');
}

/**
 * `keelson release --tag T [--asset FILE]...`: creates the GitHub release for a tag once, as the
 * studio-go-runner ci.sh does. A release that already exists is left alone: exit 0 and one line
 * on stderr. Input (assets, flags, token file) is checked before any request.
 */
export function registerReleaseCommand(program: Command): void {
  program
    .command('release')
    .description('create a GitHub release for a tag, once, and upload its assets')
    .requiredOption('--tag <tag>', 'the release tag (created on GitHub if the repository lacks it)')
    .option('--asset <file>', 'a file to attach (repeatable)', collect, [])
    .option('--repo <owner/name>', 'the GitHub repository (default: from the origin remote)')
    .option('--token-file <file>', 'a file holding the GitHub token (default: $GITHUB_TOKEN)')
    .option('--api-url <url>', 'GitHub API base URL, e.g. https://ghe.example.com/api/v3 (default: $GITHUB_API_URL or https://api.github.com)')
    .option('--name <name>', 'the release title (default: the tag)')
    .option('--notes-file <file>', 'release notes (Markdown)')
    .option('--commit <sha>', 'what a new tag points at (default: the default branch)')
    .action(async (flags: ReleaseFlags) => {
      if (!flags.tag.trim()) throw new UsageError('--tag: empty');
      const repo = flags.repo ?? await originRepo();
      if (repo === undefined) throw new UsageError('--repo is required: the origin remote here is not a GitHub repository');
      if (!githubOwnerRepo(repo)) throw new UsageError(`--repo: "${repo}" is not owner/name`);
      const apiUrl = flags.apiUrl ?? process.env.GITHUB_API_URL;
      if (apiUrl !== undefined && !/^https?:\/\/[^/\s]+/.test(apiUrl)) throw new UsageError(`--api-url: "${apiUrl}" is not an http(s) URL`);
      const assets = await readAssets(flags.asset);
      let notes: string | undefined;
      if (flags.notesFile !== undefined) {
        try {
          notes = await readFile(flags.notesFile, 'utf8');
        } catch (error) {
          throw new InputError(`--notes-file ${flags.notesFile}`, `cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
        }
      }
      const releases = new GitHubReleases({ token: await token(flags), logger: createLogger(), ...(apiUrl ? { apiUrl } : {}) });
      try {
        const outcome = await releases.publish({
          repo, tag: flags.tag, assets,
          ...(flags.name !== undefined ? { name: flags.name } : {}),
          ...(notes !== undefined ? { notes } : {}),
          ...(flags.commit !== undefined ? { commit: flags.commit } : {}),
        });
        if (!outcome.created) {
          process.stderr.write(`release ${flags.tag} already exists: ${outcome.htmlUrl}\n`);
          return;
        }
        process.stdout.write(`${outcome.htmlUrl}\n`);
      } finally {
        await releases.close();
      }
    });
}
