import { type FirmwarePublicKey, type RootKeySet, type Signed, signFirmwareBody } from './firmware.js';
import { keyIdOf, validSigners } from './firmware-signatures.js';

/**
 * Rotating the root key set (TUF's root rotation): version N+1 of the root is signed by at
 * least the threshold of the keys trusted at version N and by at least its own threshold of
 * its own keys. A device pinned to version 1 walks the chain a manifest carries and then
 * trusts the newest version, so compromised or lost root keys can be replaced without
 * touching each device; once a device trusts version N+1, a delegation signed only by the
 * keys of version N no longer meets the threshold.
 */

export interface RootRotationBody {
  readonly type: 'root-rotation';
  /** 2 for the first rotation, then one more each time. */
  readonly version: number;
  readonly threshold: number;
  readonly keys: readonly FirmwarePublicKey[];
}

export const MAX_ROOT_ROTATIONS = 16;

/** The version of a trusted root key set; a pinned set without one is version 1. */
export const rootVersion = (root: RootKeySet): number => root.version ?? 1;

export type RootWalk = { readonly ok: true; readonly root: RootKeySet } | { readonly ok: false; readonly detail: string };

/** Follows `rotations` (oldest first) from `root`; versions already trusted are skipped, a gap or a missing signature ends the walk with a refusal. */
export function walkRootChain(root: RootKeySet, rotations: readonly Signed<RootRotationBody>[] | undefined): RootWalk {
  let current = root;
  for (const r of rotations ?? []) {
    const v = r.signed.version;
    if (v <= rootVersion(current)) continue;
    if (v !== rootVersion(current) + 1) return { ok: false, detail: `root rotation to version ${v} does not follow the trusted version ${rootVersion(current)}` };
    const byOld = validSigners(r, current.keys).size;
    if (byOld < current.threshold) return { ok: false, detail: `root rotation to version ${v} is signed by ${byOld} of the ${current.threshold} keys of version ${rootVersion(current)} it needs` };
    const byNew = validSigners(r, r.signed.keys).size;
    if (byNew < r.signed.threshold) return { ok: false, detail: `root rotation to version ${v} is signed by ${byNew} of the ${r.signed.threshold} of its own keys it needs` };
    current = { type: 'root', version: v, threshold: r.signed.threshold, keys: r.signed.keys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey })) };
  }
  return { ok: true, root: current };
}

/** Signs a rotation from `current` to a new key set: with the old keys at hand and the new ones (each holder signs once). */
export function rotateRoot(current: RootKeySet, next: { readonly threshold: number; readonly keys: readonly FirmwarePublicKey[] }, privateKeysPem: readonly string[]): Signed<RootRotationBody> {
  if (!Number.isSafeInteger(next.threshold) || next.threshold < 1 || next.threshold > next.keys.length) throw new RangeError(`threshold must be 1..${next.keys.length}`);
  if (new Set(next.keys.map((k) => k.keyId)).size !== next.keys.length) throw new RangeError('a root key is listed twice');
  const signed: RootRotationBody = { type: 'root-rotation', version: rootVersion(current) + 1, threshold: next.threshold, keys: next.keys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey })) };
  return { signed, signatures: privateKeysPem.map((pem) => signFirmwareBody(signed, pem)) };
}

/** The root key set a rotation makes trusted (what devices and the platform pin from then on). */
export function rootAfter(rotation: Signed<RootRotationBody>): RootKeySet {
  return { type: 'root', version: rotation.signed.version, threshold: rotation.signed.threshold, keys: rotation.signed.keys };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const HEX64 = /^[0-9a-f]{64}$/;

/** Shape of a manifest's `rootRotations` (signatures are checked by the walk). */
export function rotationsProblem(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length > MAX_ROOT_ROTATIONS) return `rootRotations must be a list of at most ${MAX_ROOT_ROTATIONS}`;
  for (const r of value) {
    if (!isObj(r) || !isObj(r.signed) || !Array.isArray(r.signatures) || r.signatures.length > 16) return 'a root rotation is not {signed, signatures}';
    if (!r.signatures.every((s) => isObj(s) && typeof s.keyId === 'string' && typeof s.sig === 'string' && s.sig.length <= 128)) return 'a root rotation signature is not {keyId, sig}';
    const b = r.signed;
    if (b.type !== 'root-rotation' || !Number.isSafeInteger(b.version) || (b.version as number) < 2 || !Number.isSafeInteger(b.threshold) || (b.threshold as number) < 1)
      return 'a root rotation must be {type: "root-rotation", version ≥ 2, threshold ≥ 1, keys}';
    if (!Array.isArray(b.keys) || b.keys.length === 0 || b.keys.length > 16 || (b.threshold as number) > b.keys.length) return 'a root rotation lists 1-16 keys, at least its threshold';
    if (!b.keys.every((k) => isObj(k) && typeof k.keyId === 'string' && HEX64.test(k.keyId) && typeof k.publicKey === 'string' && k.publicKey.length <= 64 && keyIdOf(k.publicKey) === k.keyId))
      return 'a root rotation key is not {keyId, publicKey} with keyId = SHA-256 of the key';
    if (new Set(b.keys.map((k) => (k as { keyId: string }).keyId)).size !== b.keys.length) return 'a root rotation lists a key twice';
  }
  return undefined;
}
