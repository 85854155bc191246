import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OtaJob, OtaState, RootKeySet } from '@bulwark/protocol';
import { writeFileDurable } from '../identity.js';

/**
 * What the agent keeps about firmware, in one file written atomically (temporary file,
 * fsync, rename, fsync of the directory), so that a power cut at any instant leaves either
 * the state before a transition or the state after it, never a mix. The A/B slot table, the
 * bootloader's try-once flag, the anti-rollback floors and the job in progress change
 * together in one write; that is what makes "exactly one committed version" hold.
 */

export type Slot = 'a' | 'b';

export interface SlotImage {
  readonly version: string;
  readonly securityVersion: number;
  /** Null for the factory image, which the agent never wrote or hashed. */
  readonly sha256: string | null;
  readonly size: number | null;
}

export interface JobRecord {
  readonly job: OtaJob;
  readonly state: OtaState;
  /** Bytes of the image held on the device while downloading. */
  readonly bytes?: number;
  readonly reason?: string;
  readonly detail?: string;
  /** The slot the image goes to (the one not committed when the job began). */
  readonly slot: Slot;
  /** The terminal status reached the platform (PUBACK); until then it is sent again on every connect. */
  readonly reported: boolean;
  /** What was verified and installed, recorded with the switch; a commit raises the floors from it (never from a later job message). */
  readonly verified?: { readonly version: string; readonly securityVersion: number; readonly sha256: string; readonly delegationVersion: number };
  /** While rebooting: the bootloader was told (switchTo returned), in the OS boot named here when the slot store can tell. */
  readonly switched?: boolean;
  readonly switchedInBoot?: string;
}

export interface OtaPersisted {
  readonly v: 1;
  readonly slots: Readonly<Record<Slot, SlotImage | null>>;
  /** The slot known good: the bootloader falls back to it. */
  readonly committed: Slot;
  /** Set by the switch: boot this slot, `boots` times so far, without committing it. */
  readonly trial: { readonly slot: Slot; readonly boots: number } | null;
  /** Releases below it are refused; raised only after a commit. */
  readonly minSecurityVersion: number;
  /** Highest release-key delegation version seen in a committed release; an older delegation is refused. */
  readonly delegationVersion: number;
  /** The newest root key set learnt through signed rotations (absent: the pinned one of the config). */
  readonly root?: RootKeySet;
  /** The latest issuedAt of a manifest that verified: metadata expiry is never judged at an earlier time, whatever the clock says. */
  readonly timeFloor?: number;
  /** Job ids cancelled (a late copy of one is answered cancelled, never started). */
  readonly cancelled?: readonly string[];
  /** Starts in a row on which the bootloader ran another slot than the committed one. */
  readonly mismatchBoots?: number;
  readonly job: JobRecord | null;
  /** Job ids already handled, newest last (a repeated job is not started twice). */
  readonly recentJobs: readonly string[];
}

export const RECENT_JOBS = 64;

export const otherSlot = (s: Slot): Slot => (s === 'a' ? 'b' : 'a');

/** The slot that runs: the trial slot while one is being tried, else the committed one. */
export const activeSlot = (s: OtaPersisted): Slot => s.trial?.slot ?? s.committed;

export function factoryState(factory: { version: string; securityVersion: number }): OtaPersisted {
  return {
    v: 1,
    slots: { a: { version: factory.version, securityVersion: factory.securityVersion, sha256: null, size: null }, b: null },
    committed: 'a',
    trial: null,
    minSecurityVersion: factory.securityVersion,
    delegationVersion: 0,
    job: null,
    recentJobs: [],
  };
}

/**
 * The bootloader's decision at start (U-Boot's bootcount, Mender's try-once): a trial slot
 * is booted at most `maxTrialBoots` times; past that it never became healthy (it crashed or
 * was cut off each time) and the device falls back to the committed slot. A device whose
 * bootloader says which slot it booted (`booted`) may have fallen back on its own already.
 */
