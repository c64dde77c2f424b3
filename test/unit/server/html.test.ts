import { expect } from 'chai';
import { parseRunId } from '../../../src/domain/index.js';
import { registerSecret } from '../../../src/log/index.js';
import { RunReason, type RunRecord } from '../../../src/store/index.js';
import { breakable, escapeHtml, html, raw } from '../../../src/server/html.js';
import { safeNext } from '../../../src/server/http.js';
import { sseData } from '../../../src/server/log-stream.js';
import { withRegistryChecks } from '../../../src/server/workload-checks.js';
import { formatDuration, renderOverview, renderRunPage, rolledWorkloads, type PageContext } from '../../../src/server/pages.js';
import type { DigestTrace, TracedRun } from '../../../src/trace/index.js';

const CTX: PageContext = { nonce: 'n0nce', voting: 'allowed', signedIn: true, now: new Date('2026-03-01T10:05:00Z') };
const XSS = '<script>alert("x")</script>';

function run(overrides: Partial<RunRecord> = {}, trace: DigestTrace = { rollouts: [], ci: [] }): TracedRun {
  return {
    trace,
    id: parseRunId('20260301-100000-abcdef'), kind: 'build', watch: 'https://git.example/o/r.git^main', repo: 'https://git.example/o/r.git',
    branch: 'main', commit: 'c0ffee'.padEnd(40, '1'), phase: 'running', reason: RunReason.Started, message: 'building',
    phases: [
      { phase: 'queued', reason: RunReason.Queued, message: 'queued', at: '2026-03-01T10:00:00.000Z' },
      { phase: 'running', reason: RunReason.Started, message: 'building', at: '2026-03-01T10:00:05.000Z' },
    ],
    createdAt: '2026-03-01T10:00:00.000Z', startedAt: '2026-03-01T10:00:05.000Z',
    ...overrides,
  };
}

describe('HTML escaping', () => {
  const cases: Array<[string, string]> = [
    ['plain', 'plain'],
    ['<b>&</b>', '&lt;b&gt;&amp;&lt;/b&gt;'],
    [`"quoted" 'single'`, '&quot;quoted&quot; &#39;single&#39;'],
    ['&amp;', '&amp;amp;'],
  ];
  for (const [input, output] of cases) {
    it(`escapes ${JSON.stringify(input)}`, () => expect(escapeHtml(input)).to.equal(output));
  }

  it('escapes every interpolated value and keeps SafeHtml as it is', () => {
    const page = html`<p title="${'" onmouseover="x'}">${XSS}${raw('<br>')}${html`<i>${'&'}</i>`}</p>`;
    expect(page.value).to.equal('<p title="&quot; onmouseover=&quot;x">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;<br><i>&amp;</i></p>');
  });

  it('renders arrays joined and nothing for null, undefined and false', () => {
    expect(html`${['a', '<', 1]}|${null}|${undefined}|${false}|${0}`.value).to.equal('a&lt;1||||0');
  });

  it('redacts registered secrets and URL credentials before escaping', () => {
    registerSecret('s3cr3t-value-for-html');
    expect(html`${'token=s3cr3t-value-for-html'} ${'https://bob:pw@git.example/r'}`.value)
      .to.equal('token=[REDACTED] https://bob:[REDACTED]@git.example/r');
  });

  it('lets long references wrap after / ^ @ only, redacting before it splits', () => {
    expect(breakable('reg.example:5000/team/app:main')!.value).to.equal('reg.example:5000/<wbr>team/<wbr>app:main');
    expect(breakable('https://bob:pw@git.example/r.git^main')!.value).to.equal('https:/<wbr>/<wbr>bob:[REDACTED]@<wbr>git.example/<wbr>r.git^<wbr>main');
    expect(breakable('<b>/x')!.value).to.equal('&lt;b&gt;/<wbr>x');
  });

  it('leaves no markup from run records, logs or sources in the pages', () => {
    const hostile = run({ watch: XSS, message: XSS, commit: XSS, image: { ref: XSS, digest: XSS, pushed: true } }, {
      rollouts: [{ workload: XSS, container: XSS, from: XSS, image: XSS, digest: XSS, at: XSS, approval: XSS }],
      ci: [{ workload: XSS, run: XSS, exitCode: 1, finishedAt: XSS }],
    });
    const pages = [
      renderRunPage(hostile, { text: `${XSS}\n`, offset: 10 }, CTX),
      renderOverview({
        storeDescription: XSS, runs: [hostile], problems: [XSS],
        watches: [{ key: `${XSS}^main`, display: XSS, lastDone: XSS, lastError: XSS, failures: 1, schedule: XSS, lastRun: { id: XSS, commit: XSS, phase: 'failed', reason: XSS, message: XSS, at: XSS } }],
        jobs: [{ key: XSS, repository: XSS, schedule: XSS, nextCheckAt: XSS, failures: 1, lastError: XSS, targetIds: [] }],
        workloads: [{
          key: XSS, policy: XSS, pollSchedule: XSS, error: XSS, heldBy: [XSS], lastDecision: { outcome: XSS, message: XSS, at: XSS },
          images: [{ container: XSS, current: XSS, candidate: XSS, candidateReason: XSS, rolledOut: { image: XSS, digest: XSS, at: XSS } }],
        }],
        approvals: [{ id: XSS, workload: { kind: XSS, namespace: XSS, name: XSS }, changes: [{ container: XSS, from: XSS, to: XSS }], votesRequired: 1, voters: [XSS], createdAt: XSS, deadline: XSS }],
        dependencies: [{ key: XSS, replicas: 1, readyReplicas: 0, holders: [XSS], declaredBy: [XSS] }],
      }, CTX),
    ];
    for (const page of pages) {
      expect(page).not.to.include('<script>alert');
      expect(page).to.include('&lt;script&gt;alert');
    }
  });

  it('puts the nonce on the inline style and follows the log only while the run goes', () => {
    const live = renderRunPage(run(), { text: 'line\n', offset: 5 }, CTX);
    expect(live).to.include('<style nonce="n0nce">').and.include('<script nonce="n0nce">').and.include('data-offset="5"');
    const done = renderRunPage(run({ phase: 'succeeded', finishedAt: '2026-03-01T10:01:05.000Z' }), { text: '', offset: 0 }, CTX);
    expect(done).not.to.include('<script');
  });
});

