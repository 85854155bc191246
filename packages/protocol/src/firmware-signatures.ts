import { createHash, createPublicKey, verify } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import type { FirmwarePublicKey, Signed } from './firmware.js';

/** Ed25519 signature checks shared by the firmware verifier and root rotation. */

/** The ids of keys in `keys` whose signature over `doc.signed` verifies; a key counts once however often it signs. */
export function validSigners(doc: Signed<unknown>, keys: readonly FirmwarePublicKey[]): Set<string> {
  const byId = new Map(keys.filter((k) => keyIdOf(k.publicKey) === k.keyId).map((k) => [k.keyId, k]));
  const data = Buffer.from(canonicalJson(doc.signed));
  const out = new Set<string>();
  for (const s of doc.signatures) {
    const key = byId.get(s.keyId);
    if (key && !out.has(s.keyId) && verifySignature(data, key.publicKey, s.sig)) out.add(s.keyId);
  }
  return out;
}

function verifySignature(data: Buffer, publicKey: string, sig: string): boolean {
  try {
    return verify(null, data, publicKeyObject(publicKey), Buffer.from(sig, 'base64'));
  } catch {
    return false;
  }
}

const publicKeyObject = (raw: string) => createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw, 'base64').toString('base64url') }, format: 'jwk' });

export function keyIdOf(publicKey: string): string {
  return createHash('sha256').update(Buffer.from(publicKey, 'base64')).digest('hex');
}
