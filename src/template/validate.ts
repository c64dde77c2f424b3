import { LineCounter, parseAllDocuments } from 'yaml';
import { RenderedYamlError } from './errors.js';

/**
 * Parses rendered text as multi-document YAML; each non-empty document must be a mapping and, when
 * asked, a Kubernetes object (apiVersion, kind, metadata.name or generateName). Empty documents (a trailing `---`, a branch that rendered nothing) are
 * dropped. Nothing is applied from a template whose output fails here.
 */
export function parseRenderedDocuments(
  text: string,
  templateName: string,
  requireKubernetesObjects: boolean,
): Record<string, unknown>[] {
  const lines = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter: lines, prettyErrors: true });
  if (!Array.isArray(documents)) return []; // an empty stream
  const objects: Record<string, unknown>[] = [];
  documents.forEach((doc, i) => {
    const index = i + 1;
    // the first line of content, not of the `---` before it
    const startLine = lines.linePos(doc.contents?.range?.[0] ?? doc.range[0]).line;
    const [error] = doc.errors;
    if (error) {
      const line = error.linePos?.[0].line ?? startLine;
      throw new RenderedYamlError(templateName, index, line, `invalid YAML: ${error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
    }
    if (doc.contents === null) return;
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return;
    if (typeof value !== 'object' || Array.isArray(value)) {
      const got = Array.isArray(value) ? 'a list' : JSON.stringify(value);
      throw new RenderedYamlError(templateName, index, startLine,
        requireKubernetesObjects ? `expected a Kubernetes object (a mapping), got ${got}` : `expected a mapping, got ${got}`);
    }
    const object = value as Record<string, unknown>;
    if (requireKubernetesObjects) {
      const missing = missingKubernetesFields(object);
      if (missing.length > 0) {
        throw new RenderedYamlError(templateName, index, startLine, `not a Kubernetes object: missing ${missing.join(', ')}`);
      }
    }
    objects.push(object);
  });
  return objects;
}

function missingKubernetesFields(object: Record<string, unknown>): string[] {
  const nonEmpty = (v: unknown): boolean => typeof v === 'string' && v.trim() !== '';
  const missing: string[] = [];
  if (!nonEmpty(object.apiVersion)) missing.push('apiVersion');
  if (!nonEmpty(object.kind)) missing.push('kind');
  const metadata = object.metadata;
  const meta = typeof metadata === 'object' && metadata !== null ? (metadata as Record<string, unknown>) : {};
  // generateName is what `kubectl create` accepts instead of a name (e.g. for builder Jobs)
  if (!nonEmpty(meta.name) && !nonEmpty(meta.generateName)) missing.push('metadata.name');
  return missing;
}