describe('page values', () => {
  const durations: Array<[number, string]> = [
    [850, '850ms'], [42_000, '42s'], [185_000, '3m 05s'], [7_620_000, '2h 07m'], [3 * 86_400_000 + 4 * 3_600_000, '3d 4h'], [-1, ''],
  ];
  for (const [ms, text] of durations) {
    it(`formats ${ms} ms as "${text}"`, () => expect(formatDuration(ms)).to.equal(text));
  }

  it('lists each workload a digest reached once, with its newest ci result', () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    const rollout = { container: 'app', from: 'reg/app:main', image: 'reg/app:main', digest };
    const traced = run({ image: { ref: 'reg/app:main', digest, pushed: true } }, {
      rollouts: [
        { ...rollout, workload: 'default/deployment/web', at: '2026-03-01T10:02:00.000Z' },
        { ...rollout, workload: 'default/deployment/worker', at: '2026-03-01T10:02:01.000Z' },
        { ...rollout, workload: 'default/deployment/web', at: '2026-03-01T10:03:00.000Z' },
      ],
      ci: [
        { workload: 'default/deployment/web', run: 'web-1', exitCode: 1, finishedAt: '2026-03-01T10:02:30.000Z' },
        { workload: 'default/deployment/web', run: 'web-2', exitCode: 0, finishedAt: '2026-03-01T10:03:30.000Z' },
      ],
    });
    expect(rolledWorkloads(traced)).to.deep.equal([
      { workload: 'default/deployment/web', at: '2026-03-01T10:03:00.000Z', ci: { workload: 'default/deployment/web', run: 'web-2', exitCode: 0, finishedAt: '2026-03-01T10:03:30.000Z' } },
      { workload: 'default/deployment/worker', at: '2026-03-01T10:02:01.000Z' },
    ]);
    const page = renderRunPage(traced, { text: '', offset: 0 }, CTX).replaceAll('<wbr>', '');
    expect(page).to.include('default/deployment/worker').and.include('ci passed').and.include(digest);
    expect(renderRunPage(run(), { text: '', offset: 0 }, CTX)).to.include('nothing: the run pushed no image');
  });

  it('shows the two digests of a rollout that kept its tag, instead of the same reference twice', () => {
    const [from, to] = [`sha256:${'1a'.repeat(32)}`, `sha256:${'2b'.repeat(32)}`];
    const rollout = { workload: 'default/deployment/web', container: 'app', from: 'reg/app:main', image: 'reg/app:main', digest: to, at: '2026-03-01T10:02:00.000Z' };
    const page = (r: typeof rollout & { fromDigest?: string }) => {
      const html = renderRunPage(run({ image: { ref: 'reg/app:main', digest: to, pushed: true } }, { rollouts: [r], ci: [] }), { text: '', offset: 0 }, CTX).replaceAll('<wbr>', '');
      return html.slice(html.indexOf('id="rolled-out"'), html.indexOf('id="ci"'));
    };
    const known = page({ ...rollout, fromDigest: from });
    expect(known).to.include(`<span title="${from}">sha256:1a1a1a1a1a1a…</span>`).and.include(`<span title="${to}">sha256:2b2b2b2b2b2b…</span>`);
    expect(known.indexOf('sha256:1a1a')).to.be.below(known.indexOf('sha256:2b2b'));
    expect(known.match(/reg\/app:main/g)).to.have.length(1);
    expect(page(rollout)).to.include('digest unknown').and.include('sha256:2b2b2b2b2b2b…');
    const retagged = page({ ...rollout, image: 'reg/app:1.1.0' });
    expect(retagged).to.include('reg/app:main').and.include('reg/app:1.1.0').and.not.include('sha256:2b2b2b2b2b2b…');
  });

  it('shows the kind of a run, so a deploy does not look like a build', () => {
    const deploy = run({ kind: 'deploy', commit: '', phase: 'succeeded', finishedAt: '2026-03-01T10:01:05.000Z' });
    const overview = renderOverview({ storeDescription: 'file:/x', runs: [deploy, run()], problems: [] }, CTX);
    expect(overview).to.include('<span class="kind kind-deploy">deploy</span>').and.include('<span class="kind kind-build">build</span>');
    expect(renderRunPage(deploy, { text: '', offset: 0 }, CTX)).to.include('<span class="kind kind-deploy">deploy</span>').and.include('none (image not built here)');
  });

  it('says a workload\'s registry check failed instead of "up to date", in the page and the workload payload', () => {
    const workloads = [
      { key: 'default/deployment/web', policy: 'minor', images: [{ container: 'app', current: 'reg.example/app:1.0.0' }, { container: 'init:migrate', current: 'reg.example/migrate:1.0.0' }] },
      { key: 'default/deployment/other', policy: 'minor', images: [{ container: 'app', current: 'reg.example/other:1.0.0' }] },
    ];
    const jobs = [
      { key: 'reg.example/app:1.0.0', repository: 'reg.example/app', schedule: '@every 1m', nextCheckAt: '2026-03-01T10:06:00Z', failures: 3,
        lastError: 'GET https://reg.example/v2/app/tags/list: connect ECONNREFUSED 127.0.0.1:5000', targetIds: ['default/deployment/web/app'] },
      { key: 'reg.example/migrate:1.0.0', repository: 'reg.example/migrate', schedule: '@every 1m', nextCheckAt: '2026-03-01T10:06:00Z', failures: 1,
        lastError: 'manifest unknown', targetIds: ['default/deployment/web/init:migrate'] },
      { key: 'reg.example/other:1.0.0', repository: 'reg.example/other', schedule: '@every 1m', nextCheckAt: '2026-03-01T10:06:00Z', failures: 0, targetIds: ['default/deployment/other/app'] },
    ];
    const marked = withRegistryChecks(workloads, jobs);
    expect(marked[0]!.images!.map((i) => i.checkFailed)).to.deep.equal([
      { failures: 3, lastError: 'GET https://reg.example/v2/app/tags/list: connect ECONNREFUSED 127.0.0.1:5000' },
      { failures: 1, lastError: 'manifest unknown' },
    ]);
    expect(marked[1]).to.deep.equal(workloads[1]);
    const page = renderOverview({ storeDescription: 'file:/x', runs: [], problems: [], workloads: marked, jobs }, CTX).replaceAll('<wbr>', '');
    const rows = page.split('<tr data-workload=').slice(1);
    expect(rows[0]).to.include('registry check failed: GET https://reg.example/v2/app/tags/list: connect ECONNREFUSED').and.not.include('up to date');
    expect(rows[1]).to.include('registry check failed: manifest unknown').and.not.include('up to date');
    expect(rows[2]).to.include('up to date').and.not.include('check failed');
  });

  it('shows a watch\'s real repository path, not the "." the user typed, and never URL credentials', () => {
    const page = renderOverview({
      storeDescription: 'file:/x', runs: [], problems: [],
      watches: [
        { key: '/home/dev/projects/shop^main', display: '.^main' },
        { key: 'https://alice:s3cretpw@git.example/o/r.git^HEAD', display: 'https://alice:s3cretpw@git.example/o/r.git' },
        { key: 'https://ghp0token1@git.example/o/t.git^main', display: 'https://ghp0token1@git.example/o/t.git^main' },
        { key: 'ssh://git@git.example/o/s.git^main', display: 'ssh://git@git.example/o/s.git^main' },
      ],
    }, CTX).replaceAll('<wbr>', '');
    const cells = [...page.matchAll(/<tr><td>([^<]*)<\/td><td>([^<]*)<\/td>/g)].map((m) => [m[1], m[2]]);
    expect(cells).to.deep.equal([
      ['/home/dev/projects/shop', 'main'],
      ['https://git.example/o/r.git', 'default (HEAD)'],
      ['https://git.example/o/t.git', 'main'],
      ['ssh://git@git.example/o/s.git', 'main'],
    ]);
    expect(page).not.to.include('alice').and.not.to.include('s3cretpw').and.not.to.include('ghp0token1');
  });

  const nexts: Array<[string | undefined, string]> = [
    ['/runs/x', '/runs/x'], [undefined, '/'], ['//evil.example/', '/'], ['/\\evil.example', '/'], ['https://evil.example/', '/'],
    ['/\t/evil.example', '/'], ['/\n\\evil.example', '/'], ['/runs/\tx', '/runs/x'],
  ];
  for (const [next, safe] of nexts) {
    it(`goes back to ${safe} after signing in with next=${next}`, () => expect(safeNext(next)).to.equal(safe));
  }
});

describe('server-sent event data', () => {
  const cases: Array<[string, string]> = [
    ['one\n', 'data: one\ndata: \n'],
    ['a\nb', 'data: a\ndata: b\n'],
    ['crlf\r\nand cr\r', 'data: crlf\ndata: and cr\ndata: \n'],
  ];
  for (const [text, data] of cases) {
    it(`frames ${JSON.stringify(text)}`, () => expect(sseData(text)).to.equal(data));
  }
});
