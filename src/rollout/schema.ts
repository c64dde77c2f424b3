import { z } from 'zod';
import cron from 'node-cron';
import { Duration } from '../domain/index.js';
import { InputError, messageOf } from '../errors.js';
import { BooleanText, parsePolicy, translateGoRegexp, type Policy } from '../policy/index.js';
import { parseSchedule } from '../registry-watch/index.js';
import { AnnotationError } from './errors.js';

/** Keel's default poll schedule (types.KeelPollDefaultSchedule). */
export const DEFAULT_POLL_SCHEDULE = '@every 1m';
/** Keel's default approval deadline in hours (types.KeelApprovalDeadlineDefault). */
export const DEFAULT_APPROVAL_DEADLINE_HOURS = 24;

/** The pod-template annotations an update sets, so that the pods restart and the change is visible. */
export const UPDATE_TIME_ANNOTATION = 'keel.sh/update-time';
export const KEELSON_UPDATE_TIME_ANNOTATION = 'keelson.dev/update-time';

/**
 * The settings keelson reads, by their Keel name. keelson.dev/<same name> means the same and
 * `keelson.dev/pinDigest` is keelson's own.
 */
export const SETTING_NAMES = [
  'policy', 'trigger', 'pollSchedule', 'matchTag', 'matchPreRelease', 'monitorContainers',
  'initContainers', 'approvals', 'approvalDeadline', 'pinDigest',
] as const;
export type SettingName = (typeof SETTING_NAMES)[number];

// Keel's legacy spelling, read after the current one from the same source.
const LEGACY_NAMES: Partial<Record<SettingName, string>> = { matchTag: 'match-tag' };
const KEELSON_ONLY: ReadonlySet<SettingName> = new Set(['pinDigest']);

const CRON_DESCRIPTORS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

/**
 * Keel's schedules (robfig/cron with seconds) as the registry watcher runs them (at least 1s): `@every 1m30s`, the descriptors, six fields with
 * seconds first; five-field cron is accepted too and means what it means everywhere else.
 */
export function isPollSchedule(text: string): boolean {
  try {
    // The registry watcher's own parser, so anything accepted here is a schedule it can run.
    parseSchedule(text);
  } catch {
    return false;
  }
  const trimmed = text.trim();
  if (trimmed.startsWith('@every')) {
    const duration = Duration.tryParse(trimmed);
    return /^@every\s+\S/.test(trimmed) && duration !== undefined && duration.milliseconds > 0;
  }
  if (CRON_DESCRIPTORS.has(trimmed)) return true;
  const fields = trimmed.split(/\s+/).length;
  return (fields === 5 || fields === 6) && cron.validate(trimmed);
}

const Count = z.string().trim().regex(/^\d+$/, 'expected a whole number').transform(Number);

/**
 * The annotations (and labels) we act on, by Keel name. Only these keys are read; a workload's
 * other annotations are ignored.
 */
export const KeelAnnotations = z.object({
  'keel.sh/policy': z.string().trim().min(1, 'empty policy'),
  'keel.sh/trigger': z.enum(['poll', 'default'], { error: 'expected poll or default' }).default('default'),
  'keel.sh/pollSchedule': z.string().trim()
    .refine(isPollSchedule, 'expected "@every 1m", @hourly/@daily/..., or a cron expression (six fields with seconds, as Keel)')
    .default(DEFAULT_POLL_SCHEDULE),
  'keel.sh/matchTag': BooleanText.default(false),
  'keel.sh/matchPreRelease': BooleanText.default(true),
  'keel.sh/monitorContainers': z.string().min(1, 'empty regexp').optional(),
  'keel.sh/initContainers': BooleanText.default(false),
  'keel.sh/approvals': Count.default(0),
  'keel.sh/approvalDeadline': Count.refine((n) => n > 0, 'expected a number of hours > 0').default(DEFAULT_APPROVAL_DEADLINE_HOURS),
  'keel.sh/pinDigest': BooleanText.default(false),
});
export type KeelAnnotations = z.infer<typeof KeelAnnotations>;

/** A workload's rollout settings, parsed once when the workload is seen. */
export interface WorkloadSettings {
  readonly policy: Policy;
  readonly trigger: 'poll' | 'default';
  readonly pollSchedule: string;
  readonly matchTag: boolean;
  readonly matchPreRelease: boolean;
  /** Which containers to watch (unanchored, as Keel's Go regexp.MatchString); all when absent */
  readonly monitorContainers?: RegExp;
  readonly initContainers: boolean;
  readonly approvals: number;
  readonly approvalDeadlineHours: number;
  /** Roll to `tag@sha256:...` instead of `tag` (keeps a multi-arch index intact) */
  readonly pinDigest: boolean;
  /** Where each setting came from, e.g. `annotation keel.sh/policy`, for messages */
  readonly sources: Readonly<Partial<Record<SettingName, string>>>;
}

