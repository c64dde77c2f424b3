import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../../src/errors.js';
import { redactSecrets } from '../../../src/log/index.js';
import {
  combineCredentials, dockerConfigFromSecret, loadRegistryConfig, parseDockerConfig, parseRegistryConfig, toDockerConfigJson,
  usesPlainHttp,
} from '../../../src/registry/index.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('Makisu registry config', () => {
  const config = parseRegistryConfig(`
registry.example.com:5000:
  "^team/.*$":
    security:
      basic: { username: team-bot, password: team-secret-1 }
  ".*":
    security:
      basic: { username: everyone, password: every-secret-2 }
insecure.lan:5000:
  ".*":
    security:
      tls: { client: { disabled: true } }
index.docker.io:
  ".*":
    push_chunk: -1
    security:
      tls: { client: { disabled: false } }
      basic: { username: hubuser, password: hub-secret-3 }
`, 'registry.yaml');

  it('finds credentials by host and the first matching repository pattern, in file order', () => {
    expect(config.credentialsFor('registry.example.com:5000', 'team/app')).to.deep.equal({ username: 'team-bot', password: 'team-secret-1' });
    expect(config.credentialsFor('registry.example.com:5000', 'other/app')).to.deep.equal({ username: 'everyone', password: 'every-secret-2' });
    expect(config.credentialsFor('registry.example.com', 'team/app')).to.equal(undefined);
    expect(config.credentialsFor('insecure.lan:5000', 'x')).to.equal(undefined);
  });

  it('treats Docker Hub aliases as one host', () => {
    expect(config.credentialsFor('docker.io', 'library/nginx')?.username).to.equal('hubuser');
    expect(config.credentialsFor('registry-1.docker.io', 'library/nginx')?.username).to.equal('hubuser');
  });

  it('matches a pattern anywhere in the name, as Makisu does, unless anchored', () => {
    const unanchored = parseRegistryConfig('r.example:\n  "team/":\n    security: { basic: { username: u, password: pw-unanchored } }\n', 'f.yaml');
    expect(unanchored.credentialsFor('r.example', 'myteam/app')?.username).to.equal('u');
    expect(config.credentialsFor('registry.example.com:5000', 'myteam/app')?.username).to.equal('everyone');
  });

  it('marks tls.client.disabled hosts insecure, and loopback hosts plain HTTP anyway', () => {
    expect(config.isInsecure('insecure.lan:5000')).to.equal(true);
    expect(config.isInsecure('registry.example.com:5000')).to.equal(false);
    expect(usesPlainHttp('insecure.lan:5000', config)).to.equal(true);
    expect(usesPlainHttp('127.0.0.1:5000', config)).to.equal(true);
    expect(usesPlainHttp('docker.io', config)).to.equal(false);
  });

  it('registers every password as a secret', () => {
    expect(redactSecrets('team-secret-1 every-secret-2 hub-secret-3')).to.equal('[REDACTED] [REDACTED] [REDACTED]');
  });

  it('reads password_file relative to the config file and drops one trailing newline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keelson-regconf-'));
    try {
      writeFileSync(join(dir, 'pw'), 'from-a-file-secret\n');
      writeFileSync(join(dir, 'registry.yaml'), 'r.example:\n  ".*":\n    security: { basic: { username: bot, password_file: pw } }\n');
      const loaded = await loadRegistryConfig(join(dir, 'registry.yaml'));
      expect(loaded.credentialsFor('r.example', 'a')).to.deep.equal({ username: 'bot', password: 'from-a-file-secret' });
      expect(redactSecrets('from-a-file-secret')).to.equal('[REDACTED]');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes a docker config.json with one entry per host, Docker Hub under its v1 URL', () => {
    const json = JSON.parse(toDockerConfigJson(config)) as { auths: Record<string, { username: string; password: string; auth: string }> };
    expect(Object.keys(json.auths)).to.deep.equal(['registry.example.com:5000', 'https://index.docker.io/v1/']);
    expect(json.auths['registry.example.com:5000']).to.deep.equal({ username: 'team-bot', password: 'team-secret-1', auth: b64('team-bot:team-secret-1') });
    // and it reads back through the docker config parser
    expect(parseDockerConfig(JSON.stringify(json), 'config.json').credentialsFor('docker.io')?.username).to.equal('hubuser');
  });

  it('reads an empty file as no entries', () => {
    expect(parseRegistryConfig('', 'empty.yaml').entries).to.deep.equal([]);
  });
});

