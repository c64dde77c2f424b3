import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { createLogger } from '../../log/index.js';
import { ImagePromoter } from '../../promote/index.js';
import {
  RegistryClient, combineCredentials, loadDockerConfig, loadRegistryConfig, parseImageReference, type CredentialLookup,
} from '../../registry/index.js';
import { collect } from '../program.js';

interface PromoteFlags {
  readonly to: string[];
  readonly registryConfig?: string;
  readonly dockerConfig?: string;
}

async function credentials(flags: PromoteFlags): Promise<CredentialLookup> {
  const lookups: CredentialLookup[] = [];
  if (flags.registryConfig !== undefined) lookups.push(await loadRegistryConfig(flags.registryConfig));
  if (flags.dockerConfig !== undefined) lookups.push(await loadDockerConfig(flags.dockerConfig));
  else if (flags.registryConfig === undefined) {
    // Like docker and buildah: the user's own login, when there is one.
    const path = join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
    try {
      lookups.push(await loadDockerConfig(path));
    } catch (error) {
      if ((error as { cause?: NodeJS.ErrnoException }).cause?.code !== 'ENOENT') throw error;
    }
  }
  return combineCredentials(...lookups);
}

/**
 * `keelson promote SRC[:tag|@digest] --to DEST[:tag]...`: copies an image by digest to each
 * destination (the Phaedo pipeline's "publish with an imagetag" without docker) and prints
 * `DEST[:tag]@digest` per destination.
 */
export function registerPromoteCommand(program: Command): void {
  program
    .command('promote')
    .description('copy an image by digest to other repositories or registries (manifests, indexes and blobs)')
    .argument('<source>', 'the image: host/repo[:tag] or host/repo@sha256:...')
    .requiredOption('--to <dest>', 'a destination host/repo[:tag]; without a tag the source\'s tag is used (repeatable)', collect, [])
    .option('--registry-config <file>', 'Makisu-style registry config with each registry\'s credentials')
    .option('--docker-config <file>', 'a docker config.json with credentials (default: ~/.docker/config.json without --registry-config)')
    .action(async (sourceText: string, flags: PromoteFlags) => {
      const source = parseImageReference(sourceText);
      const destinations = flags.to.map((text) => parseImageReference(text));
      if (destinations.length === 0) throw new UsageError('--to: at least one destination is needed');
      const logger = createLogger();
      const client = new RegistryClient({ credentials: await credentials(flags), logger });
      try {
        const promoted = await new ImagePromoter({ client, logger }).promote(source, destinations);
        for (const image of promoted) process.stdout.write(`${image.reference}\n`);
      } finally {
        await client.close();
      }
    });
}