export function bootSelect(s: OtaPersisted, maxTrialBoots: number, booted?: Slot): { readonly state: OtaPersisted; readonly fellBack: boolean } {
  if (!s.trial) return { state: s, fellBack: false };
  const boots = s.trial.boots + 1;
  const bootloaderFellBack = booted !== undefined && booted !== s.trial.slot;
  if (boots <= maxTrialBoots && !bootloaderFellBack) return { state: { ...s, trial: { slot: s.trial.slot, boots } }, fellBack: false };
  const detail = bootloaderFellBack ? `the bootloader started slot ${booted} instead of the new image in slot ${s.trial.slot}` : `the new image did not become healthy in ${maxTrialBoots} boots`;
  const job = s.job && s.job.slot === s.trial.slot ? { ...s.job, state: 'rolled-back' as const, reason: 'boot_failed', detail, reported: false } : s.job;
  return { state: { ...s, trial: null, job }, fellBack: true };
}

/** What a start does, decided from the state file and what the bootloader says. */
export type BootPlan =
  /** The switch into the trial, or the reboot after it, never happened (a cut, or the process restarted before the device did): finish it, count no boot. */
  | { readonly kind: 'finish-switch'; readonly state: OtaPersisted }
  /** The trial is over without becoming healthy: boot the committed slot, unless the bootloader already did. */
  | { readonly kind: 'fell-back'; readonly state: OtaPersisted }
  /** No trial, yet the bootloader started another slot (a revert or a commit cut before it was told): tell it again and reboot. */
  | { readonly kind: 'realign'; readonly state: OtaPersisted }
  /** As 'realign', but it kept doing so: stop rebooting and say so. */
  | { readonly kind: 'stuck'; readonly state: OtaPersisted }
  | { readonly kind: 'run'; readonly state: OtaPersisted };

export const MAX_REALIGN_BOOTS = 3;

export function bootPlan(s: OtaPersisted, maxTrialBoots: number, booted?: Slot, bootId?: string): BootPlan {
  const rec = s.job;
  if (s.trial && rec?.state === 'rebooting' && (!rec.switched || (rec.switchedInBoot !== undefined && rec.switchedInBoot === bootId))) return { kind: 'finish-switch', state: s };
  if (!s.trial && booted !== undefined && booted !== s.committed) {
    const n = (s.mismatchBoots ?? 0) + 1;
    return { kind: n > MAX_REALIGN_BOOTS ? 'stuck' : 'realign', state: { ...s, mismatchBoots: n } };
  }
  const sel = bootSelect(s, maxTrialBoots, booted);
  let state: OtaPersisted = s.mismatchBoots ? { ...sel.state, mismatchBoots: 0 } : sel.state;
  if (state.trial && state.job?.state === 'rebooting') state = { ...state, job: { ...state.job, state: 'verifying-health', reported: false } };
  return { kind: sel.fellBack ? 'fell-back' : 'run', state };
}

/** The job at its end: progress and old reasons dropped. */
export function settled(rec: JobRecord, state: 'committed' | 'rolled-back' | 'failed', reason?: string, detail?: string): JobRecord {
  const { reason: _r, detail: _d, bytes: _b, ...rest } = rec;
  return { ...rest, state, reported: false, ...(reason ? { reason } : {}), ...(detail ? { detail } : {}) };
}

export class OtaStateFile {
  readonly path: string;

  constructor(dir: string) {
    this.path = join(dir, 'state.json');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  load(): OtaPersisted | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const s = JSON.parse(text) as OtaPersisted;
    if (s.v !== 1 || (s.committed !== 'a' && s.committed !== 'b')) throw new Error(`${this.path}: not an OTA state file of version 1`);
    return s;
  }

  save(s: OtaPersisted): void {
    writeFileDurable(this.path, JSON.stringify(s), 0o600);
  }
}
