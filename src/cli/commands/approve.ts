import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { ApprovalBook, approvalStatus, describeChanges, workloadKey, type Approval } from '../../rollout/index.js';
import { addStoreOptions, withStoreFromOptions, type StoreFlags } from '../store-options.js';

interface VoteFlags extends StoreFlags {
  readonly voter?: string;
}

async function withBook<T>(flags: StoreFlags, work: (book: ApprovalBook) => Promise<T>): Promise<T> {
  return withStoreFromOptions(flags, (store) => work(new ApprovalBook(store)));
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

/** `keelson approve ID` and `keelson reject ID`: one vote, then the approval as a line. */
function registerVote(program: Command, name: string, description: string, voterHelp: string,
  vote: (book: ApprovalBook, id: string, voter: string) => Promise<Approval>): void {
  addStoreOptions(program
    .command(name)
    .description(description)
    .argument('<id>', 'the approval id, as `keelson approvals` and the workload\'s events show it')
    .option('--voter <name>', voterHelp))
    .action(async (id: string, flags: VoteFlags) => {
      const approval = await withBook(flags, (book) => vote(book, id, flags.voter ?? defaultVoter()));
      process.stdout.write(`${line(approval, new Date())}\n`);
    });
}

/**
 * `keelson approve ID`, `keelson reject ID` and `keelson approvals`: the votes on updates that
 * ask for keel.sh/approvals. They write the store the daemon reads; the daemon applies an approved
 * update within its approval interval.
 */
export function registerApproveCommand(program: Command): void {
  registerVote(program, 'approve', 'vote for a pending update (keel.sh/approvals); applied once it has its votes',
    'who approves; each voter counts once (default: the user name)', (book, id, voter) => book.approve(id, voter, new Date()));
  registerVote(program, 'reject', 'reject a pending update; it will not be asked for again',
    'who rejects (default: the user name)', (book, id, voter) => book.reject(id, voter, new Date()));

  addStoreOptions(program
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
