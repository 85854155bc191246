import { q } from './api';
import { href } from './router';
import type { Job, JobDeviceState, JobOperation, JobState } from './types';

/** Jobs move fast (50 devices a second by default): their pages refresh this often until a job is settled. */
export const JOB_REFRESH_MS = 2000;

/** The device list filtered by the group. */
export const groupHref = (group: string): string => `${href('devices')}${q({ group })}`;

const json = (v: unknown) => JSON.stringify(v);

/** A job's operation as a sentence: `Sends command diag.ping with {"n":1} to each device and waits for its answer`. */
export function operationText(op: JobOperation): string {
  switch (op.type) {
    case 'twin-patch':
      return `Merges ${json(op.patch)} over each device's desired configuration (null removes a key); a device is done when it reports it applied`;
    case 'command':
      return `Sends command ${op.name}${op.params && Object.keys(op.params).length ? ` with ${json(op.params)}` : ''} to each device${op.ttlS ? ` (waiting up to ${duration(op.ttlS * 1000)} for an offline device)` : ''}; a device is done when it answers`;
    case 'rotate-certificate':
      return "Asks each device's agent to renew its certificate now (command certs.renew); a device is done when it answers";
    case 'suspend':
      return 'Suspends each device: its session ends and it cannot connect until resumed';
    case 'resume':
      return 'Resumes each suspended device';
    case 'decommission':
      return 'Decommissions each device: its certificates are revoked and it is retired for good';
  }
}

/** The operation in a few words, for the list. */
export function operationLabel(op: JobOperation): string {
  switch (op.type) {
    case 'twin-patch':
      return `twin patch: ${Object.keys(op.patch).join(', ')}`;
    case 'command':
      return `command ${op.name}`;
    case 'rotate-certificate':
      return 'renew certificates';
    default:
      return op.type;
  }
}

/** 30000 → `30 s`, 600000 → `10 min`, 5400000 → `1.5 h`. */
export function duration(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 6000) / 10} min`;
  return `${Math.round(ms / 360_000) / 10} h`;
}

const hhmm = (minute: number) => `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;

export function pacingText(p: Job['pacing']): string {
  return `at most ${p.ratePerSecond} device${p.ratePerSecond === 1 ? '' : 's'} a second, ${p.maxConcurrent} waiting for an answer at once${p.window ? `, only between ${hhmm(p.window.startMinute)} and ${hhmm(p.window.endMinute)} UTC` : ''}`;
}

export const DEVICE_STATE_LABELS: Readonly<Record<JobDeviceState, string>> = {
  queued: 'queued',
  in_progress: 'in progress',
  succeeded: 'succeeded',
  failed: 'failed',
  timed_out: 'timed out',
  cancelled: 'cancelled',
};

export type JobAction = 'pause' | 'resume' | 'cancel';

/** What the API allows in each state: a running job pauses or cancels, a paused one resumes or cancels. */
export const JOB_ACTIONS: Readonly<Record<JobState, readonly JobAction[]>> = {
  running: ['pause', 'cancel'],
  paused: ['resume', 'cancel'],
  cancelled: [],
  aborted: [],
  completed: [],
};
