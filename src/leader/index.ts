export { RedisLease, type RedisLeaseOptions } from './redis-lease.js';
export type { LeaderCallbacks, LeaderElection, LeaderTerm } from './types.js';
