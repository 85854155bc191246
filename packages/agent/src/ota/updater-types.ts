import type { OtaState, OtaStatus, RootKeySet } from '@bulwark/protocol';
import type { AgentLogger } from '../logs.js';
import type { FirmwareFetcher } from './download.js';
import type { SlotStore } from './slots.js';

/** What the updater is given and what it says (updater.ts). */

export interface UpdaterOptions {
  /** Holds state.json and the image being downloaded. */
  readonly dir: string;
  /** The pinned root key set: the only trust anchor for firmware. */
  readonly root: RootKeySet;
  readonly device: { readonly model: string; readonly hardwareRevision: string };
  /** What slot A holds on a device that never updated. */
  readonly factory: { readonly version: string; readonly securityVersion: number };
  readonly maxTrialBoots: number;
  /** A new image must connect and report healthy within this long after it boots, or it is reverted. */
  readonly healthWindowMs: number;
  readonly downloadRetries: number;
}

export type UpdaterEvent =
  { readonly type: 'state'; readonly jobId: string; readonly state: OtaState; readonly reason?: string } | { readonly type: 'progress'; readonly jobId: string; readonly state: 'downloading' | 'installing'; readonly done: number; readonly total: number };

export interface UpdaterDeps {
  readonly fetcher: FirmwareFetcher;
  readonly slots: SlotStore;
  /** Best estimate of the platform's time: metadata expiry is judged against it. */
  readonly now: () => number;
  /** Sends a status on `devices/{id}/ota/status`; resolves true once the platform has it (PUBACK). */
  readonly report: (s: OtaStatus) => Promise<boolean>;
  /** Restarts the device so that it boots the active slot. */
  readonly reboot: () => void | Promise<void>;
  /** The application's own verdict on a new image, asked once it has connected and reported (default: healthy). */
  readonly healthCheck?: () => boolean | Promise<boolean>;
  readonly log: Pick<AgentLogger, 'info' | 'warn' | 'error'>;
  readonly onEvent?: (e: UpdaterEvent) => void;
  /** Timer for the health window (injectable for simulated fleets); returns a cancel function. */
  readonly schedule?: (ms: number, fn: () => void) => () => void;
  readonly retryDelayMs?: (attempt: number) => number;
}
