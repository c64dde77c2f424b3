import { redactSecrets } from '../log/index.js';

/** Markup that is already safe: built by `html` or `raw`, never from outside text. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** Marks trusted markup (constants in this folder only). */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

/**
 * The only way pages are built: every interpolated value is redacted (registered secrets,
 * credentials in URLs) and escaped, unless it is SafeHtml. Arrays are joined; null, undefined and
 * false render nothing, so `${cond && html`...`}` works.
 */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) {
    out += render(values[i]) + strings[i + 1]!;
  }
  return new SafeHtml(out);
}

function render(value: unknown): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(redactSecrets(String(value)));
}

/**
 * Text that may wrap after `/`, `^` and `@` (URLs, image references, workload keys) instead of
 * anywhere: redacted whole first, so a secret is never split past the scrubber.
 */
export function breakable(text: string | undefined): SafeHtml | undefined {
  if (text === undefined) return undefined;
  const parts = redactSecrets(text).split(/(?<=[/^@])/);
  return new SafeHtml(parts.map((part) => escapeHtml(part)).join('<wbr>'));
}
