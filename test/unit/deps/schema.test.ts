import { expect } from 'chai';
import { envName, parseDependencies, serviceEnv } from '../../../src/deps/index.js';
import { InputError } from '../../../src/errors.js';

describe('dependencies', () => {
  const cases: Array<[string, unknown]> = [
    ['minio=1,rabbitmq=1', [{ name: 'minio', replicas: 1 }, { name: 'rabbitmq', replicas: 1 }]],
    [' minio=2  rabbitmq ', [{ name: 'minio', replicas: 2 }, { name: 'rabbitmq', replicas: 1 }]],
    ['statefulset/rabbitmq=3,deployment/minio', [{ kind: 'StatefulSet', name: 'rabbitmq', replicas: 3 }, { kind: 'Deployment', name: 'minio', replicas: 1 }]],
    ['sts/db=1,deploy/cache=1', [{ kind: 'StatefulSet', name: 'db', replicas: 1 }, { kind: 'Deployment', name: 'cache', replicas: 1 }]],
    ['', []],
  ];
  for (const [text, want] of cases) it(`parses ${JSON.stringify(text)}`, () => expect(parseDependencies('here', text)).to.deep.equal(want));

  const bad: Array<[string, RegExp]> = [
    ['minio=0', /replicas must be at least 1/],
    ['Minio=1', /not \[deployment\/\|statefulset\/\]NAME/],
    ['job/x=1', /not \[deployment/],
    ['minio=1,minio=2', /listed twice/],
    ['minio=x', /not \[deployment/],
  ];
  for (const [text, re] of bad) {
    it(`refuses ${JSON.stringify(text)} naming where`, () => {
      expect(() => parseDependencies('ns/deployment/build: keelson.dev/dependencies', text)).to.throw(InputError, re);
      expect(() => parseDependencies('ns/deployment/build: keelson.dev/dependencies', text)).to.throw(/^ns\/deployment\/build: keelson.dev\/dependencies: /);
    });
  }

  it('turns a Service into KEELSON_DEP_* variables', () => {
    expect(envName('minio-s3')).to.equal('MINIO_S3');
    expect(serviceEnv('minio-s3', {
      metadata: { name: 'minio-s3', namespace: 'ci' },
      spec: { clusterIP: '10.0.0.7', ports: [{ name: 'api', port: 9000 }, { name: 'console', port: 9001 }] },
    })).to.deep.equal({
      KEELSON_DEP_MINIO_S3_HOST: '10.0.0.7',
      KEELSON_DEP_MINIO_S3_DNS: 'minio-s3.ci.svc',
      KEELSON_DEP_MINIO_S3_PORT: '9000',
      KEELSON_DEP_MINIO_S3_PORT_API: '9000',
      KEELSON_DEP_MINIO_S3_PORT_CONSOLE: '9001',
    });
    expect(serviceEnv('db', { metadata: { name: 'db', namespace: 'ci' }, spec: { clusterIP: 'None', ports: [{ port: 5432 }] } }))
      .to.deep.equal({ KEELSON_DEP_DB_HOST: 'db.ci.svc', KEELSON_DEP_DB_DNS: 'db.ci.svc', KEELSON_DEP_DB_PORT: '5432' });
  });
});
