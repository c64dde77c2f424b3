import { isTerminal, type PhaseTransition, type RunRecord } from '../store/index.js';
import { html, raw, type SafeHtml } from './html.js';
import type { ApprovalInfo, DependencyInfo, RegistryJobInfo, WatchInfo, WorkloadInfo } from './types.js';

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
  readonly runs: readonly RunRecord[];
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
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--head);font-weight:600;white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.muted{color:var(--muted)}.nowrap{white-space:nowrap}.empty{color:var(--muted);font-style:italic}
.phase{display:inline-block;padding:0 .5em;border-radius:1em;border:1px solid currentColor;font-size:12px;white-space:nowrap}
.phase-succeeded{color:var(--ok)}.phase-failed,.phase-interrupted{color:var(--bad)}.phase-running,.phase-queued{color:var(--run)}.phase-skipped,.phase-cancelled{color:var(--muted)}
.error{color:var(--bad)}.warn{color:var(--warn)}
pre.log{background:var(--head);border:1px solid var(--line);padding:.8em;overflow:auto;max-height:75vh;white-space:pre-wrap;word-break:break-all}
form.inline{display:inline;margin:0}button{font:inherit;padding:.15em .8em;cursor:pointer}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1.2em}dl.meta dt{color:var(--muted)}dl.meta dd{margin:0}
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
${runsSection(data.runs, data.workloads ?? [], ctx)}
${data.workloads && workloadsSection(data.workloads)}
${data.jobs && jobsSection(data.jobs, ctx)}
${data.dependencies && dependenciesSection(data.dependencies)}
<p class="muted">Store: ${data.storeDescription} · rendered ${ctx.now.toISOString()}</p>`;
  return layout('keelson', ctx, body);
}

function watchesSection(watches: readonly WatchInfo[], ctx: PageContext): SafeHtml {
  return html`<section id="watches"><h2>Watches (${watches.length})</h2>
${watches.length === 0 ? html`<p class="empty">No watches.</p>` : html`<table><thead><tr><th>Repository</th><th>Branch</th><th>Last commit</th><th>Building</th><th>Schedule</th><th>Next check</th><th>Status</th></tr></thead><tbody>
${watches.map((w) => {
    const { repository, branch } = splitWatchKey(w);
    return html`<tr><td>${repository}</td><td>${branch}</td><td class="mono">${shortCommit(w.lastDone) || html`<span class="muted">none yet</span>`}</td>
<td class="mono">${shortCommit(w.running)}${w.pending && html` <span class="muted">then ${shortCommit(w.pending)}</span>`}</td>
<td>${w.schedule}</td><td>${w.nextCheckAt && timeCell(w.nextCheckAt, ctx.now)}</td>
<td>${w.failures ? html`<span class="error" title="${w.lastError ?? ''}">${w.failures} failed poll(s): ${w.lastError}</span>` : html`<span class="muted">ok</span>`}</td></tr>`;
  })}</tbody></table>`}</section>`;
}

function runsSection(runs: readonly RunRecord[], workloads: readonly WorkloadInfo[], ctx: PageContext): SafeHtml {
  return html`<section id="runs"><h2>Recent runs (${runs.length})</h2>
${runs.length === 0 ? html`<p class="empty">No runs yet.</p>` : html`<table><thead><tr><th>Run</th><th>Watch</th><th>Commit</th><th>Phase</th><th>Started</th><th>Duration</th><th>Image</th><th>Rolled out to</th></tr></thead><tbody>
${runs.map((run) => html`<tr><td class="mono nowrap"><a href="/runs/${encodeURIComponent(run.id)}">${run.id}</a></td><td>${run.watch}</td>
<td class="mono">${shortCommit(run.commit)}</td><td>${phaseBadge(run.phase)} <span class="muted">${run.reason}</span></td>
<td>${timeCell(run.startedAt ?? run.createdAt, ctx.now)}</td><td class="num">${runDuration(run, ctx.now)}</td>
<td class="mono">${imageCell(run)}</td><td>${rolloutsOf(run, workloads).join(', ')}</td></tr>`)}
</tbody></table>`}</section>`;
}

function workloadsSection(workloads: readonly WorkloadInfo[]): SafeHtml {
  return html`<section id="workloads"><h2>Workloads (${workloads.length})</h2>
${workloads.length === 0 ? html`<p class="empty">No annotated workloads.</p>` : html`<table><thead><tr><th>Workload</th><th>Policy</th><th>Container</th><th>Current image</th><th>Candidate</th><th>Last rollout</th></tr></thead><tbody>
${workloads.map((w) => {
    const images = w.images && w.images.length > 0 ? w.images : [undefined];
    return images.map((image, i) => html`<tr>${i === 0 && html`<td rowspan="${images.length}">${w.key}${w.heldBy && w.heldBy.length > 0 && html`<div class="warn">held by ${w.heldBy.join(', ')}</div>`}${w.error && html`<div class="error">${w.error}</div>`}</td><td rowspan="${images.length}">${w.policy}</td>`}
<td>${image?.container}</td><td class="mono">${image?.current}</td><td class="mono">${image?.candidate}</td>
<td class="mono">${image?.rolledOut && html`${image.rolledOut.image} <span class="muted">${image.rolledOut.at}</span>`}</td></tr>`);
  })}</tbody></table>`}</section>`;
}

function approvalsSection(approvals: readonly ApprovalInfo[], ctx: PageContext): SafeHtml {
  return html`<section id="approvals"><h2>Pending approvals (${approvals.length})</h2>
