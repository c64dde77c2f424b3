/**
 * Mocha root hook plugin for `sharedCluster()` in cluster.ts: loaded through `require` in
 * .mocharc.json, it stops the shared test cluster after every test file has run. It imports
 * nothing, so runs that never start a cluster pay nothing for it.
 *
 * The two files meet through a global symbol rather than an import, so they agree even if mocha's
 * `require` and the test files' imports were to load separate module instances.
 */
interface SharedClusterSlot {
  stop?: () => Promise<void>;
}

const SLOT = Symbol.for('keelson.test.sharedCluster');
(globalThis as Record<symbol, SharedClusterSlot | undefined>)[SLOT] ??= {};

export const mochaHooks = {
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(120_000);
    await (globalThis as Record<symbol, SharedClusterSlot | undefined>)[SLOT]?.stop?.();
  },
};
