import { isTerminal, type PhaseTransition, type RunRecord } from '../store/index.js';
import type { TracedRun } from '../trace/index.js';
import { breakable as b, html, raw, type SafeHtml } from './html.js';
import type { ApprovalInfo, DependencyInfo, RegistryJobInfo, WatchInfo, WorkloadImage, WorkloadInfo } from './types.js';

/** Who is looking, for what the page offers. */
export interface PageContext {
  /** Per response, allowed by the Content-Security-Policy for the inline style and script */
  readonly nonce: string;
  /** `allowed`: signed in (or no token needed); `login`: votes need signing in; `disabled`: no token configured */
  readonly voting: 'allowed' | 'login' | 'disabled';
  readonly signedIn: boolean;
  readonly now: Date;
}

export interface OverviewData {
  readonly storeDescription: string;
  readonly runs: readonly TracedRun[];
  /** Absent: no such source, the section is left out */
  readonly watches?: readonly WatchInfo[];
  readonly jobs?: readonly RegistryJobInfo[];
  readonly workloads?: readonly WorkloadInfo[];
  readonly approvals?: readonly ApprovalInfo[];
  readonly dependencies?: readonly DependencyInfo[];
  /** Sources that failed to answer, `section: message` */
  readonly problems: readonly string[];
}

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#5d6670;--bg:#fff;--line:#d8dee4;--head:#f3f5f7;--ok:#1a7f37;--bad:#cf222e;--run:#0969da;--warn:#9a6700}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9aa4ae;--bg:#0d1117;--line:#30363d;--head:#161b22;--ok:#3fb950;--bad:#f85149;--run:#58a6ff;--warn:#d29922}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;gap:1.5em;align-items:baseline;padding:.6em 1.2em;border-bottom:1px solid var(--line);background:var(--head)}
header a.brand{font-weight:700;font-size:1.1em}header .right{margin-left:auto;color:var(--muted)}
main{padding:0 1.2em 2em;max-width:1400px}a{color:var(--run);text-decoration:none}a:hover{text-decoration:underline}
h2{font-size:1.05em;margin:1.6em 0 .5em}h1{font-size:1.3em}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid var(--line);vertical-align:top;overflow-wrap:anywhere}
th{background:var(--head);font-weight:600;white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.muted{color:var(--muted)}.nowrap,time{white-space:nowrap;overflow-wrap:normal}.empty{color:var(--muted);font-style:italic}
.kind{display:inline-block;padding:0 .4em;border-radius:3px;font-size:11px;text-transform:uppercase;letter-spacing:.03em;background:var(--head);border:1px solid var(--line);white-space:nowrap}
.kind-deploy{color:var(--warn);border-color:currentColor}.kind-ci{color:var(--run);border-color:currentColor}
.small{font-size:12px}ul.plain{margin:0;padding:0;list-style:none}
.phase{display:inline-block;padding:0 .5em;border-radius:1em;border:1px solid currentColor;font-size:12px;white-space:nowrap}
.phase-succeeded{color:var(--ok)}.phase-failed,.phase-interrupted{color:var(--bad)}.phase-running,.phase-queued{color:var(--run)}.phase-skipped,.phase-cancelled{color:var(--muted)}
.error{color:var(--bad)}.warn{color:var(--warn)}
pre.log{background:var(--head);border:1px solid var(--line);padding:.8em;overflow:auto;max-height:75vh;white-space:pre-wrap;word-break:break-all}
form.inline{display:inline;margin:0}button{font:inherit;padding:.15em .8em;cursor:pointer}
dl.meta{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2em 1.2em}dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;overflow-wrap:anywhere}
.problems{border:1px solid var(--bad);padding:.5em 1em;margin-top:1em}
`;

function layout(title: string, ctx: PageContext, body: SafeHtml): string {
  const account = ctx.voting === 'disabled' ? html`<span>read-only</span>`
    : ctx.signedIn ? html`<form class="inline" method="post" action="/logout"><button type="submit">Sign out</button></form>`
      : html`<a href="/login">Sign in</a>`;
  return `<!doctype html>\n${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title}</title><style nonce="${ctx.nonce}">${raw(STYLE)}</style></head>
<body><header><a class="brand" href="/">keelson</a><a href="/">Overview</a><span class="right">${account}</span></header>
<main>${body}</main></body></html>`.value}`;
}