type StringMap = Readonly<Record<string, string>> | undefined;

/**
 * Where a setting is looked up, first found wins (the one documented precedence):
 *   1. annotation keelson.dev/NAME   2. annotation keel.sh/NAME (then Keel's legacy spelling)
 *   3. label keelson.dev/NAME        4. label keel.sh/NAME (then legacy)
 * Annotations win over labels as in Keel (GetPolicyFromLabelsOrAnnotations); keelson's own
 * prefix wins over Keel's so a workload can be moved from Keel one key at a time. Labels cannot
 * hold every value (`@every 1m` is not a valid label value), so annotations are the usual place.
 */
export function lookupSetting(name: SettingName, annotations: StringMap, labels: StringMap): { value: string; source: string } | undefined {
  const keys = [`keelson.dev/${name}`];
  if (!KEELSON_ONLY.has(name)) keys.push(`keel.sh/${name}`);
  const legacy = LEGACY_NAMES[name];
  if (legacy) keys.push(`keel.sh/${legacy}`);
  for (const [kind, map] of [['annotation', annotations], ['label', labels]] as const) {
    for (const key of keys) {
      const value = map?.[key];
      if (value !== undefined) return { value, source: `${kind} ${key}` };
    }
  }
  return undefined;
}

/** True when the workload asks for rollouts at all: a policy in any of the four places. */
export function isManaged(annotations: StringMap, labels: StringMap): boolean {
  return lookupSetting('policy', annotations, labels) !== undefined;
}

/**
 * Reads a workload's settings. Every bad field is reported at once in one AnnotationError naming
 * the workload and each annotation or label as it was written.
 */
export function readWorkloadSettings(workload: string, annotations: StringMap, labels: StringMap): WorkloadSettings {
  const raw: Record<string, string> = {};
  const sources: Partial<Record<SettingName, string>> = {};
  for (const name of SETTING_NAMES) {
    const found = lookupSetting(name, annotations, labels);
    if (!found) continue;
    raw[`keel.sh/${name}`] = found.value;
    sources[name] = found.source.replace(/^(annotation|label) /, '');
  }
  const problems: Array<{ field: string; message: string }> = [];
  const fieldOf = (key: string): string => sources[key.replace(/^keel\.sh\//, '') as SettingName] ?? key;

  const parsed = KeelAnnotations.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = String(issue.path[0] ?? 'keel.sh/policy');
      const message = issue.code === 'invalid_type' && raw[key] === undefined ? 'missing (expected e.g. keel.sh/policy: minor)' : issue.message;
      problems.push({ field: fieldOf(key), message: `${message}${raw[key] !== undefined ? ` (got "${raw[key]}")` : ''}` });
    }
  }

  let policy: Policy | undefined;
  if (raw['keel.sh/policy'] !== undefined && !problems.some((p) => p.field === fieldOf('keel.sh/policy'))) {
    try {
      policy = parsePolicy(raw['keel.sh/policy'], fieldOf('keel.sh/policy'));
    } catch (error) {
      const detail = error instanceof InputError ? messageOf(error).replace(`${fieldOf('keel.sh/policy')}: `, '') : messageOf(error);
      problems.push({ field: fieldOf('keel.sh/policy'), message: detail });
    }
  }

  let monitorContainers: RegExp | undefined;
  const monitor = raw['keel.sh/monitorContainers'];
  if (monitor) {
    try {
      const { source, flags } = translateGoRegexp(monitor);
      monitorContainers = new RegExp(source, flags);
    } catch (error) {
      problems.push({ field: fieldOf('keel.sh/monitorContainers'), message: `invalid regexp "${monitor}": ${messageOf(error)}` });
    }
  }

  if (problems.length > 0 || !parsed.success || !policy) {
    const first = problems[0] ?? { field: 'keel.sh/policy', message: 'missing' };
    const rest = problems.slice(1).map((p) => `; ${p.field}: ${p.message}`).join('');
    throw new AnnotationError(workload, first.field, `${first.message}${rest}`);
  }
  const data = parsed.data;
  return {
    policy,
    trigger: data['keel.sh/trigger'],
    pollSchedule: data['keel.sh/pollSchedule'],
    matchTag: data['keel.sh/matchTag'],
    matchPreRelease: data['keel.sh/matchPreRelease'],
    ...(monitorContainers ? { monitorContainers } : {}),
    initContainers: data['keel.sh/initContainers'],
    approvals: data['keel.sh/approvals'],
    approvalDeadlineHours: data['keel.sh/approvalDeadline'],
    pinDigest: data['keel.sh/pinDigest'],
    sources,
  };
}
