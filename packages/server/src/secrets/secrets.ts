import type { HsmToken } from './hsm-token.js';

/** A data key as stored: wrapped (sealed) by the master key named by masterKeyId. */
export interface DataKeyRecord {
  readonly id: string;
  readonly wrapped: string;
  readonly masterKeyId: string;
  readonly createdAt: number;
  readonly retiredAt: number | null;
}

export interface SealedSecret {
  readonly name: string;
  readonly dataKeyId: string;
  readonly sealed: string;
  readonly updatedAt: number;
}

export interface SecretRepository {
  insertDataKey(k: DataKeyRecord): Promise<void>;
  listDataKeys(): Promise<DataKeyRecord[]>;
  /** Replaces the wrapping of every listed data key in one transaction: all or nothing. */
  rewrapDataKeys(rewrapped: readonly { id: string; wrapped: string; masterKeyId: string }[]): Promise<void>;
  putSecret(s: SealedSecret): Promise<void>;
  getSecret(name: string): Promise<SealedSecret | undefined>;
  listSecretNames(): Promise<string[]>;
}

/**
 * Where the master key comes from. A file is created on first start (mode 0600) and can be
 * rotated by the platform (a new random key, on this node only). A key provided by the
 * operator (BULWARK_MASTER_KEY) cannot be replaced by the platform; with a next key beside it
 * (BULWARK_MASTER_KEY_NEXT), the node reads data keys wrapped by either, and a rotation
 * re-wraps every data key under the next one (the way a cluster rotates: decision 0017).
 */
export type MasterKeySource =
  | { readonly kind: 'file'; readonly path: string }
  /** A key made and kept inside a PKCS#11 token under `label`; rotation makes a new one there. */
  | { readonly kind: 'token'; readonly token: HsmToken; readonly label: string }
  | { readonly kind: 'provided'; readonly key: Buffer; readonly next?: Buffer };
