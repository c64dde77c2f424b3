export interface LeaderTerm {
  /** Grows with every new term: work from an older term can be recognised */
  readonly fence: number;
  readonly identity: string;
}

export interface LeaderCallbacks {
  /** Start polling, building and rolling. */
  onStartedLeading(term: LeaderTerm): Promise<void> | void;
  /** Stop all of it (and wait for it) — leadership was lost or the process is stopping. */
  onStoppedLeading(): Promise<void> | void;
}

/** Exactly one of several replicas does the work at a time. */
export interface LeaderElection {
  readonly identity: string;
  start(callbacks: LeaderCallbacks): void;
  isLeader(): boolean;
  /** The HTTP address the current leader advertised, if any (none while no replica leads). */
  leaderAddress(): Promise<string | undefined>;
  stop(): Promise<void>;
}