/** The overview: watches, registry jobs, recent runs, workloads, approvals, dependencies. */
export function renderOverview(data: OverviewData, ctx: PageContext): string {
  const body = html`
${data.problems.length > 0 && html`<div class="problems">${data.problems.map((p) => html`<div class="error">${p}</div>`)}</div>`}
${data.approvals && approvalsSection(data.approvals, ctx)}
${data.watches && watchesSection(data.watches, ctx)}
${runsSection(data.runs, ctx)}
${data.workloads && workloadsSection(data.workloads, ctx)}
${data.jobs && jobsSection(data.jobs, ctx)}
${data.dependencies && dependenciesSection(data.dependencies)}
<p class="muted">Store: ${data.storeDescription} · rendered ${ctx.now.toISOString()}</p>`;
  return layout('keelson', ctx, body);
}

function watchesSection(watches: readonly WatchInfo[], ctx: PageContext): SafeHtml {
  return html`<section id="watches"><h2>Watches (${watches.length})</h2>
${watches.length === 0 ? html`<p class="empty">No watches.</p>` : html`<table><thead><tr><th>Repository</th><th>Branch</th><th>Last commit</th><th>Building</th><th>Schedule</th><th>Next check</th><th>Last run</th><th>Polls</th></tr></thead><tbody>
${watches.map((w) => {
    const { repository, branch } = splitWatchKey(w);
    return html`<tr><td>${b(repository)}</td><td>${branch}</td><td class="mono nowrap">${shortCommit(w.lastDone) || html`<span class="muted">none yet</span>`}</td>
<td class="mono nowrap">${w.running ? shortCommit(w.running) : html`<span class="muted">idle</span>`}${w.pending && html` <span class="muted">then ${shortCommit(w.pending)}</span>`}</td>
<td class="nowrap">${w.schedule || html`<span class="muted">on demand</span>`}</td><td>${w.nextCheckAt ? timeCell(w.nextCheckAt, ctx.now) : html`<span class="muted">not scheduled</span>`}</td>
<td>${lastRunCell(w, ctx)}</td>
<td>${w.failures ? html`<span class="error" title="${w.lastError ?? ''}">${w.failures} failed: ${w.lastError}</span>` : html`<span class="muted">ok</span>`}</td></tr>`;
  })}</tbody></table>`}</section>`;
}

function lastRunCell(watch: WatchInfo, ctx: PageContext): SafeHtml {
  const run = watch.lastRun;
  if (!run) return html`<span class="muted">no run yet</span>`;
  const bad = run.phase === 'failed' || run.phase === 'interrupted';
  return html`<a class="nowrap" href="/runs/${encodeURIComponent(run.id)}">${phaseBadge(run.phase)}</a> ${timeCell(run.at, ctx.now)}
${bad ? html`<div class="error small" title="${run.message}">${run.reason}: ${clip(run.message, 160)}</div>` : html`<div class="muted small">${run.reason}</div>`}`;
}

function runsSection(runs: readonly TracedRun[], ctx: PageContext): SafeHtml {
  return html`<section id="runs"><h2>Recent runs (${runs.length})</h2>
${runs.length === 0 ? html`<p class="empty">No runs yet.</p>` : html`<table><thead><tr><th>Run</th><th>Kind</th><th>Watch</th><th>Commit</th><th>Phase</th><th>Started</th><th>Duration</th><th>Image</th><th>Rolled out to</th></tr></thead><tbody>
${runs.map((run) => html`<tr data-run="${run.id}"><td class="mono nowrap"><a href="/runs/${encodeURIComponent(run.id)}">${run.id}</a></td><td>${kindBadge(run)}</td><td>${b(run.watch)}</td>
<td class="mono nowrap">${shortCommit(run.commit) || html`<span class="muted">none</span>`}</td><td><span class="nowrap">${phaseBadge(run.phase)}</span> <span class="muted small">${run.reason}</span></td>
<td>${timeCell(run.startedAt ?? run.createdAt, ctx.now)}</td><td class="num nowrap">${runDuration(run, ctx.now) || html`<span class="muted">–</span>`}</td>
<td class="mono small">${imageCell(run) || html`<span class="muted">none</span>`}</td><td>${rolloutsCell(run)}</td></tr>`)}
</tbody></table>`}</section>`;
}

/** The workloads a run's digest went to, with the ci result each reported. */
function rolloutsCell(run: TracedRun): SafeHtml {
  if (!run.image?.digest) return html`<span class="muted">${run.image ? 'not pushed' : '–'}</span>`;
  const workloads = rolledWorkloads(run);
  if (workloads.length === 0) return html`<span class="muted">not yet</span>`;
  return html`<ul class="plain">${workloads.map((w) => html`<li>${b(w.workload)}${w.ci && html` ${ciBadge(w.ci.exitCode)}`}</li>`)}</ul>`;
}

