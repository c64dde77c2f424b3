import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import {
  HELPERS, RenderedYamlError, TemplateProblemsError, TemplateRenderError, TemplateSyntaxError, TemplateValueError, renderTemplate, renderTemplateFile,
  type TemplateValues,
} from '../../../src/template/index.js';
import { InputError } from '../../../src/errors.js';

const values: TemplateValues = {
  Image: 'registry:5000/team/app:main',
  Registry: 'registry:5000',
  Namespace: '',
  ID: '20260101-000000-abcdef',
  List: ['a', 'b'],
  Items: [{ name: 'x', port: 80 }, { name: 'y', port: 81 }],
  duat: { gitBranch: 'Feature/Login', gitHash: '0123abcd', version: '1.2.3' },
};
const env = { HOME: '/home/u', SECRET_TOKEN: 'never-rendered' };
const plain = { templateName: 'job.yaml', requireKubernetesObjects: false, env, now: () => new Date('2026-01-02T03:04:05Z') };

function render(source: string, vals: TemplateValues = values): string {
  return renderTemplate(source, vals, plain).text;
}

describe('renderTemplate', () => {
  describe('stencil (Go) and Handlebars templates render the same', () => {
    const cases: [title: string, go: string, handlebars: string, expected: string][] = [
      ['a value', 'i: {{ .Image }}', 'i: {{Image}}', 'i: registry:5000/team/app:main'],
      ['a nested value', 'b: {{ .duat.gitBranch }}', 'b: {{duat.gitBranch}}', 'b: Feature/Login'],
      ['default of an empty value', 'n: {{ default "ci" .Namespace }}', 'n: {{default "ci" Namespace}}', 'n: ci'],
      ['default of a missing value', 'n: {{ default "ci" .Nope }}', 'n: {{default "ci" Nope}}', 'n: ci'],
      ['default as a pipeline stage', 'n: {{ .Nope | default "ci" }}', 'n: {{default "ci" Nope}}', 'n: ci'],
      ['expandenv then b64enc', 'r: {{ expandenv "$Registry" | b64enc }}', 'r: {{b64enc (expandenv "$Registry")}}', 'r: cmVnaXN0cnk6NTAwMA=='],
      ['a variable', '{{ $b := .duat.gitBranch }}b: {{ $b }}', 'b: {{duat.gitBranch}}', 'b: Feature/Login'],
      ['if/else on a missing value', 'x: {{ if .Nope }}yes{{ else }}no{{ end }}', 'x: {{#if Nope}}yes{{else}}no{{/if}}', 'x: no'],
      ['if/else if', 'x: {{ if .Nope }}a{{ else if .Image }}b{{ end }}', 'x: {{#if Nope}}a{{else if Image}}b{{/if}}', 'x: b'],
      ['range over a list', 'l: {{ range .List }}{{ . }}{{ end }}', 'l: {{#each List}}{{this}}{{/each}}', 'l: ab'],
      ['range with variables', 'l: {{ range $i, $e := .Items }}{{ $i }}{{ $e.name }}{{ end }}', 'l: {{#each Items as |e i|}}{{i}}{{e.name}}{{/each}}', 'l: 0x1y'],
      ['root inside range', 'l: {{ range .List }}{{ $.ID }}{{ end }}', 'l: {{#each List}}{{@root.ID}}{{/each}}', 'l: 20260101-000000-abcdef20260101-000000-abcdef'],
      ['a pipeline', 'b: {{ .duat.gitBranch | lower | trunc 7 }}', 'b: {{trunc 7 (lower duat.gitBranch)}}', 'b: feature'],
      ['dnsLabel', 'n: {{ .duat.gitBranch | dnsLabel }}', 'n: {{dnsLabel duat.gitBranch}}', 'n: feature-login'],
      ['replace', 'n: {{ replace "/" "-" .duat.gitBranch }}', 'n: {{replace "/" "-" duat.gitBranch}}', 'n: Feature-Login'],
      ['ternary', 'n: {{ ternary "prod" "dev" (eq .duat.gitBranch "main") }}', 'n: {{ternary "prod" "dev" (eq duat.gitBranch "main")}}', 'n: dev'],
      ['empty', 'n: {{ empty .Namespace }}', 'n: {{empty Namespace}}', 'n: true'],
      ['now', 't: {{ now }}', 't: {{now}}', 't: 2026-01-02T03:04:05.000Z'],
      ['toJson', 'l: {{ toJson .List }}', 'l: {{toJson List}}', 'l: ["a","b"]'],
      ['toYaml with nindent', 'l:{{ toYaml .List | nindent 2 }}', 'l:{{nindent 2 (toYaml List)}}', 'l:\n  - a\n  - b'],
      ['Env, only what is asked for', 'h: {{ .Env.HOME }}', 'h: {{Env.HOME}}', 'h: /home/u'],
      ['a number', 'p: {{ (index0) }}'.replace('(index0)', '.duat.version'), 'p: {{duat.version}}', 'p: 1.2.3'],
    ];
    for (const [title, go, handlebars, expected] of cases) {
      it(`${title}: Go`, () => expect(render(go)).to.equal(expected));
      it(`${title}: Handlebars`, () => expect(render(handlebars)).to.equal(expected));
    }
  });

  describe('whitespace', () => {
    it('trims like Go with {{- and -}}', () => {
      expect(render('a:\n  {{- if .Image }}\n  b: 1\n  {{- end }}\nc: 2\n')).to.equal('a:\n  b: 1\nc: 2\n');
    });
    it('keeps the lines around a standalone Go action, as Go does', () => {
      expect(render('{{ if .Image }}\na: 1\n{{ end }}\n')).to.equal('\na: 1\n\n');
    });
    it('drops standalone block lines in Handlebars, as Handlebars does', () => {
      expect(render('{{#if Image}}\na: 1\n{{/if}}\n')).to.equal('a: 1\n');
    });
    it('prints text that looks like Handlebars in a Go template verbatim', () => {
      expect(render('a: "{{ .Image }} \\\\ }}"')).to.equal('a: "registry:5000/team/app:main \\\\ }}"');
    });
  });

  describe('is strict about missing values', () => {
    const cases: [title: string, source: string, message: string][] = [
      ['Go, with the line and a suggestion', 'a: 1\nb: 2\nimage: {{ .Imagee }}\n',
        'job.yaml:3: no value for "Imagee" (did you mean "Image"?); pass --set Imagee=VALUE or add it to a --values file'],
      ['Handlebars, with the line and a suggestion', 'a: 1\nimage: {{Imagee}}\n',
        'job.yaml:2: no value for "Imagee" (did you mean "Image"?)'],
      ['a nested key', '\n\n\n\nb: {{ .duat.gitbranch }}', 'job.yaml:5: no value for "duat.gitbranch" (did you mean "duat.gitBranch"?)'],
      ['a missing parent', 'b: {{ .duet.gitBranch }}', 'job.yaml:1: no value for "duet.gitBranch" (did you mean "duat.gitBranch"?)'],
      ['a helper argument', 'b: {{ .Nope | lower }}', 'job.yaml:1: no value for "Nope"; pass --set Nope=VALUE'],
      ['a sub-expression argument', 'b: {{lower (trim Nope)}}', 'job.yaml:1: no value for "Nope"'],
      ['the list of a range', '\nb: {{ range .Nope }}{{ end }}', 'job.yaml:2: no value for "Nope"'],
      ['a field of a range item', 'b:\n{{ range .Items }}\n  - {{ .nmae }}\n{{ end }}', 'job.yaml:3: no value for "nmae" (did you mean "name"?)'],
      ['a field of a range variable', 'b: {{ range $e := .Items }}{{ $e.prot }}{{ end }}', 'job.yaml:1: no value for "$e.prot" (did you mean "$e.port"?)'],
      ['a field of a variable', '{{ $d := .duat }}\nb: {{ $d.versoin }}', 'job.yaml:2: no value for "$d.versoin" (did you mean "$d.version"?)'],
      ['$ inside a range', 'b: {{ range .List }}{{ $.Nope }}{{ end }}', 'job.yaml:1: no value for "Nope"'],
      ['an environment variable', 'h: {{ .Env.NOT_SET_X }}', 'job.yaml:1: no value for "Env.NOT_SET_X"; set the environment variable NOT_SET_X'],
      ['a condition that compares', 'b: {{ if eq .Nope "x" }}y{{ end }}', 'job.yaml:1: no value for "Nope"'],
      ['a null value', 'b: {{ .Null }}', 'job.yaml:1: no value for "Null"'],
    ];
    for (const [title, source, message] of cases) {
      it(title, () => {
        expect(() => renderTemplate(source, { ...values, Null: null }, plain)).to.throw(TemplateValueError, message);
      });
    }

    it('carries the code, template, line and key', () => {
      try {
        render('\n{{ .Imagee }}');
        expect.fail('rendered');
      } catch (error) {
        expect(error).to.be.instanceOf(TemplateValueError);
        const e = error as TemplateValueError;
        expect([e.code, e.exitCode, e.template, e.line, e.key, e.suggestion]).to.deep.equal(['KEELSON_TEMPLATE_VALUE', 2, 'job.yaml', 2, 'Imagee', 'Image']);
      }
    });

    it('refuses to print a map or a list', () => {
      expect(() => render('l: {{ .List }}')).to.throw(TemplateRenderError, 'job.yaml:1: "List" is a list; render it with toYaml or toJson');
    });

    it('lets default, empty, if, and, or and not test missing values', () => {
      expect(render('a: {{ default "d" .A }} {{ empty .A }} {{ if .A }}x{{ end }} {{ and .A .B }}{{ or .A "o" }} {{ not .A }}'))
        .to.equal('a: d true  o true');
    });

    it('takes only the environment variables the template names', () => {
      const out = renderTemplate('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {{ toJson .Env }}', values, { ...plain, requireKubernetesObjects: true });
      expect(out.documents[0]).to.deep.equal({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: {} });
      expect(out.text).to.not.include('never-rendered');
    });
  });

  describe('syntax errors', () => {
    const cases: [source: string, message: string][] = [
      ['a: 1\n{{#if Image}}\nb', 'job.yaml:3: cannot parse the template'],
      ['{{#if A}}\n{{/each}}', "job.yaml:1: if doesn't match each"],
      ['a: {{unknownHelper 1}}', 'job.yaml:1: unknown helper "unknownHelper"'],
      ['\na: {{#blah "x"}}{{/blah}}', 'job.yaml:2: unknown helper "blah"'],
      ['a: {{> partial}}', 'job.yaml:1: partials ({{> name}}) are not supported'],
      ['a: {{trunc 1}}', 'job.yaml:1: "trunc" takes 2 arguments, got 1'],
      ['a: {{ .A }}\n{{#if B}}{{/if}}', 'job.yaml:2: mixes Go template syntax'],
    ];
    for (const [source, message] of cases) {
      it(`${JSON.stringify(source)}: ${message}`, () => {
        expect(() => render(source)).to.throw(TemplateSyntaxError, message);
      });
    }
  });

  it('reports every missing value (once, at its first line) and unknown function of a template at once', () => {
    const go = 'a: {{ .Image }}\nb: {{ frobnicate .Tag }}\nc: {{ .Namespace }}\n{{ range .Items }}d: {{ .name }}\n{{ end }}e: {{ .Image }}\n';
    let error: unknown;
    try {
      renderTemplate(go, { Items: [{ name: 'x' }, {}] }, plain);
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(TemplateProblemsError);
    const problems = (error as TemplateProblemsError).problems.map((p) => p.message);
    expect(problems).to.deep.equal([
      `job.yaml:2: unsupported function "frobnicate" (supported: ${Object.keys(HELPERS).join(', ')})`,
      'job.yaml:1: no value for "Image"; pass --set Image=VALUE or add it to a --values file',
      'job.yaml:2: no value for "Tag"; pass --set Tag=VALUE or add it to a --values file',
      'job.yaml:3: no value for "Namespace"; pass --set Namespace=VALUE or add it to a --values file',
      'job.yaml:4: no value for "name"',
    ]);
    expect((error as TemplateProblemsError).message).to.match(/^job\.yaml: 5 problems: job\.yaml:2: unsupported function/);
    expect((error as TemplateProblemsError).exitCode).to.equal(2);
  });

  describe('validates the rendered YAML', () => {
    const k8s = { ...plain, requireKubernetesObjects: true };
    const good = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .duat.gitBranch | dnsLabel }}\n';

    it('returns every non-empty document, parsed', () => {
      const out = renderTemplate(`---\n${good}---\n# only a comment\n---\n${good.replace('ConfigMap', 'Secret')}`, values, k8s);
      expect(out.documents.map((d) => d.kind)).to.deep.equal(['ConfigMap', 'Secret']);
      expect(out.documents[0]).to.deep.include({ metadata: { name: 'feature-login' } });
    });

    it('accepts metadata.generateName instead of a name', () => {
      expect(renderTemplate('apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: build-\n', values, k8s).documents).to.have.length(1);
    });

    const cases: [title: string, source: string, message: string][] = [
      ['names the document and output line of bad YAML', `${good}---\na: [\n`, 'job.yaml: rendered document 2 (output line 7): invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]'],
      ['reports every missing field at once', `${good}---\nkind: Pod\n`, 'job.yaml: rendered document 2 (output line 6): not a Kubernetes object: missing apiVersion, metadata.name'],
      ['refuses a list document', '- a\n', 'rendered document 1 (output line 1): expected a Kubernetes object (a mapping), got a list'],
      ['refuses duplicate keys', 'apiVersion: v1\napiVersion: v2\n', 'rendered document 1 (output line 2): invalid YAML: Map keys must be unique'],
    ];
    for (const [title, source, message] of cases) {
      it(title, () => {
        expect(() => renderTemplate(source, values, k8s)).to.throw(RenderedYamlError, message);
      });
    }

    it('checks only YAML when Kubernetes objects are not required', () => {
      expect(renderTemplate('a: 1\n---\nb: 2\n', values, plain).documents).to.deep.equal([{ a: 1 }, { b: 2 }]);
      expect(() => renderTemplate('a: [', values, plain)).to.throw(RenderedYamlError, 'invalid YAML');
    });

    it('requires Kubernetes objects by default', () => {
      expect(() => renderTemplate('a: 1\n', values, { templateName: 't.yaml' })).to.throw(RenderedYamlError, 'missing apiVersion, kind, metadata.name');
    });
  });

  describe('renderTemplateFile', () => {
    let dir = '';
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'keelson-template-'));
    });
    after(() => rm(dir, { recursive: true, force: true }));

    it('names errors after the file', async () => {
      const path = join(dir, 'job.yaml');
      await writeFile(path, 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Nmae }}\n');
      const error = await renderTemplateFile(path, { Name: 'x' }).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(TemplateValueError).with.property('message').that.includes(`${path}:4: no value for "Nmae" (did you mean "Name"?)`);
      expect((await renderTemplateFile(path, { Nmae: 'x' })).documents[0]).to.deep.include({ kind: 'Pod' });
    });

    it('a missing file is an InputError naming it', async () => {
      const error = await renderTemplateFile(join(dir, 'nope.yaml'), {}).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(InputError).with.property('message').that.includes('nope.yaml: cannot read the template: ENOENT');
    });
  });
});
