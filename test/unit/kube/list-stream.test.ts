import { expect } from 'chai';
import { ListItemSplitter } from '../../../src/kube/list-stream.js';

/** Feeds `text` in pieces of `size` characters; the items and the rest it saw. */
function split(text: string, size: number): { items: unknown[]; rest: Record<string, unknown> } {
  const items: unknown[] = [];
  const splitter = new ListItemSplitter((item) => items.push(item));
  for (let i = 0; i < text.length; i += size) splitter.push(text.slice(i, i + size));
  return { items, rest: splitter.end() };
}

describe('ListItemSplitter: the items of a list, one by one, as the text arrives', () => {
  const list = {
    kind: 'DeploymentList', apiVersion: 'apps/v1',
    metadata: { resourceVersion: '42', continue: 'eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ' },
    items: [
      { metadata: { name: 'a', annotations: { 'keel.sh/policy': 'minor', tricky: 'a "quoted" {brace} [bracket], comma \\ and \u00e9\u{1F680}' } }, spec: { template: { spec: { containers: [{ name: 'app', image: 'x:1' }] } } } },
      { metadata: { name: 'b', labels: {} }, spec: { replicas: 0, selector: { matchExpressions: [{ key: 'k', operator: 'In', values: ['1', '2'] }] } } },
      { metadata: { name: 'items' }, items: [{ nested: true }] },
    ],
  };
  const text = JSON.stringify(list, null, 1);

  for (const size of [1, 2, 3, 7, 64, text.length]) {
    it(`gives the same items and metadata as JSON.parse, in pieces of ${size}`, () => {
      const { items, rest } = split(text, size);
      expect(items).to.deep.equal(list.items);
      expect(rest).to.deep.equal({ ...list, items: [] });
    });
  }

  it('reads an empty list and a list without items', () => {
    expect(split('{"kind":"PodList","metadata":{"resourceVersion":"7"},"items":[]}', 5)).to.deep.equal({ items: [], rest: { kind: 'PodList', metadata: { resourceVersion: '7' }, items: [] } });
    expect(split('{"kind":"PodList","metadata":{},"items":null}', 3).rest).to.deep.equal({ kind: 'PodList', metadata: {}, items: null });
  });

  it('refuses a list cut off in the middle', () => {
    const splitter = new ListItemSplitter(() => undefined);
    splitter.push(text.slice(0, text.length / 2));
    expect(() => splitter.end()).to.throw(SyntaxError, 'ended in the middle');
  });
});