/** One line per workload the run's digest reached, with its newest ci result. */
export function rolledWorkloads(run: TracedRun): Array<{ workload: string; at: string; ci?: TracedRun['trace']['ci'][number] }> {
  const out = new Map<string, { workload: string; at: string; ci?: TracedRun['trace']['ci'][number] }>();
  for (const r of run.trace.rollouts) out.set(r.workload, { workload: r.workload, at: r.at });
  for (const c of run.trace.ci) {
    const entry = out.get(c.workload) ?? { workload: c.workload, at: c.finishedAt };
    if (!entry.ci || entry.ci.finishedAt <= c.finishedAt) out.set(c.workload, { ...entry, ci: c });
  }
  return [...out.values()];
}

function ciBadge(exitCode: number): SafeHtml {
  return exitCode === 0 ? html`<span class="phase phase-succeeded">ci passed</span>` : html`<span class="phase phase-failed">ci failed (${exitCode})</span>`;
}

function kindBadge(run: RunRecord): SafeHtml {
  return html`<span class="kind kind-${run.kind}">${run.kind}</span>`;
}

function workloadsSection(workloads: readonly WorkloadInfo[], ctx: PageContext): SafeHtml {
  return html`<section id="workloads"><h2>Workloads (${workloads.length})</h2>
${workloads.length === 0 ? html`<p class="empty">No annotated workloads.</p>` : html`<table><thead><tr><th>Workload</th><th>Policy</th><th>Container</th><th>Current image</th><th>Candidate</th><th>Last rollout</th></tr></thead><tbody>
${workloads.map((w) => {
    const images = w.images && w.images.length > 0 ? w.images : [undefined];
    return images.map((image, i) => html`<tr data-workload="${w.key}">${i === 0 && html`<td rowspan="${images.length}">${b(w.key)}${w.heldBy && w.heldBy.length > 0 && html`<div class="warn small">held by ${w.heldBy.join(', ')}</div>`}${w.error && html`<div class="error small">${w.error}</div>`}${w.lastDecision && html`<div class="muted small" title="${w.lastDecision.message}">last: ${w.lastDecision.outcome} ${timeCell(w.lastDecision.at, ctx.now)}</div>`}</td>
<td rowspan="${images.length}">${policyCell(w)}</td>`}
<td>${image?.container ?? html`<span class="muted">none watched</span>`}</td><td class="mono small">${b(image?.current)}</td>
<td class="mono small">${candidateCell(image)}</td>
<td class="mono small">${image?.rolledOut ? html`${b(image.rolledOut.image)}${image.rolledOut.digest && !image.rolledOut.image.includes('@') && html` <span class="muted" title="${image.rolledOut.digest}">${shortDigest(image.rolledOut.digest)}</span>`} ${timeCell(image.rolledOut.at, ctx.now)}` : html`<span class="muted">none by keelson</span>`}</td></tr>`);
  })}</tbody></table>`}</section>`;
}

/** A failing registry check says so: it found no candidate because it could not look. */
function candidateCell(image: WorkloadImage | undefined): SafeHtml {
  const failed = image?.checkFailed && html`<span class="error" title="${image.checkFailed.lastError}">registry check failed: ${clip(image.checkFailed.lastError, 120)}</span>`;
  if (image?.candidate) return html`${b(image.candidate)}${image.candidateReason && html` <span class="warn nowrap">${image.candidateReason}</span>`}${failed && html`<div>${failed}</div>`}`;
  return failed || html`<span class="muted">up to date</span>`;
}

function policyCell(w: WorkloadInfo): SafeHtml {
  if (!w.policy) return html`<span class="muted">–</span>`;
  return html`<span class="mono">${w.policy}</span>${w.pollSchedule && html`<div class="muted small nowrap">poll ${w.pollSchedule}</div>`}${w.approvals ? html`<div class="muted small nowrap">${w.approvals} approval(s)</div>` : ''}`;
}