${approvals.length === 0 ? html`<p class="empty">Nothing waits for approval.</p>` : html`<table><thead><tr><th>Id</th><th>Workload</th><th>Changes</th><th>Votes</th><th>Deadline</th><th></th></tr></thead><tbody>
${approvals.map((a) => html`<tr data-approval="${a.id}"><td class="mono">${a.id}</td><td>${a.workload.namespace}/${a.workload.kind.toLowerCase()}/${a.workload.name}</td>
<td class="mono">${a.changes.map((c) => html`<div>${c.container}: ${c.from} → ${c.to}</div>`)}</td>
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
${jobs.map((j) => html`<tr><td class="mono">${j.key}</td><td>${j.schedule}</td><td>${j.lastCheckedAt && timeCell(j.lastCheckedAt, ctx.now)}</td>
<td>${timeCell(j.nextCheckAt, ctx.now)}</td><td class="num">${j.targetIds.length}</td>
<td>${j.failures > 0 ? html`<span class="error">${j.failures} failed: ${j.lastError}</span>` : html`<span class="muted">ok</span>`}</td></tr>`)}
</tbody></table>`}</section>`;
}

function dependenciesSection(dependencies: readonly DependencyInfo[]): SafeHtml {
  return html`<section id="dependencies"><h2>Dependencies (${dependencies.length})</h2>
${dependencies.length === 0 ? html`<p class="empty">No dependencies on demand.</p>` : html`<table><thead><tr><th>Dependency</th><th>Replicas</th><th>Ready</th><th>Used by</th></tr></thead><tbody>
${dependencies.map((d) => html`<tr><td>${d.key}</td><td class="num">${d.replicas}</td><td class="num">${d.readyReplicas}</td><td>${(d.holders ?? []).join(', ')}</td></tr>`)}
</tbody></table>`}</section>`;
}

/** One run: its facts, phase timeline, where its image went, and its log (followed live by a small script). */
export function renderRunPage(run: RunRecord, log: { text: string; offset: number }, workloads: readonly WorkloadInfo[], ctx: PageContext): string {
  const live = run.finishedAt === undefined;
  const rollouts = rolloutsOf(run, workloads);
  const body = html`<h1>Run <span class="mono">${run.id}</span> <span id="phase">${phaseBadge(run.phase)}</span></h1>
<dl class="meta"><dt>Watch</dt><dd>${run.watch}</dd><dt>Commit</dt><dd class="mono">${run.commit}</dd><dt>Kind</dt><dd>${run.kind}${run.executor && html` on ${run.executor}`}</dd>
<dt>Reason</dt><dd>${run.reason}: ${run.message}</dd>
${run.exitCode !== undefined && html`<dt>Exit code</dt><dd>${run.exitCode}</dd>`}
<dt>Image</dt><dd class="mono">${imageCell(run) || html`<span class="muted">none</span>`}</dd>
<dt>Rolled out to</dt><dd>${rollouts.length > 0 ? rollouts.join(', ') : html`<span class="muted">nothing</span>`}</dd>
<dt>Duration</dt><dd>${runDuration(run, ctx.now)}</dd>
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
    return html`<tr><td>${phaseBadge(p.phase)}</td><td>${p.reason}</td><td>${p.message}</td><td class="mono">${p.at}</td>
<td class="num">${until !== undefined && formatDuration(until - Date.parse(p.at))}</td></tr>`;
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

/** Workloads whose last rollout used this run's image digest. */
export function rolloutsOf(run: RunRecord, workloads: readonly WorkloadInfo[]): string[] {
  const digest = run.image?.digest;
  if (!digest) return [];
  return workloads.filter((w) => w.images?.some((i) => i.rolledOut?.digest === digest || i.rolledOut?.image.endsWith(`@${digest}`))).map((w) => w.key);
}

function phaseBadge(phase: string): SafeHtml {
  return html`<span class="phase phase-${phase}">${phase}</span>`;
}

function imageCell(run: RunRecord): SafeHtml | string {
  if (!run.image) return '';
  return html`${run.image.ref}${run.image.digest && html`<br><span class="muted" title="${run.image.digest}">${run.image.digest.slice(0, 19)}…</span>`}`;
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

/** `repo^branch` → its parts; `^HEAD` is the default branch. */
function splitWatchKey(watch: WatchInfo): { repository: string; branch: string } {
  const caret = watch.key.lastIndexOf('^');
  if (caret < 0) return { repository: watch.display, branch: '' };
  const branch = watch.key.slice(caret + 1);
  return { repository: watch.display.split('^')[0] ?? watch.display, branch: branch === 'HEAD' ? 'default (HEAD)' : branch };
}
