/**
 * The status page in a real browser: Debian's chromium (`/usr/bin/chromium`, apt package
 * `chromium`) driven by playwright-core, never a downloaded browser. First the page of a real
 * daemon after real work (builds, rollouts, an approval, a ci run holding a dependency): every
 * column filled, nothing wider than 1280 px; its screenshot is the README's docs/status-page.png.
 * Then, from a real FileStore: follows a running build's log while lines are appended to the
 * store, signs in and approves an update through the page. Screenshots go to test-artifacts/.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { RunReason, type RunRecord } from '../../../src/store/index.js';
import { createServer, type ListeningServer, type WorkloadInfo } from '../../../src/server/index.js';
import { TraceBook } from '../../../src/trace/index.js';
import { MemoryApprovals, openTempStore, RecordingRegistry, seedRun, type TempStore } from './fixtures.js';
import { startTracedDaemon, type CiHandle, type TracedDaemon } from '../daemon/traced-daemon.js';

const CHROMIUM = process.env.KEELSON_TEST_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test-artifacts');
const TOKEN = `tok-${randomBytes(12).toString('hex')}`;
const DIGEST = `sha256:${'4f'.repeat(32)}`;

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WIDTH = 1280;

interface Cell { readonly textContent: string | null; readonly cellIndex: number }
interface Row { readonly dataset: Record<string, string | undefined>; readonly textContent: string | null; querySelectorAll(selector: string): Iterable<Cell> }

/** The sections' cells that show nothing at all (an empty cell is a value the page failed to fill). */
function emptyCells(page: Page, section: string): Promise<string[]> {
  return page.locator(`${section} tbody tr`).evaluateAll((elements) => (elements as unknown as Row[]).flatMap((row) => [...row.querySelectorAll(':scope > td')]
    .filter((cell) => (cell.textContent ?? '').trim() === '')
    .map((cell) => `${row.dataset.run ?? row.dataset.workload ?? (row.textContent ?? '').slice(0, 40)}: column ${cell.cellIndex + 1}`)));
}

/** How wide the page is laid out (a cut-off column makes it wider than the window). */
function pageWidth(page: Page): Promise<number> {
  return page.evaluate<number>('Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)');
}

describe('status page of a real daemon in chromium', function () {
  this.timeout(300_000);
  let scene: TracedDaemon;
  let browser: Browser;
  let page: Page;
  let holding: CiHandle | undefined;

  before(async function () {
    this.timeout(60 * 60_000); // a cold build of the cluster binaries
    scene = await startTracedDaemon();
    // One ci run that passed (its result joins the trace), one still holding minio.
    const passed = await scene.startCi('ci-passed');
    await passed.finish(0);
    holding = await scene.startCi('ci-running');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: WIDTH, height: 900 } });
    await mkdir(ARTIFACTS, { recursive: true });
  });
  after(async function () {
    this.timeout(60_000);
    await holding?.finish(0).catch(() => undefined);
    await browser?.close();
    await scene?.stop();
  });

  it('fills every column of every section and fits in 1280 px', async () => {
    await page.goto(scene.daemon.url);
    for (const section of ['#watches', '#runs', '#workloads', '#registry', '#dependencies', '#approvals']) {
      expect(await page.locator(`${section} tbody tr`).count(), section).to.be.greaterThan(0);
      expect(await emptyCells(page, section), section).to.deep.equal([]);
    }
    const rolledRow = page.locator(`#runs tr[data-run="${scene.rolled.id}"]`);
    expect(await rolledRow.innerText()).to.include(`${scene.namespace}/deployment/web`).and.include('ci passed').and.include('BUILD');
    expect(await page.locator('#watches').innerText()).to.include('@every 5s');
    const web = await page.locator(`#workloads tr[data-workload="${scene.namespace}/deployment/web"]`).innerText();
    expect(web).to.include('force').and.include('held by ci-running').and.include(`${scene.repository}:main`);
    expect(await page.locator(`#workloads tr[data-workload="${scene.namespace}/deployment/gated"]`).innerText()).to.include('AwaitingApproval');
    expect(await page.locator('#dependencies').innerText()).to.include('ci-running').and.include(`${scene.namespace}/deployment/web`);
    expect(await pageWidth(page)).to.be.at.most(WIDTH);
    await page.screenshot({ path: join(ARTIFACTS, 'status-page.png'), fullPage: true });
  });

  it("shows a run's trace, kind and timeline without growing past 1280 px", async () => {
    await page.goto(`${scene.daemon.url}/runs/${scene.rolled.id}`);
    expect(await page.locator('#rolled-out').innerText()).to.include(`${scene.namespace}/deployment/web`).and.include('app');
    expect(await page.locator('#ci').innerText()).to.include('ci passed').and.include('ci-passed');
    expect(await page.locator('h1 .kind').textContent()).to.equal('build');
    expect(await page.locator('#trace').innerText()).to.include(scene.rolled.image!.digest!);
    expect(await page.locator('#timeline tbody tr').count()).to.be.greaterThan(1);
    expect(await pageWidth(page)).to.be.at.most(WIDTH);
    await page.screenshot({ path: join(ARTIFACTS, 'status-page-run.png'), fullPage: true });
  });
});