function approvalsSection(approvals: readonly ApprovalInfo[], ctx: PageContext): SafeHtml {
  return html`<section id="approvals"><h2>Pending approvals (${approvals.length})</h2>
${approvals.length === 0 ? html`<p class="empty">Nothing waits for approval.</p>` : html`<table><thead><tr><th>Id</th><th>Workload</th><th>Changes</th><th>Votes</th><th>Deadline</th><th></th></tr></thead><tbody>
${approvals.map((a) => html`<tr data-approval="${a.id}"><td class="mono nowrap">${a.id}</td><td>${b(`${a.workload.namespace}/${a.workload.kind.toLowerCase()}/${a.workload.name}`)}</td>
<td class="mono">${a.changes.map((c) => html`<div>${c.container}: ${b(c.from)} → ${b(c.to)}</div>`)}</td>
<td class="num">${a.voters.length}/${a.votesRequired}${a.voters.length > 0 && html` <span class="muted">(${a.voters.join(', ')})</span>`}</td>
<td>${timeCell(a.deadline, ctx.now)}</td><td>${voteCell(a, ctx)}</td></tr>`)}
</tbody></table>`}</section>`;
}

function voteCell(approval: ApprovalInfo, ctx: PageContext): SafeHtml {
  if (ctx.voting === 'disabled') return html`<span class="muted">voting needs an API token on the server</span>`;
  if (ctx.voting === 'login') return html`<a href="/login?next=/">Sign in to vote</a>`;
  const base = `/api/approvals/${encodeURIComponent(approval.id)}`;
  return html`<form class="inline" method="post" action="${base}/approve"><button type="submit">Approve</button></form>
<form class="inline" method="post" action="${base}/reject"><button type="submit">Reject</button></form>`;
}

function jobsSection(jobs: readonly RegistryJobInfo[], ctx: PageContext): SafeHtml {
  return html`<section id="registry"><h2>Registry checks (${jobs.length})</h2>
${jobs.length === 0 ? html`<p class="empty">No images polled.</p>` : html`<table><thead><tr><th>Image</th><th>Schedule</th><th>Last check</th><th>Next check</th><th>Workloads</th><th>Status</th></tr></thead><tbody>
${jobs.map((j) => html`<tr><td class="mono">${b(j.key)}</td><td class="nowrap">${j.schedule}</td><td>${j.lastCheckedAt && timeCell(j.lastCheckedAt, ctx.now)}</td>
<td>${timeCell(j.nextCheckAt, ctx.now)}</td><td class="num">${j.targetIds.length}</td>
<td>${j.failures > 0 ? html`<span class="error">${j.failures} failed: ${j.lastError}</span>` : html`<span class="muted">ok</span>`}</td></tr>`)}
</tbody></table>`}</section>`;
}

function dependenciesSection(dependencies: readonly DependencyInfo[]): SafeHtml {
  return html`<section id="dependencies"><h2>Dependencies (${dependencies.length})</h2>
${dependencies.length === 0 ? html`<p class="empty">No dependencies on demand.</p>` : html`<table><thead><tr><th>Dependency</th><th>Replicas</th><th>Ready</th><th>Held by</th><th>Declared by</th></tr></thead><tbody>
${dependencies.map((d) => html`<tr data-dependency="${d.key}"><td>${b(d.key)}</td><td class="num">${d.replicas}</td><td class="num">${d.readyReplicas}</td>
<td>${d.holders && d.holders.length > 0 ? d.holders.join(', ') : html`<span class="muted">nobody (scaled to 0)</span>`}</td>
<td>${d.declaredBy && d.declaredBy.length > 0 ? d.declaredBy.map((k, i) => html`${i > 0 && ', '}${b(k)}`) : html`<span class="muted">–</span>`}</td></tr>`)}
</tbody></table>`}</section>`;
}

