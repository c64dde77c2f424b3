import { randomBytes } from 'node:crypto';
import { dnsLabel } from './naming.js';

/** A run's id: a DNS label of at most 40 characters, so that it can name Kubernetes objects
 * with room for a prefix. */
export type RunId = string & { readonly __brand: 'RunId' };

/** `<yyyymmdd-hhmmss>-<6 hex>`: sortable by creation time and unique without coordination. */
export function newRunId(now = new Date()): RunId {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${randomBytes(3).toString('hex')}` as RunId;
}

export function parseRunId(text: string): RunId {
  const label = dnsLabel(text, 40);
  if (label !== text) throw new Error(`"${text}" is not a run id (expected something like 20261123-101500-a1b2c3)`);
  return text as RunId;
}
