import { createHash } from 'node:crypto';

const MAX_LABEL = 63;

/**
 * A valid Kubernetes DNS label (RFC 1123: lower-case alphanumerics and '-', starting and ending
 * with an alphanumeric, at most 63 characters) from any string. When the input had to be cut, a
 * short hash of the whole input is kept at the end so that two long names that share a prefix
 * still map to different labels.
 */
export function dnsLabel(input: string, maxLength = MAX_LABEL): string {
  const limit = Math.max(1, Math.min(maxLength, MAX_LABEL));
  let label = input
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // accents split off by NFKD
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (label.length === 0) label = 'x';
  if (label.length <= limit && label === input) return label;
  if (label.length > limit) {
    const hash = createHash('sha256').update(input).digest('hex').slice(0, 8);
    if (limit <= hash.length + 1) return hash.slice(0, limit);
    label = `${label.slice(0, limit - hash.length - 1).replace(/-+$/g, '')}-${hash}`;
  }
  if (!/^[a-z0-9]/.test(label)) label = `x${label}`.slice(0, limit);
  return label.replace(/-+$/g, '') || 'x';
}

/** True when `name` is already a valid DNS label. */
export function isDnsLabel(name: string): boolean {
  return name.length > 0 && name.length <= MAX_LABEL && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name);
}
