import type { RunId } from '../domain/index.js';
import { messageOf } from '../errors.js';
import { redactSecrets, silentLogger, type Logger } from '../log/index.js';
import type { RunLogStore, StateStore } from '../store/index.js';
import type { ReportResult } from './types.js';

/** State key of a run's report results. */
export function reportStateKey(runId: RunId | string): string {
  return `report:${runId}`;
}

/** One run-log line per result: `report: github-status pending posted (api.github.com org/app)`. */
export function reportLogLine(result: ReportResult): string {
  const what = [result.reporter, result.event, result.state].filter(Boolean).join(' ');
  const tail = result.outcome === 'posted' ? '' : result.detail ? `: ${result.detail}` : '';
  const tries = result.attempts > 1 ? `, ${result.attempts} attempts` : '';
  return redactSecrets(`report: ${what} ${result.outcome === 'failed' ? 'NOT posted' : result.outcome} (${result.target}${tries})${tail}\n`);
}

/**
 * Appends the results to the run's log and to state `report:<runId>` (a list, oldest first).
 * Never throws: a store failure here is logged, and the run goes on.
 */
export async function recordReport(store: RunLogStore & StateStore, runId: RunId, results: readonly ReportResult[],
  logger: Logger = silentLogger()): Promise<void> {
  if (results.length === 0) return;
  try {
    await store.appendLog(runId, results.map(reportLogLine).join(''));
    const key = reportStateKey(runId);
    const previous = (await store.getState<ReportResult[]>(key)) ?? [];
    await store.setState(key, [...previous, ...results.map((result) => redactResult(result))]);
  } catch (error) {
    logger.warn({ run: runId, error: messageOf(error) }, 'report results not recorded');
  }
}

function redactResult(result: ReportResult): ReportResult {
  return result.detail === undefined ? result : { ...result, detail: redactSecrets(result.detail) };
}
