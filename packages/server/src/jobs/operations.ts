import { PlatformError } from '@bulwark/core';
import { BUILTIN_COMMANDS } from '@bulwark/protocol';
import type { JobDeviceEnd, JobOperation, LiveJobDevice } from './jobs.js';

/** What a job needs of the other contexts to act on one device. */
export interface JobTargets {
  /** Merges `patch` over the desired configuration; resolves with the new desired version. */
  patchDesired(deviceId: string, patch: Readonly<Record<string, unknown>>, by: string): Promise<number>;
  /** Records and sends a command; resolves with its id. */
  command(deviceId: string, name: string, params: Readonly<Record<string, unknown>>, o: { actor: string; ttlS?: number }): Promise<string>;
  suspend(deviceId: string): Promise<void>;
  resume(deviceId: string): Promise<void>;
  decommission(deviceId: string, by: string): Promise<void>;
}

/** How a device's answer ends its entry. */
export interface Outcome {
  readonly state: 'succeeded' | 'failed';
  readonly reason: string | null;
  readonly detail: string | null;
}

/** A dispatch either waits for the device (ref: what it made) or is already over. */
export type Dispatched = { readonly ref: string } | { readonly end: Omit<JobDeviceEnd, 'at'> };

const done = (): Dispatched => ({ end: { state: 'succeeded', reason: null, detail: null } });

/** Acts on one device; an error the platform names (device decommissioned, rate limited, ...) ends the entry as failed with that reason. */
export async function dispatch(op: JobOperation, deviceId: string, actor: string, t: JobTargets): Promise<Dispatched> {
  try {
    switch (op.type) {
      case 'twin-patch':
        return { ref: String(await t.patchDesired(deviceId, op.patch, actor)) };
      case 'command':
        return { ref: await t.command(deviceId, op.name, op.params, { actor, ...(op.ttlS !== undefined ? { ttlS: op.ttlS } : {}) }) };
      case 'rotate-certificate':
        return { ref: await t.command(deviceId, BUILTIN_COMMANDS.certsRenew, {}, { actor }) };
      case 'suspend':
        await t.suspend(deviceId);
        return done();
      case 'resume':
        await t.resume(deviceId);
        return done();
      case 'decommission':
        await t.decommission(deviceId, actor);
        return done();
    }
  } catch (err) {
    if (!(err instanceof PlatformError)) throw err;
    return { end: { state: 'failed', reason: reasonOf(err.code), detail: err.message.slice(0, 512) } };
  }
}

/** `BULWARK_ERR_DEVICE_OFFLINE` → `device_offline`: the stable reason a summary groups by. */
export function reasonOf(code: string): string {
  return code.replace(/^BULWARK_ERR_/, '').toLowerCase();
}

/** A twin report from the device: how it ends the entry waiting for desired version `ref`, if it does. */
export function twinOutcome(entry: LiveJobDevice, report: { version: number; status: string; reason: string | null; detail: string | null }): Outcome | undefined {
  if (entry.operation !== 'twin-patch' || entry.state !== 'in_progress' || entry.ref === null) return undefined;
  const wanted = Number(entry.ref);
  // A later version applied carries this patch too (each patch merges over the last).
  if (report.status === 'applied' && report.version >= wanted) return { state: 'succeeded', reason: null, detail: null };
  if (report.status === 'rejected' && report.version === wanted) return { state: 'failed', reason: report.reason ?? 'rejected', detail: report.detail };
  return undefined;
}

/** A command result from the device: how it ends the entry that issued command `ref`, if it does. */
export function commandOutcome(entry: LiveJobDevice, result: { commandId: string; status: string; reason: string | null; detail: string | null }): Outcome | undefined {
  if ((entry.operation !== 'command' && entry.operation !== 'rotate-certificate') || entry.state !== 'in_progress' || entry.ref !== result.commandId) return undefined;
  if (result.status === 'succeeded') return { state: 'succeeded', reason: null, detail: null };
  if (result.status === 'failed' || result.status === 'rejected') return { state: 'failed', reason: result.reason ?? result.status, detail: result.detail };
  return undefined;
}
