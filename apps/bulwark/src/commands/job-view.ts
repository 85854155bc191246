import cliProgress from 'cli-progress';
import { CliError } from '../errors.js';
import { bar, printFields, printTable, time } from '../output.js';

/** The API's job shapes (GET /api/v1/jobs/:id and /devices), and how the CLI shows and follows a job. */

export const JOB_STATES = ['running', 'paused', 'cancelled', 'aborted', 'completed'] as const;
export const DEVICE_STATES = ['queued', 'in_progress', 'succeeded', 'failed', 'timed_out', 'cancelled'] as const;
type DeviceState = (typeof DEVICE_STATES)[number];

export type Operation =
  | { readonly type: 'twin-patch'; readonly patch: Record<string, unknown> }
  | { readonly type: 'command'; readonly name: string; readonly params: Record<string, unknown>; readonly ttlS?: number }
  | { readonly type: 'rotate-certificate' | 'suspend' | 'resume' | 'decommission' };

export interface Window {
  readonly startMinute: number;
  readonly endMinute: number;
}

export interface Job {
  readonly id: string;
  readonly name: string;
  readonly operation: Operation;
  readonly group: string;
  readonly pacing: { readonly ratePerSecond: number; readonly maxConcurrent: number; readonly window: Window | null };
  readonly deviceTimeoutMs: number;
  readonly maxRetries: number;
  readonly abort: { readonly failedPercent: number; readonly minFinished: number } | null;
  readonly state: (typeof JOB_STATES)[number];
  readonly reason: string | null;
  readonly deviceCount: number;
  readonly skipped: Record<string, number>;
  readonly history: { at: number; state: string; actor: string; reason: string }[];
  readonly createdBy: string;
  readonly createdAt: number;
  readonly settledAt: number | null;
  readonly counts: Record<DeviceState, number>;
  readonly progress: { readonly finished: number; readonly total: number; readonly percent: number };
  readonly reasons: { state: DeviceState; reason: string; count: number }[];
}

export interface JobDevice {
  readonly deviceId: string;
  readonly state: DeviceState;
  readonly attempts: number;
  readonly reason: string | null;
  readonly detail: string | null;
  readonly dispatchedAt: number | null;
  readonly finishedAt: number | null;
}

const hhmm = (minute: number) => `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
export const windowText = (w: Window | null) => (w === null ? 'any time' : `${hhmm(w.startMinute)}-${hhmm(w.endMinute)} UTC`);

/** 30000 → `30s`, 120000 → `2m`: the way --timeout takes it. */
export function durationText(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const)
    if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

export function operationText(op: Operation): string {
  switch (op.type) {
    case 'twin-patch':
      return `twin patch ${JSON.stringify(op.patch)}`;
    case 'command':
      return `command ${op.name} ${JSON.stringify(op.params)}${op.ttlS !== undefined ? ` (ttl ${op.ttlS} s)` : ''}`;
    case 'rotate-certificate':
      return 'certificate renewal';
    default:
      return op.type;
  }
}

/** A job that ended on its own terms: aborted, or with devices that failed or timed out. */
const jobFailed = (j: Job) => j.state === 'aborted' || j.counts.failed > 0 || j.counts.timed_out > 0;

const summary = (j: Job) =>
  (['succeeded', 'failed', 'timed_out', 'cancelled'] as const)
    .filter((s) => j.counts[s] > 0)
    .map((s) => `${j.counts[s]} ${s.replace('_', ' ')}`)
    .join(', ') || 'no device finished';
const BAR_FORMAT = '[{bar}] {percentage}% | {value}/{total} finished | {succeeded} succeeded | {failed} failed | {timedOut} timed out';
const counts = (j: Job) => `${j.counts.succeeded} succeeded | ${j.counts.failed} failed | ${j.counts.timed_out} timed out`;
const payload = (j: Job) => ({ succeeded: j.counts.succeeded, failed: j.counts.failed, timedOut: j.counts.timed_out, state: j.state });

/** State, pacing, a bar of finished devices, the count in each state, why devices did not succeed, and the history. */
export function renderJob(j: Job): void {
  console.log(`${j.name} (${j.id}): ${operationText(j.operation)} over group ${j.group}`);
  const skipped = Object.entries(j.skipped)
    .map(([why, n]) => `${n} ${why}`)
    .join(', ');
  printFields([
    ['state', j.reason ? `${j.state}: ${j.reason}` : j.state],
    ['devices', skipped ? `${j.deviceCount} (skipped: ${skipped})` : j.deviceCount],
    ['pacing', `${j.pacing.ratePerSecond}/s, ${j.pacing.maxConcurrent} at once, ${windowText(j.pacing.window)}`],
    ['timeout', `${durationText(j.deviceTimeoutMs)} per device, ${j.maxRetries} ${j.maxRetries === 1 ? 'retry' : 'retries'}`],
    ['abort', j.abort ? `at ${j.abort.failedPercent}% failed or timed out, once ${j.abort.minFinished} finished` : null],
    ['created', `${time(j.createdAt)} by ${j.createdBy}`],
    ['settled', j.settledAt === null ? 'not yet' : time(j.settledAt)],
  ]);
  console.log(`  ${bar(j.progress.finished, j.progress.total)} | ${j.progress.finished}/${j.progress.total} finished | ${counts(j)}`);
  printTable(
    DEVICE_STATES.map((s) => s.replace('_', ' ')),
    [DEVICE_STATES.map((s) => j.counts[s])],
    'No devices.',
  );
  printTable(
    ['state', 'reason', 'devices'],
    j.reasons.map((r) => [r.state, r.reason, r.count]),
    'No device failed, timed out or was cancelled.',
  );
  console.log('History:');
  for (const e of j.history) console.log(`  ${time(e.at)}  ${e.state.padEnd(9)} ${e.actor}: ${e.reason}`);
}

/** Re-reads the job every `intervalMs` until it settles (ended, and every dispatched device answered or timed out), moving a live bar on a terminal. */
export async function followJob(first: Job, read: () => Promise<Job>, intervalMs: number, showBar: boolean): Promise<Job> {
  const live = showBar && process.stderr.isTTY ? new cliProgress.SingleBar({ stream: process.stderr, format: `{state} ${BAR_FORMAT}`, hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  live?.start(first.progress.total, first.progress.finished, payload(first));
  let j = first;
  try {
    while (j.settledAt === null) {
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
      j = await read();
      live?.update(j.progress.finished, payload(j));
    }
  } finally {
    live?.stop();
  }
  return j;
}

/** After the summary is printed: exit 1 for a job that was aborted or left devices failed or timed out. */
export function failUnlessClean(j: Job): void {
  if (!jobFailed(j)) return;
  throw new CliError('BULWARK_CLI_JOB_FAILED', j.state === 'aborted' ? `job ${j.id} was aborted (${j.reason ?? 'no reason'}): ${summary(j)}` : `job ${j.id} ${j.state}: ${summary(j)}`);
}
