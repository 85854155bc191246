import type { Logger } from '@bulwark/core';
import { type HsmToken, type SecretVault, sha256 } from '../secrets/index.js';
import { exportPkcs8, generateP256, importPkcs8, importSpki, tokenPrivateKey } from './x509.js';

/**
 * Where the device CA's private keys live. By default in the secret vault (sealed under the
 * master key, in the store); optionally inside a PKCS#11 token, made there and never read
 * out, so that a copy of the store and the data directory does not yield them.
 */
export interface CaKeyStore {
  /** `vault` or `token`: where new CA keys are made. */
  readonly where: 'vault' | 'token';
  /** A new key pair for CA `id`; its private half is kept where this store keeps keys. */
  generate(id: string): Promise<CryptoKeyPair>;
  /** Stores a generated private key (the vault seals it; a token holds it already). */
  keep(id: string, privateKey: CryptoKey): Promise<void>;
  /** The private key of CA `id`, or undefined when none is held. */
  load(id: string): Promise<CryptoKey | undefined>;
}

const vaultName = (id: string) => `identity.ca.${id}.key`;

export function vaultCaKeys(vault: SecretVault): CaKeyStore {
  return {
    where: 'vault',
    generate: () => generateP256(),
    keep: async (id, privateKey) => vault.put(vaultName(id), await exportPkcs8(privateKey)),
    load: async (id) => {
      const der = await vault.get(vaultName(id));
      return der ? importPkcs8(der) : undefined;
    },
  };
}

/**
 * CA keys in a token, labelled `<prefix>-ca-<id>`. A CA made before the token was configured
 * keeps its key in the vault and still signs from there (logged once): roll the issuing CA
 * over to move signing into the token (the root stays where it was made).
 */
export function tokenCaKeys(token: HsmToken, prefix: string, vault: SecretVault, log: Logger): CaKeyStore {
  const label = (id: string) => `${prefix}-ca-${id}`;
  const inVault = vaultCaKeys(vault);
  const fromToken = async (key: { spki: Buffer; signDigest(d: Buffer): Buffer }): Promise<CryptoKeyPair> => ({
    privateKey: tokenPrivateKey((data) => key.signDigest(sha256(data))),
    publicKey: await importSpki(key.spki),
  });
  return {
    where: 'token',
    // A key of this label with no CA record naming it: a first start that stopped after making
    // it (or a store made anew beside the token). It never left the token: use it.
    generate: async (id) => {
      const left = token.findEcKey(label(id));
      if (left) log.warn({ ca: id, token: token.label, label: label(id) }, 'using the key the token already holds for this new CA');
      return fromToken(left ?? token.generateEcKey(label(id)));
    },
    keep: async () => undefined,
    load: async (id) => {
      const key = token.findEcKey(label(id));
      if (key) return (await fromToken(key)).privateKey;
      const held = await inVault.load(id);
      if (held) log.warn({ ca: id, token: token.label }, "this CA's key was made before the PKCS#11 token was configured and is still in the vault; roll the issuing CA over to sign from the token");
      return held;
    },
  };
}
