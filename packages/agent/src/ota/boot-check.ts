import { readFile } from 'node:fs/promises';
import { type BootPosture, checkImage, verifyFirmware } from '@bulwark/protocol';
import { type SlotStore, manifestPath } from './slots.js';
import { type OtaPersisted, type Slot, activeSlot } from './state.js';
import { trustedRoot } from './steps.js';
import type { UpdaterOptions } from './updater-types.js';

/**
 * Verified boot, emulated for A/B slots: the signed manifest of each installed image is kept
 * beside the slots (`slot-a.manifest.json`), and at every start the image of the running slot
 * is checked against it with the same verifier an update goes through (signatures up to the
 * pinned root, hardware, security floor) and its size and SHA-256 read back from the slot.
 * A factory image verifies once its release's signed manifest is placed there.
 */

const unverified = (slot: Slot, reason: string, detail: string): BootPosture => ({ slot, verified: false, reason: reason.slice(0, 64), detail: detail.slice(0, 256) });

export async function verifyRunningSlot(opts: Pick<UpdaterOptions, 'dir' | 'root' | 'device'>, state: OtaPersisted, slots: SlotStore): Promise<BootPosture> {
  const slot = activeSlot(state);
  let manifest: unknown;
  try {
    manifest = JSON.parse(await readFile(manifestPath(opts.dir, slot), 'utf8'));
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    return unverified(slot, missing ? 'no_manifest' : 'malformed', missing ? `no signed manifest kept for slot ${slot}` : `the manifest kept for slot ${slot} does not read: ${String(err)}`);
  }
  // Authenticity, not freshness: the manifest is judged at the time it was issued, so an image keeps verifying after its metadata expires.
  const issuedAt = (manifest as { release?: { signed?: { issuedAt?: unknown } } } | null)?.release?.signed?.issuedAt;
  const verdict = verifyFirmware(manifest, {
    root: trustedRoot(state, opts.root), now: typeof issuedAt === 'number' ? issuedAt : 0, minSecurityVersion: state.minSecurityVersion, device: opts.device,
  });
  if (!verdict.ok) return unverified(slot, verdict.reason, verdict.detail);
  const recorded = state.slots[slot];
  if (recorded?.sha256 !== verdict.release.sha256) return unverified(slot, 'manifest_mismatch', `the manifest kept for slot ${slot} names another image than the one installed there`);
  const refused = checkImage(verdict.release, await slots.digest(slot, verdict.release.size));
  if (refused && !refused.ok) return unverified(slot, refused.reason, refused.detail);
  return { slot, verified: true };
}
