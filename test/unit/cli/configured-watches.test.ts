import { expect } from 'chai';
import { KeelsonFile, parseYamlWith } from '../../../src/config/index.js';
import { configuredWatches } from '../../../src/cli/watches.js';

describe('the watches of a config file', () => {
  const file = parseYamlWith(KeelsonFile, [
    'schedule: "@every 5m"',
    'watches:',
    '  - { repo: "https://example.test/app.git^main", schedule: "@every 10s" }',
    '  - https://example.test/lib.git^main',
    '',
  ].join('\n'), 'keelson.yaml');

  it('keep their own schedule; the others get the watcher\'s', () => {
    expect(configuredWatches(file, undefined).map((w) => [w.display, w.schedule])).to.deep.equal([
      ['https://example.test/app.git^main', '@every 10s'],
      ['https://example.test/lib.git^main', undefined],
    ]);
  });

  it('all follow --schedule when it is given', () => {
    expect(configuredWatches(file, '@every 1m').map((w) => w.schedule)).to.deep.equal([undefined, undefined]);
  });

  it('are none without a config file', () => {
    expect(configuredWatches(undefined, undefined)).to.deep.equal([]);
  });
});
