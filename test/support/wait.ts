/**
 * Waits until `check` gives a value (anything but undefined or false) and returns it. A bounded
 * wait for something another process does, never a timing assertion: the limit only turns a
 * hang into a failure that says what was awaited. An error thrown by `check` counts as "not yet"
 * and is quoted if the limit passes.
 */
export async function until<T>(check: () => Promise<T | undefined | false>, what: string, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
