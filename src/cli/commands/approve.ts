import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { ApprovalBook, ApprovalNotFoundError, approvalStatus, describeChanges, workloadKey, type Approval } from '../../rollout/index.js';
import { addOutputOptions, formatList, formatTable, outputFormat, type Listing, type OutputFlags } from '../output.js';
import { addStoreOptions, readStoreFromOptions, type StoreFlags } from '../store-options.js';

interface VoteFlags extends StoreFlags {
  readonly voter?: string;
}

/** A vote only changes an approval that exists: a state dir that does not exist is not created. */
async function withBook<T>(flags: StoreFlags, id: string, work: (book: ApprovalBook) => Promise<T>): Promise<T> {
  return readStoreFromOptions(flags, (store) => work(new ApprovalBook(store)), () => {
    throw new ApprovalNotFoundError(id);
  });
}

function defaultVoter(): string {
  try {
    return userInfo().username;
  } catch {
    return 'cli';
  }
}

function cells(approval: Approval, now: Date): string[] {
  return [approval.id, approvalStatus(approval, now), `${approval.voters.length}/${approval.votesRequired}`, approval.deadline,
    workloadKey(approval.workload), describeChanges(approval.changes)];
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
      const approval = await withBook(flags, id, (book) => vote(book, id, flags.voter ?? defaultVoter()));
      process.stdout.write(formatTable([APPROVAL_COLUMNS, cells(approval, new Date())]));
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

  addStoreOptions(addOutputOptions(program
    .command('approvals')
    .description('list updates waiting for approval: ID, status, votes, deadline, workload, changes')))
    .action(async (flags: StoreFlags & OutputFlags) => {
      const format = outputFormat(flags);
      const approvals = await readStoreFromOptions(flags, (store) => new ApprovalBook(store).list(), () => []);
      const now = new Date();
      if (approvals.length === 0) process.stderr.write('keelson: no pending approvals\n');
      if (approvals.length === 0 && (format === 'table' || format === 'wide')) return;
      process.stdout.write(formatList(approvals, format, approvalListing(now)));
    });
}

const APPROVAL_COLUMNS = ['ID', 'STATUS', 'VOTES', 'DEADLINE', 'WORKLOAD', 'CHANGES'];

/** `keelson approvals` columns; wide adds who voted and when it was asked. */
function approvalListing(now: Date): Listing<Approval> {
  return {
    columns: APPROVAL_COLUMNS,
    wideColumns: ['VOTERS', 'CREATED'],
    row: (approval, wide) => [
      ...cells(approval, now),
      ...(wide ? [approval.voters.join(',') || '-', approval.createdAt] : []),
    ],
    name: (approval) => approval.id,
    data: (approval) => ({ ...approval, status: approvalStatus(approval, now) }),
  };
}
