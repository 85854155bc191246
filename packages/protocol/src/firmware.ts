/**
 * Signed firmware metadata (DESIGN.md §5, issue 6), shared by the platform and the agent.
 *
 *   root key set (pinned: offline Ed25519 keys + threshold)
 *     └─ signs, with at least `threshold` distinct keys ─▶ release-key delegation
 *          └─ a delegated key signs ─▶ release metadata (name, version, securityVersion,
 *                                        hardware, size, sha256, expires)
 *
 * Signatures are Ed25519 over the UTF-8 of canonicalJson(signed) (see canonical-json.ts
 * and docs/decisions/0011-firmware-metadata.md). A key's id is the SHA-256 of its raw 32-byte
 * public key, in hex, so no signer can claim another key's id.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import { compareSemver, isSemver } from './semver.js';
import { keyIdOf, validSigners } from './firmware-signatures.js';
import { type RootRotationBody, walkRootChain, rotationsProblem } from './root-rotation.js';

export { canonicalJson } from './canonical-json.js';
export { compareSemver, isSemver } from './semver.js';
export * from './firmware-sign.js';
export { keyIdOf } from './firmware-signatures.js';
export * from './root-rotation.js';

export const FIRMWARE_FORMAT = 'bulwark-firmware/1';

export interface FirmwarePublicKey {
  /** Hex SHA-256 of the raw public key. */
  readonly keyId: string;
  /** Raw 32-byte Ed25519 public key, base64. */
  readonly publicKey: string;
}

/** The pinned trust anchor: kept on every device and in the platform's configuration, never sent in metadata. */
export interface RootKeySet {
  readonly type: 'root';
  /** 1 when absent; raised by each signed rotation (root-rotation.ts). */
  readonly version?: number;
  readonly threshold: number;
  readonly keys: readonly FirmwarePublicKey[];
}

export interface FirmwareSignature {
  readonly keyId: string;
  /** Ed25519 signature, base64. */
  readonly sig: string;
}

export interface Signed<T> {
  readonly signed: T;
  readonly signatures: readonly FirmwareSignature[];
}

export interface ReleaseKeyDelegationBody {
  readonly type: 'release-keys';
  /** Counter of delegations, raised on every key rotation. */
  readonly version: number;
  /** Milliseconds since the epoch after which the delegation is void. */
  readonly expires: number;
  readonly keys: readonly FirmwarePublicKey[];
}

export interface HardwareCompatibility {
  readonly model: string;
  /** The hardware revisions of `model` the image runs on; at least one. */
  readonly hardwareRevisions: readonly string[];
}

export interface ReleaseBody {
  readonly type: 'release';
  readonly name: string;
  /** Semantic version (semver.org). */
  readonly version: string;
  /** Monotonic: a device never installs a release below the highest it committed. */
  readonly securityVersion: number;
  readonly hardware: HardwareCompatibility;
  readonly size: number;
  /** Hex SHA-256 of the image. */
  readonly sha256: string;
  readonly issuedAt: number;
  readonly expires: number;
}

/** What travels with an image: the delegation that makes the release key trusted, and the release. */
export interface FirmwareManifest {
  readonly format: typeof FIRMWARE_FORMAT;
  /** Root rotations since version 1, oldest first, for verifiers pinned to an older root. */
  readonly rootRotations?: readonly Signed<RootRotationBody>[];
  readonly delegation: Signed<ReleaseKeyDelegationBody>;
  readonly release: Signed<ReleaseBody>;
}

/** Every reason a manifest or an image is refused; each names one attack or defect. */
export const FIRMWARE_REFUSALS = [
  'malformed',
  'unsigned',
  'root_threshold_not_met',
  'delegation_expired',
  'untrusted_key',
  'bad_signature',
  'expired',
  'rollback',
  'downgrade',
  'wrong_hardware',
  'image_too_long',
  'image_size_mismatch',
  'image_hash_mismatch',
  'mix_and_match',
  'root_rotation_invalid',
] as const;
export type FirmwareRefusal = (typeof FIRMWARE_REFUSALS)[number];

export type FirmwareVerdict =
  | { readonly ok: true; readonly release: ReleaseBody; readonly releaseKeyId: string; /** The newest root trusted after the manifest's rotations (the one passed in when it carries none). */ readonly root: RootKeySet }
  | { readonly ok: false; readonly reason: FirmwareRefusal; readonly detail: string };

export interface VerifyContext {
  readonly root: RootKeySet;
  readonly now: number;
  /** Releases below this security version are refused (device: its stored minimum; platform: the fleet minimum). */
  readonly minSecurityVersion?: number;
  /** The version installed now; an older release is refused. */
  readonly installedVersion?: string;
  readonly device?: { readonly model: string | null; readonly hardwareRevision: string | null };
}

