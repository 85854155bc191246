import { join } from 'node:path';
import type { Logger } from '@bulwark/core';
import type { ServerConfig } from './config/index.js';
import { type CaKeyStore, tokenCaKeys, vaultCaKeys } from './identity/index.js';
import { HsmToken, type MasterKeySource, type SecretVault, parseMasterKey } from './secrets/index.js';

/**
 * Where the platform's own keys live: the master key (a file in the data directory,
 * BULWARK_MASTER_KEY, or a PKCS#11 token) and the device CA's signing keys (the vault, or
 * the token). The token, when one is configured, is opened once here and closed at stop.
 */
export interface PlatformKeys {
  readonly masterKeySource: MasterKeySource;
  caKeys(vault: SecretVault): CaKeyStore;
  /** What the keys are held in, for the start-up log and the checklist. */
  readonly held: { readonly masterKey: 'file' | 'environment' | 'token'; readonly caKeys: 'vault' | 'token' };
  close(): void;
}

export async function openPlatformKeys(config: ServerConfig, dataDir: string, log: Logger): Promise<PlatformKeys> {
  const wanted = config.hsm.keys;
  const token = wanted === 'none' ? undefined : await HsmToken.open({ library: config.hsm.library, tokenLabel: config.hsm.tokenLabel, pin: config.hsm.pin ?? '' });
  const masterInToken = token !== undefined && (wanted === 'master' || wanted === 'all');
  const caInToken = token !== undefined && (wanted === 'ca' || wanted === 'all');
  const prefix = config.hsm.labelPrefix;
  let masterKeySource: MasterKeySource;
  if (masterInToken) masterKeySource = { kind: 'token', token, label: `${prefix}-master-key` };
  else if (config.masterKey !== undefined) {
    masterKeySource = { kind: 'provided', key: parseMasterKey(config.masterKey, 'BULWARK_MASTER_KEY'), ...(config.masterKeyNext !== undefined ? { next: parseMasterKey(config.masterKeyNext, 'BULWARK_MASTER_KEY_NEXT') } : {}) };
  } else masterKeySource = { kind: 'file', path: join(dataDir, 'master.key') };
  const held = { masterKey: masterInToken ? 'token' : config.masterKey !== undefined ? 'environment' : 'file', caKeys: caInToken ? 'token' : 'vault' } as const;
  if (token) log.info({ token: token.label, library: config.hsm.library, ...held }, 'keys held in a PKCS#11 token');
  return {
    masterKeySource,
    held,
    caKeys: (vault) => (caInToken ? tokenCaKeys(token, prefix, vault, log) : vaultCaKeys(vault)),
    close: () => token?.close(),
  };
}
