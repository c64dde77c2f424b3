import type { NotificationEvent } from './types.js';
import { WebhookNotifier } from './webhook-notifier.js';

/** Slack's mrkdwn needs only these three escaped. */
function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const RUN_ICON: Record<string, string> = { succeeded: ':white_check_mark:', failed: ':x:' };

/**
 * A Slack incoming webhook (or anything that takes Slack's payload, e.g. Mattermost, Rocket.Chat):
 * `{ text, blocks }` where `text` is the fallback shown in notifications.
 */
export class SlackNotifier extends WebhookNotifier {
  protected override readonly reporter: string = 'slack';

  protected override payload(event: NotificationEvent): object {
    const text = this.text(event);
    return { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] };
  }

  private text(event: NotificationEvent): string {
    switch (event.kind) {
      case 'run.finished': {
        const { run } = event;
        const url = this.runUrl(run.id);
        const where = `${escape(run.repo)} ${escape(run.branch)}@${run.commit.slice(0, 7)}`;
        const message = run.message ? `: ${escape(run.message)}` : '';
        return `${RUN_ICON[run.phase] ?? ':warning:'} keelson run ${url ? `<${url}|${run.id}>` : run.id} ${run.phase} (${where})${message}`;
      }
      case 'rollout.done':
        return `${event.ok ? ':rocket:' : ':x:'} ${escape(event.workload)} ${event.ok ? 'rolled out' : 'rollout failed'}: ` +
          `${event.previousImage ? `${escape(event.previousImage)} → ` : ''}${escape(event.image)}` +
          (event.message ? ` (${escape(event.message)})` : '');
      case 'approval.needed':
        return `:raised_hand: ${escape(event.workload)} waits for ${event.votesRequired} approval${event.votesRequired === 1 ? '' : 's'} ` +
          `to run ${escape(event.image)}: \`keelson approve ${escape(event.approvalId)}\`` +
          (event.deadline ? ` before ${escape(event.deadline)}` : '');
    }
  }
}
