import { PlatformError, randomIds, silentLogger, systemClock } from '@bulwark/core';
import { SecretVault, type SecretRepository, parseMasterKey } from '../../secrets/index.js';
import type { SqliteSource } from './sqlite-source.js';

/**
 * Proves that `keyText` (the master key the cluster's nodes will be given) opens the copied
 * store: every data key must unwrap with it, and every sealed secret must open (the CA keys,
 * the token key and sealed values are all under those data keys). Runs the platform's own
 * vault over the source's rows; nothing is written anywhere.
 */
export async function checkMasterKey(source: SqliteSource, keyText: string, origin: string): Promise<{ masterKeyId: string; secretsOpened: number }> {
  const key = parseMasterKey(keyText, origin);
  const readOnly: SecretRepository = {
    listDataKeys: async () => source.dataKeys(),
    getSecret: async (name) => source.secret(name),
    listSecretNames: async () => source.secretNames(),
    // A store whose data keys are all retired makes the vault create one: kept in memory only.
    insertDataKey: async () => undefined,
    rewrapDataKeys: async () => {
      throw new Error('the copy never rewraps keys');
    },
    putSecret: async () => {
      throw new Error('the copy never writes secrets');
    },
  };
  let vault: SecretVault;
  try {
    vault = await SecretVault.open(readOnly, { kind: 'provided', key }, { clock: systemClock, ids: randomIds, log: silentLogger });
  } catch (err) {
    throw new PlatformError(
      'BULWARK_ERR_MASTER_KEY_INVALID',
      `${origin} cannot open this store, so the cluster's nodes could not either (${(err as Error).message}). Give the master key the embedded node uses: the content of <data>/master.key, or its BULWARK_MASTER_KEY`,
      { cause: err },
    );
  }
  // Every sealed secret is opened (a handful: the CA keys, the token key); one that does not is named.
  const names = source.secretNames();
  for (const name of names) {
    try {
      await vault.get(name);
    } catch (err) {
      throw new PlatformError('BULWARK_ERR_MASTER_KEY_INVALID', `${origin} unwraps the data keys but secret "${name}" does not open: ${(err as Error).message}`, { cause: err });
    }
  }
  return { masterKeyId: vault.masterKeyId, secretsOpened: names.length };
}
