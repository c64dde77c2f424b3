import { KeelsonError } from '../errors.js';
import type { RunPhase } from './types.js';

/** Every failure the store reports; callers match on `code`. */
export abstract class StoreError extends KeelsonError {}

/** No run with this id in the store. Usually an id typed by a user, hence exit 2. */
export class RunNotFoundError extends StoreError {
  readonly code = 'KEELSON_RUN_NOT_FOUND';
  readonly exitCode = 2;
  override readonly name = 'RunNotFoundError';

  constructor(readonly runId: string, readonly store: string) {
    super(`run "${runId}" not found in ${store}; list runs with \`keelson runs\``);
  }
}

/** createRun with an id that is already recorded; ids are random, so this is a caller bug. */
export class RunExistsError extends StoreError {
  readonly code = 'KEELSON_RUN_EXISTS';
  readonly exitCode = 1;
  override readonly name = 'RunExistsError';

  constructor(readonly runId: string, readonly store: string) {
    super(`run "${runId}" already exists in ${store}; create runs with a fresh id (newRunId())`);
  }
}

/**
 * A transition out of a terminal phase. The record is left exactly as it was: a finished run's
 * outcome is never rewritten, also when two writers race to finish it.
 */
export class RunAlreadyFinishedError extends StoreError {
  readonly code = 'KEELSON_RUN_FINISHED';
  readonly exitCode = 1;
  override readonly name = 'RunAlreadyFinishedError';

  constructor(readonly runId: string, readonly phase: RunPhase, readonly attempted: RunPhase) {
    super(`run "${runId}" already finished as ${phase}; refusing to move it to ${attempted}`);
  }
}

/** A stored record that does not parse (edited by hand, written by an incompatible version). */
export class StoreCorruptError extends StoreError {
  readonly code = 'KEELSON_STORE_CORRUPT';
  readonly exitCode = 1;
  override readonly name = 'StoreCorruptError';

  constructor(readonly where: string, detail: string, options?: { cause?: unknown }) {
    super(`${where}: ${detail}; move the file or key away to continue`, options);
  }
}

/** The store cannot be reached or written (Redis down, state dir not writable, lock held). */
export class StoreUnavailableError extends StoreError {
  readonly code = 'KEELSON_STORE_UNAVAILABLE';
  readonly exitCode = 1;
  override readonly name = 'StoreUnavailableError';

  constructor(readonly store: string, detail: string, options?: { cause?: unknown }) {
    super(`${store}: ${detail}`, options);
  }
}

/** A bad store setting from the user: a malformed Redis URL, a state dir that is a file. */
export class StoreConfigError extends StoreError {
  readonly code = 'KEELSON_STORE_CONFIG';
  readonly exitCode = 2;
  override readonly name = 'StoreConfigError';

  constructor(readonly where: string, detail: string, options?: { cause?: unknown }) {
    super(`${where}: ${detail}`, options);
  }
}

/** Another live keelson runs pipelines on this state dir; two would retry each other's runs. */
export class StateDirBusyError extends StoreError {
  readonly code = 'KEELSON_STATE_DIR_BUSY';
  readonly exitCode = 2;
  override readonly name = 'StateDirBusyError';

  constructor(readonly stateDir: string, readonly holderPid: number | undefined) {
    super(holderPid === undefined
      ? `state dir ${stateDir} is in use by another keelson process; stop it or pass another --state-dir`
      : `state dir ${stateDir} is in use by keelson process ${holderPid}; stop it or pass another --state-dir`);
  }
}