describe('Makisu registry config errors', () => {
  const cases: [string, string, string][] = [
    ['a username that is not a string',
      '127.0.0.1:5000:\n  "team/.*":\n    security:\n      basic: { username: 42, password: x }\n',
      'registry.yaml: 127.0.0.1:5000 → "team/.*" → security.basic.username: expected a string'],
    ['an unknown key', 'r.example:\n  ".*":\n    securty: {}\n', 'registry.yaml: r.example → ".*": Unrecognized key: "securty"'],
    ['disabled that is not a boolean', 'r.example:\n  ".*":\n    security: { tls: { client: { disabled: "yes" } } }\n',
      'registry.yaml: r.example → ".*" → security.tls.client.disabled: expected true or false'],
    ['both password and password_file', 'r.example:\n  ".*":\n    security: { basic: { username: u, password: p, password_file: f } }\n',
      'security.basic: give either password or password_file, not both'],
    ['a bad regex', 'r.example:\n  "team/(":\n    {}\n', 'registry.yaml: r.example → "team/(": not a valid regular expression'],
    ['a host with a scheme', '"https://r.example":\n  ".*": {}\n', 'registry.yaml: https://r.example: expected a registry host[:port]'],
    ['a host that is not a map', 'r.example: 5\n', 'registry.yaml: r.example: expected a map of repository patterns'],
    ['a top level list', '- a\n', 'registry.yaml: expected a map of registry hosts'],
    ['broken YAML', 'r.example: [\n', 'registry.yaml: not valid YAML'],
    ['a missing password_file', 'r.example:\n  ".*":\n    security: { basic: { username: u, password_file: /nonexistent/pw } }\n',
      'security.basic.password_file: cannot read /nonexistent/pw'],
  ];
  for (const [what, text, message] of cases) {
    it(`names the file and field for ${what} (InputError, exit 2)`, () => {
      let error: unknown;
      try {
        parseRegistryConfig(text, 'registry.yaml');
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(InputError);
      expect((error as InputError).exitCode).to.equal(2);
      expect((error as Error).message).to.include(message);
    });
  }

  it('reports every bad field at once', () => {
    expect(() => parseRegistryConfig('a.example:\n  ".*": { retries: -1 }\nb.example:\n  ".*": { security: { basic: {} } }\n', 'registry.yaml'))
      .to.throw(InputError, /a\.example → "\.\*" → retries: .*; b\.example → "\.\*" → security\.basic\.username/);
  });

  it('names a file it cannot read', async () => {
    const error = await loadRegistryConfig('/nonexistent/registry.yaml').catch((e: unknown) => e);
    expect(error).to.be.instanceOf(InputError);
    expect((error as Error).message).to.equal('/nonexistent/registry.yaml: cannot read the registry config');
  });
});

describe('docker config.json and pull secrets', () => {
  const dockerConfig = JSON.stringify({
    auths: {
      'https://index.docker.io/v1/': { auth: b64('hub:hub-pass-1234') },
      'ghcr.io': { username: 'gh', password: 'gh-pass-5678' },
      'http://lan.example:5000/v2/': { auth: b64('lan:pa:ss:9999') },
      'empty.example': {},
    },
    credsStore: 'desktop',
  });

  it('reads auth (base64 user:password, the password may hold colons) and username/password', () => {
    const parsed = parseDockerConfig(dockerConfig, 'config.json');
    expect(parsed.credentialsFor('docker.io')).to.deep.equal({ username: 'hub', password: 'hub-pass-1234' });
    expect(parsed.credentialsFor('ghcr.io')).to.deep.equal({ username: 'gh', password: 'gh-pass-5678' });
    expect(parsed.credentialsFor('lan.example:5000')).to.deep.equal({ username: 'lan', password: 'pa:ss:9999' });
    expect(parsed.credentialsFor('empty.example')).to.equal(undefined);
    expect(redactSecrets('hub-pass-1234 gh-pass-5678')).to.equal('[REDACTED] [REDACTED]');
  });

  it('refuses an auth that is not user:password and JSON that is not JSON', () => {
    expect(() => parseDockerConfig(JSON.stringify({ auths: { x: { auth: b64('nocolon') } } }), 'config.json'))
      .to.throw(InputError, 'config.json: auths.x.auth: expected base64 of "username:password"');
    expect(() => parseDockerConfig('{', 'config.json')).to.throw(InputError, 'config.json: not valid JSON');
  });

  it('reads a kubernetes.io/dockerconfigjson Secret', () => {
    const secret = { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64(dockerConfig) } };
    expect(dockerConfigFromSecret(secret, 'secret team/regcred').credentialsFor('ghcr.io', 'org/app')?.username).to.equal('gh');
  });

  it('reads the legacy kubernetes.io/dockercfg Secret', () => {
    const secret = { type: 'kubernetes.io/dockercfg', data: { '.dockercfg': b64(JSON.stringify({ 'ghcr.io': { auth: b64('old:old-pass-0000') } })) } };
    expect(dockerConfigFromSecret(secret, 'secret team/old').credentialsFor('ghcr.io', 'x')?.username).to.equal('old');
  });

  it('names a secret of the wrong type or without the key', () => {
    expect(() => dockerConfigFromSecret({ type: 'Opaque', data: {} }, 'secret team/x')).to.throw(InputError, 'secret team/x: secret type is Opaque');
    expect(() => dockerConfigFromSecret({ type: 'kubernetes.io/dockerconfigjson', data: {} }, 'secret team/x'))
      .to.throw(InputError, 'secret team/x: secret has no .dockerconfigjson key');
    expect(() => dockerConfigFromSecret('nope', 'secret team/x')).to.throw(InputError, 'secret team/x');
  });

  it('combines sources: the first with credentials wins, any can mark a host insecure', () => {
    const makisu = parseRegistryConfig('ghcr.io:\n  "^org/.*":\n    security: { basic: { username: makisu, password: makisu-pass-1 } }\nlan.example:5000:\n  ".*":\n    security: { tls: { client: { disabled: true } } }\n', 'registry.yaml');
    const combined = combineCredentials(makisu, parseDockerConfig(dockerConfig, 'config.json'));
    expect(combined.credentialsFor('ghcr.io', 'org/app')?.username).to.equal('makisu');
    expect(combined.credentialsFor('ghcr.io', 'else/app')?.username).to.equal('gh');
    expect(combined.isInsecure('lan.example:5000')).to.equal(true);
    expect([...combined.dockerAuths().keys()]).to.have.members(['ghcr.io', 'docker.io', 'lan.example:5000']);
  });
});

describe('registry/registry-template.yaml', () => {
  it('is a valid registry config (password files swapped for inline passwords)', async () => {
    const { readFile } = await import('node:fs/promises');
    const text = (await readFile(new URL('../../../registry/registry-template.yaml', import.meta.url), 'utf8'))
      .replace(/password_file: .*/g, 'password: template-password');
    const config = parseRegistryConfig(text, 'registry-template.yaml');
    expect(config.entries.map((e) => `${e.host} ${e.pattern}`)).to.deep.equal([
      '127.0.0.1:5000 .*', 'registry.lan:5000 ^team/.*$', 'registry.lan:5000 .*', 'docker.io .*', 'gcr.io my-project/.*',
    ]);
    expect(config.isInsecure('registry.lan:5000')).to.equal(true);
    expect(config.credentialsFor('registry.lan:5000', 'team/app')?.username).to.equal('team-robot');
  });
});
