import { expect } from 'chai';
import { Duration, parseRunId } from '../../../src/domain/index.js';
import { SlackNotifier, WebhookNotifier, type ReportedRun } from '../../../src/report/index.js';
import { startContractServer, type ContractServer } from '../../support/contract-server.js';

const run: ReportedRun = {
  id: parseRunId('20260101-101500-a1b2c3'), kind: 'build', watch: 'https://github.com/org/app^main',
  repo: 'https://github.com/org/app', branch: 'main', commit: 'abcdef0123456789abcdef0123456789abcdef01',
  phase: 'failed', reason: 'StepFailed', message: 'step "make test" exited 2 <stderr>',
};

describe('notifications against a Slack-compatible and a generic webhook receiver', function () {
  this.timeout(30_000);
  let server: ContractServer;
  const notifiers: { close(): Promise<void> }[] = [];

  before(async () => {
    server = await startContractServer();
  });
  after(async () => {
    await Promise.all(notifiers.map((n) => n.close()));
    await server?.stop();
  });
  beforeEach(() => server.resetRecords());
  afterEach(() => expect(server.violations).to.deep.equal([]));

  function slack(url = server.slackUrl, timeout = Duration.ofSeconds(5)) {
    const notifier = new SlackNotifier({ url, events: ['run.finished', 'approval.needed'], runPageBaseUrl: 'https://keelson.example', timeout });
    notifiers.push(notifier);
    return notifier;
  }

  it('Slack: text and a mrkdwn block, escaped, with a link to the run', async () => {
    const [result] = await slack().notify({ kind: 'run.finished', run });
    expect(result).to.include({ reporter: 'slack', outcome: 'posted', status: 200 });
    const message = server.slackMessages.at(-1) as { text: string; blocks: { type: string; text: { text: string } }[] };
    expect(message.text).to.equal(':x: keelson run <https://keelson.example/runs/20260101-101500-a1b2c3|20260101-101500-a1b2c3> failed ' +
      '(https://github.com/org/app main@abcdef0): step "make test" exited 2 &lt;stderr&gt;');
    expect(message.blocks[0]!.type).to.equal('section');
  });

  it('Slack: an approval request says how to approve', async () => {
    await slack().notify({ kind: 'approval.needed', approvalId: 'ap-1', workload: 'Deployment/prod/web', image: 'reg/web:1.2.0', votesRequired: 2 });
    expect((server.slackMessages.at(-1) as { text: string }).text)
      .to.equal(':raised_hand: Deployment/prod/web waits for 2 approvals to run reg/web:1.2.0: `keelson approve ap-1`');
  });

  it('events a target did not ask for are not sent', async () => {
    expect(await slack().notify({ kind: 'rollout.done', workload: 'Deployment/prod/web', image: 'reg/web:1.2.0', ok: true })).to.deep.equal([]);
    expect(server.requests).to.have.lengthOf(0);
  });

  it('a wrong Slack URL is Slack\'s 404, recorded and not retried', async () => {
    const [result] = await slack(`${server.url}/services/T0/B0/wrong`).notify({ kind: 'run.finished', run });
    expect(result).to.include({ outcome: 'failed', attempts: 1, status: 404, detail: 'HTTP 404: no_service' });
  });

  it('a receiver that never answers times out, is retried, and is recorded as failed', async () => {
    server.failNext(3, { status: 'hang' });
    const notifier = slack(server.slackUrl, Duration.ofMilliseconds(300));
    const [result] = await notifier.notify({ kind: 'run.finished', run });
    expect(result).to.include({ outcome: 'failed', attempts: 3 });
    expect(result!.detail).to.match(/timed out/);
  });

  it('webhook: the generic JSON event, after a 503', async () => {
    server.failNext(1, { status: 503 });
    const notifier = new WebhookNotifier({ url: server.webhookUrl, events: ['rollout.done'] });
    notifiers.push(notifier);
    const [result] = await notifier.notify({ kind: 'rollout.done', workload: 'Deployment/prod/web', image: 'reg/web:1.2.0', previousImage: 'reg/web:1.1.0', ok: true });
    expect(result).to.include({ reporter: 'webhook', outcome: 'posted', attempts: 2 });
    expect(server.webhookEvents.at(-1)).to.deep.include({
      event: 'rollout.done',
      rollout: { workload: 'Deployment/prod/web', image: 'reg/web:1.2.0', previousImage: 'reg/web:1.1.0', ok: true },
    });
  });
});