/** One run: its trace (commit → run → digest → workloads rolled → ci), timeline, and its log (followed live by a small script). */
export function renderRunPage(run: TracedRun, log: { text: string; offset: number }, ctx: PageContext): string {
  const live = run.finishedAt === undefined;
  const body = html`<h1>Run <span class="mono">${run.id}</span> <span id="phase">${phaseBadge(run.phase)}</span> ${kindBadge(run)}</h1>
<dl class="meta" id="trace"><dt>Watch</dt><dd>${b(run.watch)}</dd><dt>Commit</dt><dd class="mono">${run.commit || html`<span class="muted">none (image not built here)</span>`}</dd>
<dt>Kind</dt><dd>${run.kind}${run.executor && html` on ${run.executor}`}</dd>
<dt>Reason</dt><dd>${run.reason}: ${run.message}</dd>
${run.exitCode !== undefined && html`<dt>Exit code</dt><dd>${run.exitCode}</dd>`}
<dt>Image</dt><dd class="mono">${run.image ? run.image.ref : html`<span class="muted">none</span>`}</dd>
<dt>Digest</dt><dd class="mono">${run.image?.digest ?? html`<span class="muted">${run.image ? 'not pushed' : 'none'}</span>`}</dd>
<dt>Rolled out to</dt><dd id="rolled-out">${rolloutList(run, ctx)}</dd>
<dt>CI</dt><dd id="ci">${ciList(run, ctx)}</dd>
<dt>Started</dt><dd>${run.startedAt ? timeCell(run.startedAt, ctx.now) : html`<span class="muted">not yet</span>`}</dd>
<dt>Duration</dt><dd>${runDuration(run, ctx.now) || html`<span class="muted">–</span>`}</dd>
${run.retryOf && html`<dt>Retry of</dt><dd><a class="mono" href="/runs/${encodeURIComponent(run.retryOf)}">${run.retryOf}</a></dd>`}
${run.skippedCommits && run.skippedCommits.length > 0 && html`<dt>Coalesced</dt><dd class="mono">${run.skippedCommits.map(shortCommit).join(', ')}</dd>`}
</dl>
<h2>Timeline</h2>${timeline(run.phases, ctx.now)}
<h2>Log <a class="muted" href="/api/runs/${encodeURIComponent(run.id)}/log">(plain text)</a></h2>
<pre class="log" id="log" data-run="${run.id}" data-offset="${log.offset}" data-live="${live ? '1' : '0'}">${log.text}</pre>
${live && html`<p class="muted" id="follow">Following the log live…</p>`}
${live && html`<script nonce="${ctx.nonce}">${raw(FOLLOW_SCRIPT)}</script>`}`;
  return layout(`keelson run ${run.id}`, ctx, body);
}

function rolloutList(run: TracedRun, ctx: PageContext): SafeHtml {
  if (!run.image?.digest) return html`<span class="muted">nothing: the run pushed no image</span>`;
  if (run.trace.rollouts.length === 0) return html`<span class="muted">nothing yet</span>`;
  return html`<table class="small"><thead><tr><th>Workload</th><th>Container</th><th>From</th><th>To</th><th>At</th></tr></thead><tbody>
${run.trace.rollouts.map((r) => html`<tr><td>${b(r.workload)}</td><td>${r.container}</td>${rolloutSides(r)}<td>${timeCell(r.at, ctx.now)}</td></tr>`)}
</tbody></table>`;
}

/** From and To of one rollout; the same tag on both sides differs only in digests, so those are shown. */
function rolloutSides(r: TracedRun['trace']['rollouts'][number]): SafeHtml {
  const approved = r.approval && html` <span class="muted">approved ${r.approval}</span>`;
  if (r.from !== r.image) return html`<td class="mono">${b(r.from)}</td><td class="mono">${b(r.image)}${approved}</td>`;
  const from = r.fromDigest ? html`<span title="${r.fromDigest}">${shortDigest(r.fromDigest)}</span>` : html`<span class="muted">digest unknown</span>`;
  return html`<td class="mono">${from}</td><td class="mono"><span title="${r.digest}">${shortDigest(r.digest)}</span>${approved}<div class="muted small">same tag ${b(r.image)}</div></td>`;
}

function ciList(run: TracedRun, ctx: PageContext): SafeHtml {
  if (run.trace.ci.length === 0) return html`<span class="muted">${run.image?.digest ? 'no keelson ci result for this digest yet' : 'none'}</span>`;
  return html`<ul class="plain">${run.trace.ci.map((c) => html`<li>${ciBadge(c.exitCode)} ${b(c.workload)} <span class="muted mono">${c.run}</span> ${timeCell(c.finishedAt, ctx.now)}</li>`)}</ul>`;
}

// Appends text nodes only (never innerHTML); ids come from the page's own data attributes.
const FOLLOW_SCRIPT = `(function(){
var pre=document.getElementById('log');if(!window.EventSource||!pre)return;
var url='/api/runs/'+encodeURIComponent(pre.dataset.run)+'/log?follow=1&offset='+encodeURIComponent(pre.dataset.offset);
var es=new EventSource(url);
es.addEventListener('log',function(e){var bottom=pre.scrollTop+pre.clientHeight>=pre.scrollHeight-4;pre.appendChild(document.createTextNode(e.data));pre.dataset.offset=e.lastEventId;if(bottom)pre.scrollTop=pre.scrollHeight;});
es.addEventListener('end',function(e){es.close();var d={};try{d=JSON.parse(e.data)}catch(x){}var b=document.querySelector('#phase .phase');if(b&&d.phase){b.textContent=d.phase;b.className='phase phase-'+d.phase;}var f=document.getElementById('follow');if(f){f.textContent='Run ended: '+(d.phase||'')+'. ';var a=document.createElement('a');a.href=location.pathname;a.textContent='Reload for the final timeline';f.appendChild(a);}});
})();`;

