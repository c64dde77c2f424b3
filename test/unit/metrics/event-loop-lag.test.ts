import { expect } from 'chai';
import { Registry } from 'prom-client';
import { registerEventLoopLag } from '../../../src/metrics/event-loop.js';
import { metricsRegistry } from '../../../src/metrics/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The value of one sample line of the Prometheus text. */
function valueOf(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in:\n${text}`);
  return Number(line.slice(name.length + 1));
}

describe('event-loop lag metrics: how late a 100 ms timer fires', () => {
  let register: Registry;
  let stop: () => void;
  beforeEach(() => {
    register = new Registry();
    stop = registerEventLoopLag(register, 'test_');
  });
  afterEach(() => stop());

  it('reads about 0 on an idle loop and shows a stall in the scrape that follows it', async () => {
    await register.metrics(); // opens a fresh window
    await sleep(500);
    const idle = await register.metrics();
    expect(valueOf(idle, 'test_nodejs_eventloop_lag_min_seconds'), 'min while idle').to.be.below(0.05);
    expect(valueOf(idle, 'test_nodejs_eventloop_lag_p50_seconds'), 'median while idle').to.be.below(0.05);

    const until = Date.now() + 400;
    while (Date.now() < until) { /* a stall: nothing else runs for 400 ms */ }
    await sleep(300);
    const stalled = await register.metrics();
    expect(valueOf(stalled, 'test_nodejs_eventloop_lag_max_seconds'), 'max after a 400 ms stall').to.be.within(0.25, 1);
    expect(valueOf(stalled, 'test_nodejs_eventloop_lag_min_seconds'), 'min after the stall').to.be.below(0.05);

    await sleep(300);
    const after = await register.metrics();
    expect(valueOf(after, 'test_nodejs_eventloop_lag_max_seconds'), 'max in the next window').to.be.below(0.25);
  });

  it('replaces prom-client\'s gauges of the same names in keelson\'s registry, once each', async () => {
    const text = await metricsRegistry.metrics();
    for (const stat of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99']) {
      const name = `keelson_nodejs_eventloop_lag_${stat}_seconds`;
      expect(text.split('\n').filter((l) => l.startsWith(`${name} `)), name).to.have.length(1);
      expect(text).to.include(`# HELP ${name} The `);
      expect(text).to.include('how late a 100 ms timer fired.');
    }
    expect(text, 'prom-client\'s scrape-time lag stays').to.match(/^keelson_nodejs_eventloop_lag_seconds /m);
  });
});
