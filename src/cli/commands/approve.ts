import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { ApprovalBook, approvalStatus, describeChanges, workloadKey, type Approval } from '../../rollout/index.js';
import { createStore, type Store } from '../../store/index.js';

interface StoreFlags {
  readonly stateDir?: string;
  readonly redis?: string;
}

interface VoteFlags extends StoreFlags {
  readonly voter?: string;
}

function withStoreOptions(command: Command): Command {
  return command
    .option('--state-dir <dir>', 'file store directory (default: $XDG_STATE_HOME/keelson)')
    .option('--redis <url>', 'use the Redis store at this URL instead of files');
}

async function openStore(flags: StoreFlags): Promise<Store> {
  return createStore({
    ...(flags.stateDir !== undefined ? { stateDir: flags.stateDir } : {}),
    ...(flags.redis !== undefined ? { redisUrl: flags.redis } : {}),
  });
}

async function withBook<T>(flags: StoreFlags, work: (book: ApprovalBook) => Promise<T>): Promise<T> {
  const store = await openStore(flags);
  try {
    return await work(new ApprovalBook(store));
  } finally {
    await store.close();
  }
}

function defaultVoter(): string {
  try {
    return userInfo().username;
  } catch {
    return 'cli';
  }
}

function line(approval: Approval, now: Date): string {
  return `${approval.id}\t${approvalStatus(approval, now)}\t${approval.voters.length}/${approval.votesRequired}\t${approval.deadline}\t${workloadKey(approval.workload)}\t${describeChanges(approval.changes)}`;
}

/**
 * `keelson approve ID`, `keelson reject ID` and `keelson approvals`: the votes on updates that
 * ask for keel.sh/approvals. They write the store the daemon reads; the daemon applies an approved
 * update within its approval interval.
 */
export function registerApproveCommand(program: Command): void {
  withStoreOptions(program
    .command('approve')
    .description('vote for a pending update (keel.sh/approvals); applied once it has its votes')
    .argument('<id>', 'the approval id, as `keelson approvals` and the workload\'s events show it')
    .option('--voter <name>', 'who approves; each voter counts once (default: the user name)'))
    .action(async (id: string, flags: VoteFlags) => {
      const approval = await withBook(flags, (book) => book.approve(id, flags.voter ?? defaultVoter(), new Date()));
      process.stdout.write(`${line(approval, new Date())}\n`);
    });

  withStoreOptions(program
    .command('reject')
    .description('reject a pending update; it will not be asked for again')
    .argument('<id>', 'the approval id')
    .option('--voter <name>', 'who rejects (default: the user name)'))
    .action(async (id: string, flags: VoteFlags) => {
      const approval = await withBook(flags, (book) => book.reject(id, flags.voter ?? defaultVoter(), new Date()));
      process.stdout.write(`${line(approval, new Date())}\n`);
    });

  withStoreOptions(program
    .command('approvals')
    .description('list updates waiting for approval: ID, status, votes, deadline, workload, changes')
    .option('--json', 'print JSON'))
    .action(async (flags: StoreFlags & { json?: boolean }) => {
      const approvals = await withBook(flags, (book) => book.list());
      const now = new Date();
      if (flags.json) process.stdout.write(`${JSON.stringify(approvals.map((a) => ({ ...a, status: approvalStatus(a, now) })), null, 2)}\n`);
      else for (const approval of approvals) process.stdout.write(`${line(approval, now)}\n`);
    });
}
