import { expect } from 'chai';
import { HELPERS, TemplateSyntaxError, detectSyntax, translateGoTemplate } from '../../../src/template/index.js';

describe('Go template syntax', () => {
  describe('detectSyntax', () => {
    const cases: [string, 'go' | 'handlebars'][] = [
      ['image: {{ .Image }}', 'go'],
      ['{{ $b := .duat.gitBranch }}', 'go'],
      ['{{ "x" | lower }}', 'go'],
      ['{{- now }}', 'go'],
      ['{{ now -}}', 'go'],
      ['{{/* a comment */}}', 'go'],
      ['{{ if eq 1 1 }}x{{ end }}', 'go'],
      ['{{ range . }}{{ end }}', 'go'],
      ['image: {{Image}}', 'handlebars'],
      ['{{#each List as |item i|}}{{item}}{{/each}}', 'handlebars'],
      ['{{~now~}}', 'handlebars'],
      ['{{default "ci" Namespace}}', 'handlebars'],
      ['{{!-- note --}}', 'handlebars'],
      ['no actions at all', 'handlebars'],
      ['{{ now }}', 'handlebars'],
    ];
    for (const [source, expected] of cases) {
      it(`${JSON.stringify(source)} is ${expected}`, () => {
        expect(detectSyntax(source, 't.yaml')).to.equal(expected);
      });
    }

    it('refuses a file that mixes both, naming both lines', () => {
      expect(() => detectSyntax('a: {{ .A }}\nb: {{#if B}}x{{/if}}\n', 't.yaml'))
        .to.throw(TemplateSyntaxError, 't.yaml:2: mixes Go template syntax (line 1) with Handlebars syntax (line 2)');
    });
  });

  describe('translateGoTemplate', () => {
    const cases: [go: string, handlebars: string][] = [
      ['{{ .Image }}', '{{this.Image}}'],
      ['{{ . }}', '{{this}}'],
      ['{{ .duat.gitBranch }}', '{{this.duat.gitBranch}}'],
      ['{{ $.Image }}', '{{@root.Image}}'],
      ['{{ default "ci" .Namespace }}', '{{default "ci" this.Namespace}}'],
      ['{{ expandenv "$Registry" | b64enc }}', '{{b64enc (expandenv "$Registry")}}'],
      ['{{ .X | lower | trunc 10 }}', '{{trunc 10 (lower this.X)}}'],
      ['{{ trunc 10 (lower .X) }}', '{{trunc 10 (lower this.X)}}'],
      ['{{ now }}', '{{now}}'],
      ['{{ "lit" }}', '{{print "lit"}}'],
      ['{{ 42 }}', '{{print 42}}'],
      ['{{ ternary "a" "b" true }}', '{{ternary "a" "b" true}}'],
      ['{{ default nil .X }}', '{{default null this.X}}'],
      ['{{ .A | default `raw` }}', '{{default "raw" this.A}}'],
      ['{{ $b := .duat.gitBranch }}{{ $b }}', '{{__let "v_b_1" this.duat.gitBranch}}{{@v_b_1}}'],
      ['{{ $c := .Cfg }}{{ $c.port }}', '{{__let "v_c_1" this.Cfg}}{{@v_c_1.port}}'],
      ['{{ if .X }}a{{ else }}b{{ end }}', '{{#if this.X}}a{{else}}b{{/if}}'],
      ['{{ if .X }}a{{ else if .Y }}b{{ end }}', '{{#if this.X}}a{{else if this.Y}}b{{/if}}'],
      ['{{ if eq .A "x" }}y{{ end }}', '{{#if (eq this.A "x")}}y{{/if}}'],
      ['{{ range .List }}{{ . }}{{ end }}', '{{#each this.List}}{{this}}{{/each}}'],
      ['{{ range .List }}x{{ else }}none{{ end }}', '{{#each this.List}}x{{else}}none{{/each}}'],
      ['{{ range $e := .L }}{{ $e }}{{ end }}', '{{#each this.L as |v_e_1|}}{{v_e_1}}{{/each}}'],
      ['{{ range $i, $e := .L }}{{ $i }}={{ $e.n }}{{ end }}', '{{#each this.L as |v_e_1 v_i_2|}}{{v_i_2}}={{v_e_1.n}}{{/each}}'],
      ['a\n{{- .X -}}\nb', 'a\n{{~this.X~}}\nb'],
      ['{{- if .X }}\n{{- end }}', '{{~#if this.X}}\n{{~/if}}'],
      ['{{/* note */}}', '{{!----}}'],
      ['{{- /* a\nb */ -}}', '{{~!--\n--~}}'],
      ['{{ .X\n| lower }}', '{{lower this.X\n}}'],
      ['C:\\{{ .X }}', 'C:\\\\{{this.X}}'],
      ['{{ printf "%s-%d" .A 5 }}', '{{printf "%s-%d" this.A 5}}'],
      ['{{ .now }}', '{{this.now}}'],
    ];
    for (const [go, handlebars] of cases) {
      it(`${JSON.stringify(go)} → ${JSON.stringify(handlebars)}`, () => {
        expect(translateGoTemplate(go, 't.yaml').source).to.equal(handlebars);
      });
    }

    it('keeps strings Handlebars cannot hold inline in a side table', () => {
      const t = translateGoTemplate('{{ replace "\\n" "\\"" .S }}', 't.yaml');
      expect(t.source).to.equal('{{replace (__lit 0) (__lit 1) this.S}}');
      expect(t.literals).to.deep.equal(['\n', '"']);
    });

    it('keeps every line where it was, so errors point at the Go source', () => {
      const go = 'a: 1\n{{- /* two\nlines */}}\nb: {{ .B\n  | lower }}\nc: {{ .C }}\n';
      const lines = translateGoTemplate(go, 't.yaml').source.split('\n');
      expect(lines).to.have.length(go.split('\n').length);
      expect(lines[5]).to.equal('c: {{this.C}}');
    });

    const rejected: [go: string, message: string][] = [
      ['a\n{{ with .X }}{{ .Y }}{{ end }}', 't.yaml:2: "with" is not supported'],
      ['{{ define "x" }}{{ end }}', 't.yaml:1: "define" is not supported: named templates'],
      ['{{ template "x" . }}', 't.yaml:1: "template" is not supported'],
      ['{{ block "x" . }}{{ end }}', 't.yaml:1: "block" is not supported'],
      ['{{ range .L }}{{ break }}{{ end }}', 't.yaml:1: "break" is not supported'],
      ['a\nb\n{{ printf "%x" .A }}', 't.yaml:3: printf verb "%x" is not supported'],
      ['{{ printf "%5.2f" .A }}', 'printf verb "%5.2f" is not supported'],
      ['{{ $x }}', 't.yaml:1: undefined variable "$x"'],
      ['{{ if .A }}{{ $x := 1 }}{{ end }}{{ $x }}', 'undefined variable "$x"'],
      ['{{ $x := 1 }}{{ $x = 2 }}', 'assigning to an existing variable'],
      ['{{ if .X }}', 't.yaml:1: {{ if }} opened on line 1 has no {{ end }}'],
      ['x\n{{ end }}', 't.yaml:2: {{ end }} without an open {{ if }} or {{ range }}'],
      ['{{ else }}', '{{ else }} outside {{ if }} or {{ range }}'],
      ['{{ if .A }}{{ else with .B }}{{ end }}', '"{{ else with }}" is not supported here'],
      ["{{ 'c' }}", 'character constants are not supported'],
      ['{{ 0x1F }}', 'unsupported number "0x1F"'],
      ['{{ .A .B }}', 'cannot give arguments to a value that is not a function'],
      ['{{ .A | .B }}', 'cannot give arguments|a pipeline stage must be a function'],
      ['{{ (lower .A).B }}', 'reading a field of a parenthesized pipeline is not supported'],
      ['{{ .A ', 'unclosed action'],
      ['{{/* never closed', 'unclosed comment'],
      ['{{ "unterminated }}', 'unclosed action'],
      ['{{ "a\\q" }}', 'unsupported escape in string'],
      ['{{ }}', 'empty action'],
    ];
    it('reports unknown functions and wrong argument counts without stopping, the call rendering as nothing', () => {
      const translation = translateGoTemplate('{{ index .L 0 }}\n{{ lower }}\n{{ upper .A }}', 't.yaml');
      expect(translation.problems.map((p) => p.message)).to.deep.equal([
        `t.yaml:1: unsupported function "index" (supported: ${Object.keys(HELPERS).join(', ')})`,
        't.yaml:2: "lower" takes 1 arguments, got 0',
      ]);
      expect(translation.source).to.contain('__skip').and.contain('upper');
    });

    for (const [go, message] of rejected) {
      it(`rejects ${JSON.stringify(go)}: ${message}`, () => {
        const attempt = (): unknown => translateGoTemplate(go, 't.yaml');
        expect(attempt).to.throw(TemplateSyntaxError);
        if (message.includes('|')) expect(attempt).to.throw(new RegExp(message));
        else expect(attempt).to.throw(message);
      });
    }
  });
});