describe('status page in chromium', function () {
  this.timeout(60_000);
  let temp: TempStore;
  let server: ListeningServer;
  let browser: Browser;
  let page: Page;
  let live: RunRecord;
  let approvals: MemoryApprovals;

  before(async () => {
    temp = await openTempStore();
    const hour = 3_600_000;
    await seedRun(temp.store, { watch: 'https://git.example/team/api.git^main', phase: 'failed', log: 'go test ./...\nFAIL\n', createdAt: new Date(Date.now() - 3 * hour) });
    await seedRun(temp.store, {
      watch: 'https://git.example/team/web.git^main', log: 'building\npushed\n', createdAt: new Date(Date.now() - 2 * hour),
      image: { ref: '127.0.0.1:5000/team/web:main', digest: DIGEST, pushed: true },
    });
    live = await seedRun(temp.store, { watch: 'https://git.example/team/web.git^feature-x', phase: 'running', log: 'STEP 1/3: FROM busybox\n' });
    await new TraceBook(temp.store).recordRollouts([{
      workload: 'staging/deployment/web', container: 'web', from: '127.0.0.1:5000/team/web:main', image: '127.0.0.1:5000/team/web:main', digest: DIGEST, at: new Date().toISOString(),
    }]);
    approvals = new MemoryApprovals();
    approvals.add('a-0123456789', 'prod/deployment/web', '127.0.0.1:5000/team/web:1.4.0', '127.0.0.1:5000/team/web:1.5.0');
    const workloads: WorkloadInfo[] = [{
      key: 'staging/deployment/web', policy: 'force',
      images: [{ container: 'web', current: '127.0.0.1:5000/team/web:main', rolledOut: { image: '127.0.0.1:5000/team/web:main', digest: DIGEST, at: new Date().toISOString() } }],
    }, {
      key: 'prod/deployment/web', policy: 'minor',
      images: [{ container: 'web', current: '127.0.0.1:5000/team/web:1.4.0', candidate: '127.0.0.1:5000/team/web:1.5.0' }],
    }];
    const registry = new RecordingRegistry();
    registry.jobList = [{
      key: '127.0.0.1:5000/team/web', repository: '127.0.0.1:5000/team/web', schedule: '@every 1m', targetIds: ['prod/deployment/web/web'],
      nextCheckAt: new Date(Date.now() + 40_000).toISOString(), lastCheckedAt: new Date(Date.now() - 20_000).toISOString(), failures: 0,
    }];
    server = await createServer({
      store: temp.store,
      logPollMs: 50,
      auth: { token: TOKEN },
      sources: {
        approvals, registry,
        workloads: { workloads: () => workloads },
        watches: {
          watches: () => [
            { key: 'https://git.example/team/web.git^main', display: 'https://git.example/team/web.git^main', lastDone: 'c0ffee'.repeat(6) + 'abcd', schedule: '@every 30s', nextCheckAt: new Date(Date.now() + 12_000).toISOString(), failures: 0 },
            { key: 'https://git.example/team/web.git^feature-x', display: 'https://git.example/team/web.git^feature-x', running: live.commit, schedule: '@every 30s', failures: 0 },
          ],
        },
        dependencies: { dependencies: () => [{ key: 'ci/deployment/minio', replicas: 1, readyReplicas: 1, holders: [live.id] }, { key: 'ci/deployment/rabbitmq', replicas: 0, readyReplicas: 0 }] },
      },
    }).listen(0, '127.0.0.1');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: WIDTH, height: 900 } });
    await mkdir(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await temp?.remove();
  });

  it('loads the overview with the runs, watches, workloads and approvals', async () => {
    await page.goto(server.url);
    const rows = page.locator('#runs tbody tr');
    expect(await rows.count()).to.equal(3);
    expect(await page.locator('#runs').innerText()).to.include('staging/deployment/web').and.include('failed').and.include('running');
    expect(await page.locator('#watches').innerText()).to.include('feature-x');
    expect(await page.locator('#approvals').innerText()).to.include('a-0123456789').and.include('Sign in to vote');
    await page.screenshot({ path: join(ARTIFACTS, 'status-page-seeded.png'), fullPage: true });
  });

  it("follows a running build's log live", async () => {
    await page.goto(server.url);
    await page.click(`a[href="/runs/${live.id}"]`);
    await page.waitForURL(`**/runs/${live.id}`);
    expect(await page.locator('#log').innerText()).to.equal('STEP 1/3: FROM busybox\n');
    await temp.store.appendLog(live.id, 'STEP 2/3: RUN make test\n<b>not markup</b>\n');
    await page.locator('#log', { hasText: 'not markup' }).waitFor();
    await temp.store.appendLog(live.id, 'STEP 3/3: COMMIT\n');
    await temp.store.transitionRun(live.id, 'succeeded', RunReason.StepsSucceeded, 'pushed');
    await page.locator('#phase .phase', { hasText: 'succeeded' }).waitFor();
    expect(await page.locator('#log').textContent()).to.equal('STEP 1/3: FROM busybox\nSTEP 2/3: RUN make test\n<b>not markup</b>\nSTEP 3/3: COMMIT\n');
    expect(await page.locator('#log b').count()).to.equal(0);
    await page.screenshot({ path: join(ARTIFACTS, 'status-page-live-log.png'), fullPage: true });
  });

  it('approves a pending update after signing in', async () => {
    await page.goto(server.url);
    await page.click('text=Sign in to vote');
    await page.fill('input[name=token]', TOKEN);
    await page.fill('input[name=name]', 'Carol');
    await Promise.all([page.waitForURL(`${server.url}/`), page.click('button[type=submit]')]);
    await Promise.all([page.waitForURL(`${server.url}/#approvals`), page.click('tr[data-approval="a-0123456789"] >> text=Approve')]);
    expect(approvals.get('a-0123456789')!.voters).to.deep.equal(['Carol']);
    expect(await page.locator('#approvals').innerText()).to.include('Nothing waits for approval.');
    expect(await page.locator('header').innerText()).to.include('Sign out');
  });
});
