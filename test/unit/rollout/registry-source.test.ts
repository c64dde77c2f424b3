import { expect } from 'chai';
import { parsePolicy } from '../../../src/policy/index.js';
import { RegistryWatcher } from '../../../src/registry-watch/index.js';
import { RegistryWatcherSource, type WorkloadImageTarget } from '../../../src/rollout/index.js';

describe('RegistryWatcherSource.setTargets: the workloads\' images as registry watch targets', () => {
  const minor = parsePolicy('minor');
  const target = (name: string, current = '1.0.0', policy = minor): WorkloadImageTarget => ({
    id: `prod/deployment/${name}/app`, repository: `registry.example/team/${name}`, current, policy, matchTag: false, matchPreRelease: true, schedule: '@every 30s',
  });
  const setUp = () => {
    const watcher = new RegistryWatcher({ reader: { listTags: async () => [], manifestDigest: async () => 'sha256:0' } });
    const added: string[] = [];
    const removed: string[] = [];
    const counting = {
      addTarget: (t: Parameters<RegistryWatcher['addTarget']>[0]) => { added.push(t.id); watcher.addTarget(t); },
      removeTarget: (id: string) => { removed.push(id); watcher.removeTarget(id); },
      subscribe: watcher.subscribe.bind(watcher),
    };
    return { watcher, source: new RegistryWatcherSource(counting), added, removed };
  };

  it('hands the watcher only what is new or changed, and removes what is gone', () => {
    const { watcher, source, added, removed } = setUp();
    source.setTargets([target('a'), target('b'), target('c')]);
    expect(added).to.deep.equal(['prod/deployment/a/app', 'prod/deployment/b/app', 'prod/deployment/c/app']);
    added.length = 0;

    // The controller sends every target after each change: the same ones again are left alone.
    source.setTargets([target('a'), target('b', '1.1.0'), target('c', '1.0.0', parsePolicy('major'))]);
    expect(added).to.deep.equal(['prod/deployment/b/app', 'prod/deployment/c/app']);
    expect(removed).to.deep.equal([]);
    added.length = 0;

    source.setTargets([target('b', '1.1.0')]);
    expect(added).to.deep.equal([]);
    expect(removed).to.have.members(['prod/deployment/a/app', 'prod/deployment/c/app']);
    expect(watcher.status().map((j) => j.repository)).to.deep.equal(['registry.example/team/b']);
  });
});
