import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';

/** How often the event-loop delay is sampled, in ms. */
export const EVENT_LOOP_SAMPLE_MS = 100;

/**
 * A sampling period for prom-client's own event-loop histogram so long (~24 days) that its timer
 * never wakes the daemon; its gauges are replaced by ours.
 */
export const PROM_CLIENT_SAMPLE_MS = 2 ** 31 - 1;

const STATS = [
  ['min', 'The minimum event loop delay since the last scrape, how late a 100 ms timer fired.'],
  ['max', 'The maximum event loop delay since the last scrape, how late a 100 ms timer fired.'],
  ['mean', 'The mean event loop delay since the last scrape, how late a 100 ms timer fired.'],
  ['stddev', 'The standard deviation of the event loop delays since the last scrape.'],
  ['p50', 'The 50th percentile of the event loop delays since the last scrape, how late a 100 ms timer fired.'],
  ['p90', 'The 90th percentile of the event loop delays since the last scrape, how late a 100 ms timer fired.'],
  ['p99', 'The 99th percentile of the event loop delays since the last scrape, how late a 100 ms timer fired.'],
] as const;

type Stat = (typeof STATS)[number][0];

/**
 * The event-loop lag gauges under prom-client's names (`<prefix>nodejs_eventloop_lag_min_seconds`
 * ...), sampled every 100 ms instead of prom-client's 10 ms: that timer woke an idle daemon 100
 * times a second, which cost more CPU than polling 1,000 images. A sample is how late the timer
 * fired, so an idle loop reads 0 (prom-client's values include its period: 10 ms when idle).
 * Node's own monitorEventLoopDelay is not used: after each reset it drops the first interval, so
 * a stall right after a scrape was never seen. Replaces the gauges `collectDefaultMetrics` put
 * into `register`, which must have been given PROM_CLIENT_SAMPLE_MS. Returns the function that
 * stops the sampling.
 */
export function registerEventLoopLag(register: Registry, prefix: string): () => void {
  const histogram = createHistogram();
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    // A histogram records whole numbers from 1: nanoseconds late, at least 1.
    histogram.record(Math.max(1, Math.round((now - last - EVENT_LOOP_SAMPLE_MS) * 1e6)));
    last = now;
  }, EVENT_LOOP_SAMPLE_MS).unref();
  let window: Record<Stat, number> = { min: 0, max: 0, mean: 0, stddev: 0, p50: 0, p90: 0, p99: 0 };
  for (const [stat, help] of STATS) {
    const name = `${prefix}nodejs_eventloop_lag_${stat}_seconds`;
    register.removeSingleMetric(name);
    register.registerMetric(new Gauge({
      name,
      help,
      registers: [],
      collect(this: Gauge) {
        // A scrape collects the gauges in the order they were registered: the first one closes
        // the window, the others report the same window.
        if (stat === 'min') window = closeWindow(histogram);
        this.set(window[stat]);
      },
    }));
  }
  return () => clearInterval(timer);
}

/** The window's statistics in seconds; starts the next window. */
function closeWindow(histogram: RecordableHistogram): Record<Stat, number> {
  const seconds = (ns: number) => (histogram.count === 0 ? 0 : ns / 1e9);
  const stats = {
    min: seconds(histogram.min),
    max: seconds(histogram.max),
    mean: seconds(histogram.mean),
    stddev: seconds(histogram.stddev),
    p50: seconds(histogram.percentile(50)),
    p90: seconds(histogram.percentile(90)),
    p99: seconds(histogram.percentile(99)),
  };
  histogram.reset();
  return stats;
}