function timeline(phases: readonly PhaseTransition[], now: Date): SafeHtml {
  return html`<table id="timeline"><thead><tr><th>Phase</th><th>Reason</th><th>Message</th><th>At</th><th>For</th></tr></thead><tbody>
${phases.map((p, i) => {
    const next = phases[i + 1];
    const terminal = !next && isTerminal(p.phase);
    const until = next ? Date.parse(next.at) : terminal ? undefined : now.getTime();
    return html`<tr><td class="nowrap">${phaseBadge(p.phase)}</td><td class="nowrap">${p.reason}</td><td>${p.message}</td><td class="nowrap">${timeCell(p.at, now)}</td>
<td class="num nowrap">${until !== undefined && formatDuration(until - Date.parse(p.at))}</td></tr>`;
  })}</tbody></table>`;
}

/** Sign-in form: the token is posted once and kept as an HttpOnly cookie. */
export function renderLoginPage(ctx: PageContext, next: string, problem?: string): string {
  return layout('keelson: sign in', ctx, html`<h1>Sign in</h1>
${problem && html`<p class="error">${problem}</p>`}
<form method="post" action="/login"><input type="hidden" name="next" value="${next}">
<p><label>API token<br><input type="password" name="token" autocomplete="current-password" required size="40"></label></p>
<p><label>Your name (recorded with your votes)<br><input type="text" name="name" maxlength="100" size="40"></label></p>
<p><button type="submit">Sign in</button></p></form>`);
}

export function renderErrorPage(ctx: PageContext, status: number, message: string): string {
  return layout(`keelson: ${status}`, ctx, html`<h1>${status}</h1><p class="error">${message}</p><p><a href="/">Back to the overview</a></p>`);
}

function phaseBadge(phase: string): SafeHtml {
  return html`<span class="phase phase-${phase}">${phase}</span>`;
}

function imageCell(run: RunRecord): SafeHtml | string {
  if (!run.image) return '';
  return html`${b(run.image.ref)}${run.image.digest && html`<br><span class="muted nowrap" title="${run.image.digest}">${shortDigest(run.image.digest)}</span>`}`;
}

/** `sha256:0123456789ab…`: enough to tell digests apart on a page; the full one is in the title. */
function shortDigest(digest: string): string {
  return digest.length > 19 ? `${digest.slice(0, 19)}…` : digest;
}

function clip(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

function timeCell(iso: string, now: Date): SafeHtml {
  return html`<time datetime="${iso}" title="${iso}">${relative(Date.parse(iso) - now.getTime())}</time>`;
}

function relative(deltaMs: number): string {
  if (!Number.isFinite(deltaMs)) return '';
  const text = formatDuration(Math.abs(deltaMs));
  return deltaMs >= 0 ? `in ${text}` : `${text} ago`;
}

function runDuration(run: RunRecord, now: Date): string {
  if (!run.startedAt) return '';
  const end = run.finishedAt ? Date.parse(run.finishedAt) : now.getTime();
  return formatDuration(end - Date.parse(run.startedAt));
}

/** `850ms`, `42s`, `3m 05s`, `2h 07m`, `3d 4h`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

function shortCommit(commit: string | undefined): string {
  return commit ? commit.slice(0, 12) : '';
}

/**
 * `repo^branch` → its parts; `^HEAD` is the default branch. The repository comes from the key,
 * which holds a local watch's real path (the user may have typed `.`), never the spelling.
 */
function splitWatchKey(watch: WatchInfo): { repository: string; branch: string } {
  const caret = watch.key.lastIndexOf('^');
  if (caret < 0) return { repository: withoutCredentials(watch.key), branch: '' };
  const branch = watch.key.slice(caret + 1);
  return { repository: withoutCredentials(watch.key.slice(0, caret)), branch: branch === 'HEAD' ? 'default (HEAD)' : branch };
}

/**
 * Drops a URL's user info when it holds a password, or any user info of an http(s) URL (a
 * token is often given as the user name). An ssh user alone (`ssh://git@host`) is no secret.
 */
function withoutCredentials(repository: string): string {
  return repository.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/@]*)@/i, (all, scheme: string, userInfo: string) =>
    /^https?:/i.test(scheme) || userInfo.includes(':') ? scheme : all);
}