const refuse = (reason: FirmwareRefusal, detail: string): FirmwareVerdict => ({ ok: false, reason, detail });
const HEX64 = /^[0-9a-f]{64}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Verifies a manifest (not the image: see FirmwareDigest and checkImage). Pure: no I/O, time comes from `ctx.now`. */
export function verifyFirmware(manifest: unknown, ctx: VerifyContext): FirmwareVerdict {
  const shape = manifestProblem(manifest);
  if (shape) return refuse('malformed', shape);
  const m = manifest as FirmwareManifest;
  const { delegation, release } = m;
  const walk = walkRootChain(ctx.root, m.rootRotations);
  if (!walk.ok) return refuse('root_rotation_invalid', walk.detail);
  const root = walk.root;

  if (delegation.signatures.length === 0) return refuse('unsigned', 'the release-key delegation carries no signature');
  const rootSigners = validSigners(delegation, root.keys);
  if (rootSigners.size < root.threshold) {
    return refuse('root_threshold_not_met', `the delegation is signed by ${rootSigners.size} of the ${root.threshold} keys of root version ${root.version ?? 1} it needs`);
  }
  if (delegation.signed.expires <= ctx.now) return refuse('delegation_expired', `the release-key delegation expired at ${new Date(delegation.signed.expires).toISOString()}`);

  if (release.signatures.length === 0) return refuse('unsigned', 'the release metadata carries no signature');
  const delegated = new Map(delegation.signed.keys.map((k) => [k.keyId, k]));
  if (!release.signatures.some((s) => delegated.has(s.keyId))) {
    return refuse('untrusted_key', `signed by ${release.signatures.map((s) => s.keyId.slice(0, 16)).join(', ')}, none of them a delegated release key`);
  }
  const [signer] = validSigners(release, delegation.signed.keys);
  if (signer === undefined) return refuse('bad_signature', 'the signature of the delegated release key does not verify over this metadata');

  const r = release.signed;
  if (r.expires <= ctx.now) return refuse('expired', `the release metadata expired at ${new Date(r.expires).toISOString()} (replayed or stale metadata)`);
  if (ctx.minSecurityVersion !== undefined && r.securityVersion < ctx.minSecurityVersion) {
    return refuse('rollback', `security version ${r.securityVersion} is below the minimum ${ctx.minSecurityVersion}`);
  }
  if (ctx.installedVersion !== undefined && isSemver(ctx.installedVersion) && compareSemver(r.version, ctx.installedVersion) < 0) {
    return refuse('downgrade', `version ${r.version} is older than the installed ${ctx.installedVersion}`);
  }
  if (ctx.device && (ctx.device.model !== r.hardware.model || ctx.device.hardwareRevision === null || !r.hardware.hardwareRevisions.includes(ctx.device.hardwareRevision))) {
    return refuse('wrong_hardware', `built for ${r.hardware.model} rev ${r.hardware.hardwareRevisions.join('/')}, not ${ctx.device.model ?? '?'} rev ${ctx.device.hardwareRevision ?? '?'}`);
  }
  return { ok: true, release: r, releaseKeyId: signer, root };
}

// ---- shape ---------------------------------------------------------------------------

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown, min = 0): v is number => Number.isSafeInteger(v) && (v as number) >= min;
const isStr = (v: unknown, max = 256): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
const keyProblem = (k: unknown) => (isObj(k) && isStr(k.keyId) && HEX64.test(k.keyId) && isStr(k.publicKey, 64) ? undefined : 'a key is not {keyId, publicKey}');

function signedProblem(doc: unknown, what: string): string | undefined {
  if (!isObj(doc) || !isObj(doc.signed) || !Array.isArray(doc.signatures)) return `${what} is not {signed, signatures}`;
  if (doc.signatures.length > 16) return `${what} carries more than 16 signatures`;
  if (!doc.signatures.every((s) => isObj(s) && isStr(s.keyId) && isStr(s.sig, 128))) return `${what}: a signature is not {keyId, sig}`;
  try {
    canonicalJson(doc.signed);
  } catch (err) {
    return `${what}: ${(err as Error).message}`;
  }
  return undefined;
}

