import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Receipt, SignedReceipt } from './lifecycle.js';

/** JSON with object keys sorted at every level: the bytes a receipt's signature covers. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const VAULT_NAME = 'receipts.signing-key';

/**
 * Signs end-of-life receipts with an Ed25519 key kept sealed in the secret vault (made on first
 * use). The public key is published (GET /api/v1/system/receipt-key) so that a receipt can be
 * checked by anyone, long after, without the platform.
 */
export class ReceiptSigner {
  private constructor(
    private readonly key: KeyObject,
    readonly publicKeyPem: string,
    readonly keyId: string,
  ) {}

  static async open(vault: { getOrCreate(name: string, make: () => Buffer): Promise<Buffer> }): Promise<ReceiptSigner> {
    const der = await vault.getOrCreate(VAULT_NAME, () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'der' }));
    const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    const pub = createPublicKey(key);
    const keyId = createHash('sha256')
      .update(pub.export({ type: 'spki', format: 'der' }))
      .digest('hex')
      .slice(0, 16);
    return new ReceiptSigner(key, pub.export({ type: 'spki', format: 'pem' }).toString(), keyId);
  }

  sign(receipt: Omit<Receipt, 'keyId'>): SignedReceipt {
    const body: Receipt = { ...receipt, keyId: this.keyId };
    return { ...body, signature: sign(null, Buffer.from(canonicalJson(body)), this.key).toString('base64url') };
  }
}

/** Whether `receipt` was signed by the key whose public half is `publicKeyPem`, and is unchanged since. */
export function verifyReceipt(receipt: SignedReceipt, publicKeyPem: string): boolean {
  const { signature, ...body } = receipt;
  try {
    return verify(null, Buffer.from(canonicalJson(body)), createPublicKey(publicKeyPem), Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

/** SHA-256 of the signed receipt's canonical JSON: what the audit log keeps. */
export const receiptHash = (r: SignedReceipt): string => createHash('sha256').update(canonicalJson(r)).digest('hex');

/** Writes the receipt to `<dir>/<id>.json`, readable by the platform's user only. */
export function saveReceipt(dir: string, r: SignedReceipt): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${r.id}.json`);
  writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`, { mode: 0o600 });
  return file;
}
