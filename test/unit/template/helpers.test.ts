import { expect } from 'chai';
import { dnsLabel } from '../../../src/domain/index.js';
import { HELPERS, renderTemplate } from '../../../src/template/index.js';

const call = { root: { Registry: 'reg:5000', Num: 7, Map: { a: 1 } }, env: { HOME: '/home/u', Registry: 'env-wins-not' }, now: () => new Date('2026-01-02T03:04:05.000Z') };

describe('template helpers', () => {
  const cases: { helper: string; args: unknown[]; expected: unknown }[] = [
    { helper: 'default', args: ['ci', undefined], expected: 'ci' },
    { helper: 'default', args: ['ci', ''], expected: 'ci' },
    { helper: 'default', args: ['ci', 'dev'], expected: 'dev' },
    { helper: 'default', args: ['ci', 0], expected: 'ci' },
    { helper: 'empty', args: [undefined], expected: true },
    { helper: 'empty', args: [[]], expected: true },
    { helper: 'empty', args: [{}], expected: true },
    { helper: 'empty', args: [false], expected: true },
    { helper: 'empty', args: ['x'], expected: false },
    { helper: 'empty', args: [{ a: 1 }], expected: false },
    { helper: 'expandenv', args: ['$Registry/app'], expected: 'reg:5000/app' },
    { helper: 'expandenv', args: ['${HOME}/x and $Num'], expected: '/home/u/x and 7' },
    { helper: 'expandenv', args: ['no vars, $1 $ stays'], expected: 'no vars, $1 $ stays' },
    // Go's os.ExpandEnv: unset is empty, which stencil templates use to test for absence
    { helper: 'expandenv', args: ['[$NOT_SET_ANYWHERE][${NOT_SET_EITHER}]'], expected: '[][]' },
    { helper: 'b64enc', args: ['reg:5000'], expected: 'cmVnOjUwMDA=' },
    { helper: 'b64enc', args: ['ü'], expected: 'w7w=' },
    { helper: 'replace', args: ['/', '-', 'feature/a/b'], expected: 'feature-a-b' },
    { helper: 'ternary', args: ['yes', 'no', true], expected: 'yes' },
    { helper: 'ternary', args: ['yes', 'no', false], expected: 'no' },
    { helper: 'ternary', args: ['yes', 'no', undefined], expected: 'no' },
    { helper: 'now', args: [], expected: '2026-01-02T03:04:05.000Z' },
    { helper: 'toYaml', args: [{ a: [1, 2], b: 'x' }], expected: 'a:\n  - 1\n  - 2\nb: x' },
    { helper: 'toJson', args: [{ a: [1, 2] }], expected: '{"a":[1,2]}' },
    { helper: 'lower', args: ['MiXed'], expected: 'mixed' },
    { helper: 'upper', args: ['MiXed'], expected: 'MIXED' },
    { helper: 'trim', args: ['  x \n'], expected: 'x' },
    { helper: 'quote', args: ['say "hi"'], expected: '"say \\"hi\\""' },
    { helper: 'trunc', args: [5, 'abcdefgh'], expected: 'abcde' },
    { helper: 'trunc', args: [-3, 'abcdefgh'], expected: 'fgh' },
    { helper: 'trunc', args: [50, 'abc'], expected: 'abc' },
    { helper: 'trunc', args: ['2', 'abc'], expected: 'ab' },
    { helper: 'dnsLabel', args: ['Feature/X_1'], expected: 'feature-x-1' },
    { helper: 'dnsLabel', args: [20, 'a-very-long-branch-name'], expected: dnsLabel('a-very-long-branch-name', 20) },
    { helper: 'indent', args: [2, 'a\nb'], expected: '  a\n  b' },
    { helper: 'nindent', args: [4, 'a'], expected: '\n    a' },
    { helper: 'printf', args: ['%s:%d %v %q 100%%', 'x', 5, true, 'q'], expected: 'x:5 true "q" 100%' },
    { helper: 'print', args: ['a', 1, 2, 'b'], expected: 'a1 2b' },
    { helper: 'eq', args: ['a', 'b', 'a'], expected: true },
    { helper: 'eq', args: [1, 2], expected: false },
    { helper: 'ne', args: ['a', 'b'], expected: true },
    { helper: 'and', args: ['a', '', 'c'], expected: '' },
    { helper: 'and', args: ['a', 'c'], expected: 'c' },
    { helper: 'or', args: ['', undefined, 'c'], expected: 'c' },
    { helper: 'not', args: [''], expected: true },
  ];
  for (const { helper, args, expected } of cases) {
    it(`${helper} ${JSON.stringify(args)} → ${JSON.stringify(expected)}`, () => {
      expect(HELPERS[helper]!.fn(args, call)).to.deep.equal(expected);
    });
  }

  const failures: { helper: string; args: unknown[]; message: RegExp }[] = [
    { helper: 'trunc', args: ['x', 'abc'], message: /whole number/ },
    { helper: 'b64enc', args: [{ a: 1 }], message: /got a map \(use toYaml or toJson\)/ },
    { helper: 'printf', args: ['%x', 1], message: /verb "%x" is not supported/ },
    { helper: 'printf', args: ['%s %s', 'a'], message: /needs more arguments/ },
    { helper: 'printf', args: ['%d', 'abc'], message: /whole number/ },
  ];
  for (const { helper, args, message } of failures) {
    it(`${helper} ${JSON.stringify(args)} fails: ${message}`, () => {
      expect(() => HELPERS[helper]!.fn(args, call)).to.throw(message);
    });
  }

  it('expandenv prefers template values over the environment, as stencil does', () => {
    expect(HELPERS.expandenv!.fn(['$Registry'], call)).to.equal('reg:5000');
    expect(HELPERS.expandenv!.fn(['$Registry'], { ...call, root: {} })).to.equal('env-wins-not');
  });

  it('a helper failure names the template, line and helper', () => {
    expect(() => renderTemplate('a: 1\nb: {{ trunc "x" .S }}\n', { S: 'abc' }, { templateName: 'job.yaml', requireKubernetesObjects: false }))
      .to.throw('job.yaml:2: trunc: expected a whole number as the length, got "x"');
  });
});
