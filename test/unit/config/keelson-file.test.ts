import { expect } from 'chai';
import { KeelsonFile, parseYamlWith, parseRepositoryPipeline } from '../../../src/config/index.js';
import { InputError } from '../../../src/errors.js';

describe('keelson.yaml', () => {
  it('reads a pipeline with defaults written once', () => {
    const file = parseYamlWith(KeelsonFile, 'steps:\n  - make test\nbuild:\n  image: team/app\n', 'keelson.yaml');
    expect(file.steps).to.deep.equal(['make test']);
    expect(file.timeout.milliseconds).to.equal(30 * 60_000);
    expect(file.build?.tags).to.deep.equal(['{{branch}}', '{{shortCommit}}']);
    expect(file.kubernetes.builder).to.equal('kaniko');
  });

  it('names the file, line and field of every bad key at once', () => {
    const text = 'steps:\n  - make\ntimeout: soon\nbuild:\n  image: Team/App\nstepz: []\n';
    const error = parseError(text);
    expect(error).to.be.instanceOf(InputError);
    const message = (error as InputError).message;
    expect(message).to.match(/^keelson\.yaml: /);
    expect(message).to.contain('line 3: timeout: "soon" is not a duration');
    expect(message).to.contain('line 5: build.image:');
    expect(message).to.contain('stepz');
    expect(parseYamlWith.bind(null, KeelsonFile, 'steps: [make]\nbuild:\n  tags: [x]\n', 'keelson.yaml'))
      .to.throw(InputError, /^keelson\.yaml: line 2: build\.image: missing \(expected string\)$/);
    expect((error as InputError).exitCode).to.equal(2);
  });

  it('checks schedules where they are written: the file, line and key, never the --schedule flag', () => {
    const text = 'steps: [make]\nschedule: sometimes\nwatches:\n  - { repo: ../app, schedule: "@every 0s" }\n  - { repo: ../lib, schedule: "*/5 * * * *" }\n';
    const error = parseError(text);
    expect(error).to.be.instanceOf(InputError);
    const message = (error as InputError).message;
    expect(message).to.not.contain('--schedule');
    expect(message).to.contain('line 2: schedule: "sometimes" is not a cron expression');
    expect(message).to.contain('line 4: watches.0.schedule: "@every 0s" is too often');
    expect(message).to.not.contain('line 5');
    expect(parseYamlWith(KeelsonFile, 'steps: [make]\nschedule: "@every 5s"\n', 'keelson.yaml').schedule).to.equal('@every 5s');
  });

  it('reports broken YAML with its line', () => {
    expect(() => parseYamlWith(KeelsonFile, 'steps:\n  - a\n bad: [\n', 'k.yaml')).to.throw(InputError, /^k\.yaml:\d+: not valid YAML/);
  });

  it('does not let a repository choose where it runs', () => {
    expect(() => parseRepositoryPipeline('steps: [make]\nexecutor: kubernetes\n', 'keelson.yaml')).to.throw(InputError, /executor/);
  });

  it('suggests the key a typo meant, at any depth', () => {
    const text = 'stesp: [make]\nbuild:\n  imag: team/app\n';
    expect(() => parseYamlWith(KeelsonFile, text, 'keelson.yaml')).to.throw(InputError,
      /line 3: build: Unrecognized key: "imag" \(did you mean "image"\?\).*line 1: \(top level\): Unrecognized key: "stesp" \(did you mean "steps"\?\)/);
    expect(() => parseYamlWith(KeelsonFile, 'build:\n  image: a\n  zzzzzz: 1\n', 'k.yaml')).to.throw(InputError, /zzzzzz/)
      .and.satisfy((e: Error) => !e.message.includes('did you mean'));
  });

  it("refuses a repository's deploy: section and says it is operator-only", () => {
    const text = 'steps: [make]\ndeploy:\n  command: [/ci.sh]\n';
    expect(() => parseRepositoryPipeline(text, 'keelson.yaml')).to.throw(InputError,
      /^keelson\.yaml: line 2: deploy: is operator-only .*--config/);
    // The operator's own config keeps it.
    expect(parseYamlWith(KeelsonFile, text, 'ops.yaml').deploy?.command).to.deep.equal(['/ci.sh']);
  });

  it("takes the copy and builder images from the operator's config only", () => {
    const text = 'build: { image: team/app }\nkubernetes:\n  builder: buildah\n  copyImage: localhost:32000/busybox:1.36\n  builderImage: localhost:32000/buildah:v1.38\n';
    expect(parseYamlWith(KeelsonFile, text, 'ops.yaml').kubernetes).to.include({
      copyImage: 'localhost:32000/busybox:1.36', builderImage: 'localhost:32000/buildah:v1.38',
    });
    let message = '';
    try {
      parseRepositoryPipeline(text, 'keelson.yaml');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).to.match(/line 4: kubernetes\.copyImage: is operator-only .*--config/);
    expect(message).to.match(/line 5: kubernetes\.builderImage: is operator-only .*--config/);
    expect(message).not.to.contain('localhost:32000');
    expect(parseRepositoryPipeline('kubernetes:\n  builder: buildah\n', 'keelson.yaml').kubernetes).to.not.have.any.keys('copyImage', 'builderImage');
  });

  it("keeps the operator's cluster limits and retention: a repository may choose only its builder and template", () => {
    const text = [
      'build: { image: team/app }',
      'kubernetes:',
      '  builder: buildah',
      '  template: ci/job.yaml',
      '  debug: true',
      '  keepFailed: 87600h',
      '  maxSourceBytes: 99999999999',
      '  sourceSize: 1Ti',
      '  storageClass: fast',
      '  redisCacheAddr: cache.example:6379',
      '',
    ].join('\n');
    const message = (repositoryParseError(text) as Error).message;
    for (const [line, key] of [[5, 'debug'], [6, 'keepFailed'], [7, 'maxSourceBytes'], [8, 'sourceSize'], [9, 'storageClass'], [10, 'redisCacheAddr']] as const) {
      expect(message).to.match(new RegExp(`line ${line}: kubernetes\\.${key}: is operator-only .*--config`));
    }
    expect(message).not.to.contain('87600h').and.not.to.contain('cache.example');

    const operator = parseYamlWith(KeelsonFile, 'kubernetes:\n  maxSourceBytes: 1000\n  keepFailed: 1h\n  sourceSize: 2Gi\n  template: /etc/keelson/job.yaml\n', 'ops.yaml').kubernetes;
    const chosen = parseRepositoryPipeline('build: { image: team/app }\nkubernetes:\n  builder: buildah\n  template: ci/job.yaml\n', 'keelson.yaml', operator).kubernetes;
    expect(chosen).to.include({ builder: 'buildah', template: 'ci/job.yaml', maxSourceBytes: 1000, sourceSize: '2Gi', debug: false });
    expect(chosen.keepFailed.milliseconds).to.equal(3_600_000);
    // Without a template of its own, the repository gets the stock one, not the operator's file.
    expect(parseRepositoryPipeline('steps: [make]\n', 'keelson.yaml', operator).kubernetes).to.not.have.property('template');
    expect(parseRepositoryPipeline('steps: [make]\n', 'keelson.yaml', operator).kubernetes).to.include({ builder: 'kaniko', maxSourceBytes: 1000 });
  });

  it('names operator-only keys in a repository keelson.yaml as such, with their lines', () => {
    const text = 'steps: [make]\npassEnv: [GITHUB_TOKEN]\nregistryConfig: /etc/keelson/registry.yaml\nstepz: []\n';
    let message = '';
    try {
      parseRepositoryPipeline(text, 'keelson.yaml');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).to.contain('line 2: "passEnv" is an operator setting');
    expect(message).to.contain('line 3: "registryConfig" is an operator setting');
    expect(message).to.contain('unknown key "stepz"');
    expect(message).not.to.contain('GITHUB_TOKEN');
    expect(message).not.to.contain('/etc/keelson');
  });

  it('quotes no value of a repository keelson.yaml in its errors, only keys and lines', () => {
    const values = ['s3cr3t-duration', 's3cr3t-image', 'root:$y$j9T$hash:19000:0:99999:7:::'];
    for (const text of [
      `timeout: ${values[0]}\nbuild: { image: "${values[1]}" }\nsteps: 7\n`,
      `${values[2]}\n`,
      `steps: [a\n${values[2]}: [\n`,
      `"${values[2]}": 1\n`,
    ]) {
      let message = '';
      try {
        parseRepositoryPipeline(text, 'keelson.yaml');
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message, text).to.match(/^keelson\.yaml/);
      for (const value of values) expect(message, text).not.to.contain(value.slice(0, 10));
    }
  });

  it('reads passEnv and per-watch builder allowances in the operator config only', () => {
    const file = parseYamlWith(KeelsonFile, 'passEnv: [NPM_TOKEN]\nwatches:\n  - repo: ./app\n    allowBuilder: [privileged]\n  - ./lib\n', 'k.yaml');
    expect(file.passEnv).to.deep.equal(['NPM_TOKEN']);
    expect(file.watches.map((w) => w.allowBuilder)).to.deep.equal([['privileged'], []]);
    expect(() => parseYamlWith(KeelsonFile, 'passEnv: ["A-B"]\n', 'k.yaml')).to.throw(InputError, /passEnv\.0/);
  });
});

/** The error parsing `text` as keelson.yaml throws (undefined when it parses). */
function parseError(text: string): unknown {
  try {
    parseYamlWith(KeelsonFile, text, 'keelson.yaml');
    return undefined;
  } catch (error) {
    return error;
  }
}

/** The error parsing `text` as a repository's own keelson.yaml throws (undefined when it parses). */
function repositoryParseError(text: string): unknown {
  try {
    parseRepositoryPipeline(text, 'keelson.yaml');
    return undefined;
  } catch (error) {
    return error;
  }
}
