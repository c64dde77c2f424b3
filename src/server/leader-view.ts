import { request } from 'undici';
import { z } from 'zod';
import { ExternalError, messageOf } from '../errors.js';

/** How long a standby waits for the leader before the page shows the section as unavailable. */
const LEADER_TIMEOUT_MS = 3000;

const ListAnswer = z.array(z.record(z.string(), z.unknown()));

/**
 * What a standby replica shows of the work only the leader does (watches, registry jobs,
 * workloads, dependencies, approvals): the leader's own API answers, read from the address it
 * advertised with its lease. Behind one Service the page then looks the same whichever replica
 * answers, instead of empty on all but one.
 */
export class LeaderView {
  constructor(private readonly leaderAddress: () => Promise<string | undefined>) {}

  /** The leader's answer to `GET path` (a JSON list); an ExternalError says why there is none. */
  async list<T>(path: string): Promise<T[]> {
    const address = await this.leaderAddress().catch((error: unknown) => {
      throw new ExternalError(`this replica is on standby and cannot tell which replica leads: ${messageOf(error)}`);
    });
    if (!address) throw new ExternalError('this replica is on standby and no replica leads at the moment');
    let body: unknown;
    try {
      const response = await request(`${address}${path}`, {
        headers: { accept: 'application/json' }, signal: AbortSignal.timeout(LEADER_TIMEOUT_MS),
      });
      if (response.statusCode !== 200) {
        await response.body.dump();
        throw new Error(`HTTP ${response.statusCode}`);
      }
      body = await response.body.json();
    } catch (error) {
      throw new ExternalError(`this replica is on standby; the leader at ${address} did not answer ${path}: ${messageOf(error)}`);
    }
    const parsed = ListAnswer.safeParse(body);
    if (!parsed.success) throw new ExternalError(`this replica is on standby; the leader at ${address} answered ${path} with something other than a list`);
    return parsed.data as T[];
  }
}
