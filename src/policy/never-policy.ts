import type { Policy, WatchMode } from './types.js';

/** `never`: the workload is not updated and its image is not watched. */
export class NeverPolicy implements Policy {
  readonly kind = 'never';
  constructor(readonly text = 'never') {}

  choose(): undefined {
    return undefined;
  }

  watchMode(): WatchMode {
    return 'none';
  }
}
