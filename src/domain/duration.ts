import { z } from 'zod';

/** A span of time parsed once from text such as `30s`, `5m`, `1h30m`, `250ms` or `@every 30s`. */
export class Duration {
  private constructor(readonly milliseconds: number) {}

  static ofMilliseconds(ms: number): Duration {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`invalid duration ${ms}ms`);
    return new Duration(ms);
  }
  static ofSeconds(s: number): Duration {
    return Duration.ofMilliseconds(s * 1000);
  }

  /** Parses Go-style durations (`1h2m3s`, `500ms`); a bare number means seconds. Returns
   * undefined when the text is not a duration, so callers can name the bad field. */
  static tryParse(text: string): Duration | undefined {
    const trimmed = text.trim().replace(/^@every\s+/, '');
    if (/^\d+(\.\d+)?$/.test(trimmed)) return Duration.ofSeconds(Number(trimmed));
    const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
    const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
    let total = 0;
    let matched = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(trimmed)) !== null) {
      total += Number(m[1]) * units[m[2]!]!;
      matched = re.lastIndex;
    }
    if (matched === 0 || matched !== trimmed.length) return undefined;
    return Duration.ofMilliseconds(total);
  }

  static parse(text: string): Duration {
    const d = Duration.tryParse(text);
    if (!d) throw new RangeError(`"${text}" is not a duration (expected e.g. 30s, 5m, 1h30m)`);
    return d;
  }

  get seconds(): number {
    return this.milliseconds / 1000;
  }

  toString(): string {
    let ms = this.milliseconds;
    if (ms === 0) return '0s';
    if (ms < 1000) return `${ms}ms`;
    const parts: string[] = [];
    for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
      const n = Math.floor(ms / size);
      if (n > 0) parts.push(`${n}${unit}`);
      ms -= n * size;
    }
    return parts.join('');
  }
}

/** `30s`, `5m`, `1h30m` in a config file or annotation; parsed once into a Duration. */
export const DurationText = z.string().transform((text, ctx) => {
  const d = Duration.tryParse(text);
  if (!d) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration (expected e.g. 30s, 5m, 1h30m)` });
    return z.NEVER;
  }
  return d;
});