export function manifestProblem(m: unknown): string | undefined {
  if (!isObj(m) || m.format !== FIRMWARE_FORMAT) return `not a ${FIRMWARE_FORMAT} manifest`;
  const p = signedProblem(m.delegation, 'delegation') ?? signedProblem(m.release, 'release') ?? rotationsProblem(m.rootRotations);
  if (p) return p;
  const d = (m.delegation as Signed<Record<string, unknown>>).signed;
  if (d.type !== 'release-keys' || !isInt(d.version) || !isInt(d.expires) || !Array.isArray(d.keys) || d.keys.length === 0 || d.keys.length > 16) {
    return 'delegation.signed must be {type: "release-keys", version, expires, keys[1..16]}';
  }
  const kp = d.keys.map(keyProblem).find(Boolean);
  if (kp) return `delegation: ${kp}`;
  const r = (m.release as Signed<Record<string, unknown>>).signed;
  if (r.type !== 'release') return 'release.signed.type must be "release"';
  if (!isStr(r.name, 64) || !NAME.test(r.name)) return 'release.name must be 1-64 letters, digits, ".", "_" or "-"';
  if (!isStr(r.version, 64) || !isSemver(r.version)) return 'release.version must be a semantic version';
  if (!isInt(r.securityVersion)) return 'release.securityVersion must be a non-negative integer';
  const hw = r.hardware;
  if (!isObj(hw) || !isStr(hw.model, 128) || !Array.isArray(hw.hardwareRevisions) || hw.hardwareRevisions.length === 0 || !hw.hardwareRevisions.every((x) => isStr(x, 128))) {
    return 'release.hardware must be {model, hardwareRevisions[1..]}';
  }
  if (!isInt(r.size, 1)) return 'release.size must be a positive integer';
  if (!isStr(r.sha256) || !HEX64.test(r.sha256)) return 'release.sha256 must be 64 lowercase hex characters';
  if (!isInt(r.issuedAt) || !isInt(r.expires)) return 'release.issuedAt and release.expires must be times in ms';
  return undefined;
}

// ---- keys and signing (CLI, tests; the platform and the agent only verify) -------------

export interface FirmwareKeyPair extends FirmwarePublicKey {
  /** PKCS#8 PEM; belongs offline (root keys) or in the release pipeline (release keys). */
  readonly privateKeyPem: string;
}

export function generateFirmwareKey(): FirmwareKeyPair {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { ...publicKeyOf(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()), privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

export function publicKeyOf(privateKeyPem: string): FirmwarePublicKey {
  const jwk = createPublicKey(createPrivateKey(privateKeyPem)).export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new TypeError('not an Ed25519 private key');
  const publicKey = Buffer.from(jwk.x, 'base64url').toString('base64');
  return { keyId: keyIdOf(publicKey), publicKey };
}

/** Signs canonicalJson(body) with one key. */
export function signFirmwareBody(body: unknown, privateKeyPem: string): FirmwareSignature {
  const { keyId } = publicKeyOf(privateKeyPem);
  return { keyId, sig: sign(null, Buffer.from(canonicalJson(body)), createPrivateKey(privateKeyPem)).toString('base64') };
}

// ---- the image ---------------------------------------------------------------------------

/**
 * Streaming SHA-256 of an image that stops at the declared size: bytes past it are never
 * hashed or kept, and the result says the stream was too long (endless-data attack).
 */
export class FirmwareDigest {
  readonly #hash = createHash('sha256');
  #size = 0;
  #tooLong = false;

  constructor(readonly declaredSize: number) {}

  /** Feeds a chunk; false once the stream has passed the declared size (stop reading). */
  update(chunk: Uint8Array): boolean {
    if (this.#tooLong) return false;
    const room = this.declaredSize - this.#size;
    if (chunk.length > room) {
      this.#hash.update(chunk.subarray(0, room));
      this.#size += room;
      this.#tooLong = true;
      return false;
    }
    this.#hash.update(chunk);
    this.#size += chunk.length;
    return true;
  }

  get size(): number {
    return this.#size;
  }

  get tooLong(): boolean {
    return this.#tooLong;
  }

  digest(): { readonly size: number; readonly sha256: string; readonly tooLong: boolean } {
    return { size: this.#size, sha256: this.#hash.digest('hex'), tooLong: this.#tooLong };
  }
}

/**
 * Checks an image against verified release metadata. `otherRelease` names the release a
 * digest belongs to when the caller knows it (the platform's catalogue, the agent's previous
 * jobs): an image of another release is a mix-and-match, not mere corruption.
 */
export function checkImage(release: ReleaseBody, image: { readonly size: number; readonly sha256: string; readonly tooLong: boolean }, otherRelease: (sha256: string) => string | undefined = () => undefined): FirmwareVerdict | undefined {
  if (image.tooLong) return refuse('image_too_long', `the image goes on past its declared ${release.size} bytes`);
  if (image.sha256 === release.sha256 && image.size === release.size) return undefined;
  const other = otherRelease(image.sha256);
  if (other !== undefined) return refuse('mix_and_match', `the image is ${other}, not ${release.name} ${release.version}`);
  if (image.size !== release.size) return refuse('image_size_mismatch', `the image is ${image.size} bytes, the metadata declares ${release.size}`);
  return refuse('image_hash_mismatch', 'the image SHA-256 differs from the signed one (tampered or corrupt)');
}
