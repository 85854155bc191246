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
 * A factory image verifies once its release's signed manifest is placed there; until then it
 * reports `no_manifest` (a warning). An image installed over the air whose manifest is gone
 * reports `manifest_missing` (a failure): deleting the manifest must not soften a swapped image.
 */

// The contract refuses control characters (an error message can quote the bytes it choked on): they become spaces.
// eslint-disable-next-line no-control-regex
const oneLine = (text: string, max: number) => text.replace(/[\u0000-\u001F\u007F]/g, ' ').slice(0, max);
const unverified = (slot: Slot, reason: string, detail: string): BootPosture => ({ slot, verified: false, reason: oneLine(reason, 64), detail: oneLine(detail, 256) });

export async function verifyRunningSlot(opts: Pick<UpdaterOptions, 'dir' | 'root' | 'device'>, state: OtaPersisted, slots: SlotStore): Promise<BootPosture> {
  const slot = activeSlot(state);
  const recorded = state.slots[slot];
  // Only a factory image (no digest recorded: it never came through an update) may lack a manifest;
  // an image installed over the air had one kept before its switch, so a missing one fails.
  const factory = recorded?.sha256 === null;
  let manifest: unknown;
  try {
    manifest = JSON.parse(await readFile(manifestPath(opts.dir, slot), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return unverified(slot, 'malformed', `the manifest kept for slot ${slot} does not read: ${String(err)}`);
    return factory ? unverified(slot, 'no_manifest', `no signed manifest kept for slot ${slot}`) : unverified(slot, 'manifest_missing', `the signed manifest of the image installed in slot ${slot} is gone`);
  }
  // Authenticity, not freshness: the manifest is judged at the time it was issued, so an image keeps verifying after its metadata expires.
  const issuedAt = (manifest as { release?: { signed?: { issuedAt?: unknown } } } | null)?.release?.signed?.issuedAt;
  const verdict = verifyFirmware(manifest, {
    root: trustedRoot(state, opts.root),
    now: typeof issuedAt === 'number' ? issuedAt : 0,
    minSecurityVersion: state.minSecurityVersion,
    device: opts.device,
  });
  if (!verdict.ok) return unverified(slot, verdict.reason, verdict.detail);
  // A factory image has no recorded digest to compare; checkImage below hashes the slot against the manifest either way.
  if (!factory && recorded?.sha256 !== verdict.release.sha256) return unverified(slot, 'manifest_mismatch', `the manifest kept for slot ${slot} names another image than the one installed there`);
  const refused = checkImage(verdict.release, await slots.digest(slot, verdict.release.size));
  if (refused && !refused.ok) return unverified(slot, refused.reason, refused.detail);
  return { slot, verified: true };
}
