import { unlink } from 'node:fs/promises';
import { type FirmwareVerdict, type OtaState, type RootKeySet, checkImage, rootVersion, verifyFirmware } from '@bulwark/protocol';
import { DownloadError, downloadImage } from './download.js';
import { digestFile, saveSlotManifest } from './slots.js';
import { type JobRecord, type OtaPersisted, type SlotImage, activeSlot } from './state.js';
import type { UpdaterDeps, UpdaterOptions } from './updater-types.js';

/**
 * The device side of an update, as ordered steps (like the ingest pipeline and the rollout
 * phases): each step does the work of one state and names the next. The updater persists
 * every transition before it acts on it, so a step may be cut at any instant and is simply
 * run again after the restart: each one is idempotent.
 *
 *   queued ─check metadata─▶ downloading ─resume with Range─▶ verifying ─hash, size─▶
 *   installing ─inactive slot─▶ rebooting ─try once─▶ verifying-health ─▶ committed | rolled-back
 *   (any refusal ─▶ failed)
 */

export interface StepContext {
  readonly rec: JobRecord;
  readonly state: OtaPersisted;
  readonly opts: UpdaterOptions;
  readonly deps: UpdaterDeps;
  readonly downloadFile: string;
  readonly signal: AbortSignal;
  progress(state: 'downloading' | 'installing', done: number): void;
}

/** What a verified manifest teaches the device for good: a newer root its rotations proved, and a later time floor. */
export interface Learnt {
  readonly root?: RootKeySet;
  readonly issuedAt?: number;
}

export type Outcome =
  | ({ readonly next: 'downloading' | 'verifying' | 'installing' } & Learnt)
  | { readonly next: 'rebooting'; readonly image: SlotImage; readonly delegationVersion: number }
  /** The release already runs (a repeated job after a restart or a platform retry). */
  | ({ readonly next: 'committed' } & Learnt)
  | { readonly next: 'failed'; readonly reason: string; readonly detail: string };

type Step = (c: StepContext) => Promise<Outcome>;

const fail = (reason: string, detail: string): Outcome => ({ next: 'failed', reason, detail });

/** The newest root this device trusts: the pinned one, or one learnt through rotations since. */
export const trustedRoot = (state: OtaPersisted, pinned: RootKeySet): RootKeySet => (state.root && rootVersion(state.root) > rootVersion(pinned) ? state.root : pinned);

/** Root-pinned signatures, expiry (never before the time floor), hardware, security version, installed version and the delegation floor. */
export function verifyJobManifest(c: Pick<StepContext, 'rec' | 'state' | 'opts' | 'deps'>): FirmwareVerdict {
  const running = c.state.slots[activeSlot(c.state)];
  const verdict = verifyFirmware(c.rec.job.manifest, {
    root: trustedRoot(c.state, c.opts.root),
    now: Math.max(c.deps.now(), c.state.timeFloor ?? 0),
    minSecurityVersion: c.state.minSecurityVersion,
    device: c.opts.device,
    ...(running ? { installedVersion: running.version } : {}),
  });
  if (!verdict.ok) return verdict;
  const delegation = c.rec.job.manifest.delegation.signed.version;
  if (delegation < c.state.delegationVersion) {
    return { ok: false, reason: 'rollback', detail: `release-key delegation ${delegation} is older than ${c.state.delegationVersion}, the newest this device committed` };
  }
  return verdict;
}

const checkMetadata: Step = async (c) => {
  const v = verifyJobManifest(c);
  if (!v.ok) return fail(v.reason, v.detail);
  const running = c.state.slots[c.state.committed];
  // A root rotation is trust, not firmware: it holds from the moment it verifies, so that keys it retired never sign again for this device.
  const learnt: Learnt = { issuedAt: v.release.issuedAt, ...(rootVersion(v.root) > rootVersion(trustedRoot(c.state, c.opts.root)) ? { root: v.root } : {}) };
  if (running?.sha256 === v.release.sha256 && running.version === v.release.version) return { next: 'committed', ...learnt };
  return { next: 'downloading', ...learnt };
};

const download: Step = async (c) => {
  const v = verifyJobManifest(c);
  if (!v.ok) return fail(v.reason, v.detail);
  try {
    const out = await downloadImage({
      path: c.rec.job.url,
      file: c.downloadFile,
      size: v.release.size,
      sha256: v.release.sha256,
      fetcher: c.deps.fetcher,
      signal: c.signal,
      retries: c.opts.downloadRetries,
      retryDelayMs: c.deps.retryDelayMs ?? ((n) => Math.min(30_000, 500 * 2 ** n)),
      onProgress: (b) => c.progress('downloading', b),
    });
    if (out.tooLong) return fail('image_too_long', `the server sent more than the declared ${v.release.size} bytes`);
    return { next: 'verifying' };
  } catch (err) {
    if (c.signal.aborted) throw err;
    return fail('download_failed', err instanceof DownloadError ? err.message : String(err));
  }
};

const verify: Step = async (c) => {
  const v = verifyJobManifest(c);
  if (!v.ok) return fail(v.reason, v.detail);
  const known = (sha256: string) => (['a', 'b'] as const).map((s) => c.state.slots[s]).find((img) => img?.sha256 === sha256);
  const refused = checkImage(v.release, await digestFile(c.downloadFile, v.release.size), (sha) => {
    const img = known(sha);
    return img ? `the image of version ${img.version}` : undefined;
  });
  if (refused && !refused.ok) {
    await unlink(c.downloadFile).catch(() => undefined);
    return fail(refused.reason, refused.detail);
  }
  return { next: 'installing' };
};

const install: Step = async (c) => {
  const v = verifyJobManifest(c);
  if (!v.ok) return fail(v.reason, v.detail);
  const r = v.release;
  await c.deps.slots.write(c.rec.slot, c.downloadFile, r.size, (done) => c.progress('installing', done));
  const written = await c.deps.slots.digest(c.rec.slot, r.size);
  if (written.sha256 !== r.sha256 || written.size !== r.size || written.tooLong) return fail('install_failed', `slot ${c.rec.slot} reads back ${written.size} bytes with another SHA-256`);
  // Verified boot checks the slot's image against this manifest at every start.
  await saveSlotManifest(c.opts.dir, c.rec.slot, c.rec.job.manifest);
  return { next: 'rebooting', image: { version: r.version, securityVersion: r.securityVersion, sha256: r.sha256, size: r.size }, delegationVersion: c.rec.job.manifest.delegation.signed.version };
};

/** The work of each state that has work; `rebooting` and `verifying-health` are driven by the updater (switch, boot, health). */
export const STEPS: Readonly<Partial<Record<OtaState, Step>>> = {
  queued: checkMetadata,
  downloading: download,
  verifying: verify,
  installing: install,
};

/** The time floor and root a verified manifest taught, as state fields (floors only rise). */
export function learntFrom(s: OtaPersisted, o: Learnt): Partial<Pick<OtaPersisted, 'root' | 'timeFloor'>> {
  return {
    ...(o.issuedAt !== undefined && o.issuedAt > (s.timeFloor ?? 0) ? { timeFloor: o.issuedAt } : {}),
    ...(o.root ? { root: o.root } : {}),
  };
}
