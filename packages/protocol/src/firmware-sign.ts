/** Building signed documents: for the CLI (key ceremony, release signing) and tests. */
import type { RootRotationBody } from './root-rotation.js';
import { FIRMWARE_FORMAT, type FirmwareManifest, type FirmwarePublicKey, type ReleaseBody, type ReleaseKeyDelegationBody, type RootKeySet, type Signed, signFirmwareBody } from './firmware.js';

export function rootKeySet(threshold: number, keys: readonly FirmwarePublicKey[]): RootKeySet {
  if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > keys.length) throw new RangeError(`threshold must be 1..${keys.length}`);
  if (new Set(keys.map((k) => k.keyId)).size !== keys.length) throw new RangeError('a root key is listed twice');
  return { type: 'root', threshold, keys: keys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey })) };
}

/** The root keys at hand sign a delegation of the release keys (one signature each). */
export function delegateReleaseKeys(body: Omit<ReleaseKeyDelegationBody, 'type'>, rootPrivateKeysPem: readonly string[]): Signed<ReleaseKeyDelegationBody> {
  const signed: ReleaseKeyDelegationBody = { type: 'release-keys', version: body.version, expires: body.expires, keys: body.keys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey })) };
  return { signed, signatures: rootPrivateKeysPem.map((pem) => signFirmwareBody(signed, pem)) };
}

/** Adds one more signature to a signed document, replacing that key's earlier one (a ceremony passes it from holder to holder). */
export function addSignature<T>(d: Signed<T>, privateKeyPem: string): Signed<T> {
  const s = signFirmwareBody(d.signed, privateKeyPem);
  return { signed: d.signed, signatures: [...d.signatures.filter((x) => x.keyId !== s.keyId), s] };
}

/** Adds one more root signature to a delegation. */
export const addDelegationSignature = (d: Signed<ReleaseKeyDelegationBody>, rootPrivateKeyPem: string): Signed<ReleaseKeyDelegationBody> => addSignature(d, rootPrivateKeyPem);

/** A signed release; `rootRotations` (oldest first) travel with it for devices pinned to an older root. */
export function signRelease(body: Omit<ReleaseBody, 'type'>, releasePrivateKeyPem: string, delegation: Signed<ReleaseKeyDelegationBody>, rootRotations: readonly Signed<RootRotationBody>[] = []): FirmwareManifest {
  const signed: ReleaseBody = {
    type: 'release',
    name: body.name,
    version: body.version,
    securityVersion: body.securityVersion,
    hardware: { model: body.hardware.model, hardwareRevisions: [...body.hardware.hardwareRevisions] },
    size: body.size,
    sha256: body.sha256,
    issuedAt: body.issuedAt,
    expires: body.expires,
  };
  return { format: FIRMWARE_FORMAT, ...(rootRotations.length > 0 ? { rootRotations } : {}), delegation, release: { signed, signatures: [signFirmwareBody(signed, releasePrivateKeyPem)] } };
}
