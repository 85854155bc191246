import { PlatformError } from '@bulwark/core';
import { discardNextKey, newMasterKey, nextPath, promoteNextKey, writeKeyFile } from './master-key-file.js';
import { type MasterKey, memoryMasterKey, newTokenMasterKey } from './master-key.js';
import type { HsmToken } from './hsm-token.js';
import type { SecretRepository } from './secrets.js';

/**
 * The three ways a master key is replaced, one per source. Each re-wraps every data key in one
 * transaction (the store is under the old key or the new one, never between) and leaves
 * behind, whatever fails, a state the next start resolves by looking at which key the store
 * names. The vault then takes `next` as its key.
 */
export interface RotationReport {
  readonly previousMasterKeyId: string;
  readonly masterKeyId: string;
  readonly dataKeysRewrapped: number;
  /** Where the new key is: the generated key file, BULWARK_MASTER_KEY_NEXT, or a new key in the PKCS#11 token. */
  readonly keySource: 'file' | 'next' | 'token';
}

export type Rewrapped = { id: string; wrapped: string; masterKeyId: string };

export interface RotationDeps {
  readonly repo: SecretRepository;
  readonly previous: MasterKey;
  /** Every stored data key wrapped under `next`; with `skipDone`, those already under it are left out. */
  rewrap(next: MasterKey, skipDone: boolean): Promise<Rewrapped[]>;
  /** The live nodes of a cluster that do not hold `masterKeyId` (empty on one node). */
  nodesLacking(masterKeyId: string): Promise<string[]>;
}

/** Refuses a rotation that would leave a live node unable to open the data keys. */
async function checkNodesHold(d: RotationDeps, target: MasterKey, source: RotationReport['keySource']): Promise<void> {
  const lacking = await d.nodesLacking(target.id);
  if (lacking.length === 0) return;
  const nodes = lacking.join(', ');
  const why =
    source === 'file'
      ? `this node's master key is a file, and a new one would exist on this node only: nodes ${nodes} could no longer read the secrets. In a cluster give every node BULWARK_MASTER_KEY, and the new key as BULWARK_MASTER_KEY_NEXT`
      : source === 'token'
        ? `nodes ${nodes} have not loaded the new key from the token (they read it at start): a token-held master key is rotated with one node running`
        : `live nodes ${nodes} do not hold master key ${target.id} (BULWARK_MASTER_KEY_NEXT): give it to every node (rolling restart) before rotating`;
  throw new PlatformError('BULWARK_ERR_MASTER_KEY_NOT_HELD', `master-key rotation refused: ${why}`, { details: { masterKeyId: target.id, nodes: lacking } });
}

const report = (d: RotationDeps, next: MasterKey, count: number, keySource: RotationReport['keySource']): RotationReport => ({ previousMasterKeyId: d.previous.id, masterKeyId: next.id, dataKeysRewrapped: count, keySource });

/** Keys from the operator: re-wrap under BULWARK_MASTER_KEY_NEXT; idempotent, so a failed one is asked for again. */
export async function rotateToNext(d: RotationDeps, target: MasterKey): Promise<RotationReport> {
  await checkNodesHold(d, target, 'next');
  const rewrapped = await d.rewrap(target, true);
  if (rewrapped.length > 0) await d.repo.rewrapDataKeys(rewrapped);
  return report(d, target, rewrapped.length, 'next');
}

/** A generated key file: the new key is written beside the old one first, renamed into place after. */
export async function rotateFile(d: RotationDeps, path: string): Promise<{ next: MasterKey; report: RotationReport }> {
  const bytes = newMasterKey();
  const next = memoryMasterKey(bytes);
  await checkNodesHold(d, next, 'file');
  discardNextKey(path);
  writeKeyFile(nextPath(path), bytes);
  const rewrapped = await d.rewrap(next, false);
  try {
    await d.repo.rewrapDataKeys(rewrapped);
  } catch (err) {
    // The commit may have happened even though we saw an error (a connection lost after
    // COMMIT). Drop the new key only when the store provably still names the old one;
    // otherwise leave master.key.next for the next start to promote or discard.
    const now = await d.repo.listDataKeys().catch(() => undefined);
    if (now?.every((k) => k.masterKeyId === d.previous.id)) discardNextKey(path);
    throw err;
  }
  promoteNextKey(path);
  return { next, report: report(d, next, rewrapped.length, 'file') };
}

/**
 * A token: a new key made in it and every data key re-wrapped under it. The previous key stays
 * in the token, so that backups taken before the rotation can still be opened; the operator
 * deletes it with the token's tools when no backup needs it. Stopped half-way, the new key is
 * destroyed when the store provably still names the old one; either way the next start uses
 * the key the store names.
 */
export async function rotateToken(d: RotationDeps, token: HsmToken, label: string): Promise<{ next: MasterKey; report: RotationReport }> {
  const next = newTokenMasterKey(token, label);
  let count: number;
  try {
    await checkNodesHold(d, next, 'token');
    const rewrapped = await d.rewrap(next, false);
    await d.repo.rewrapDataKeys(rewrapped);
    count = rewrapped.length;
  } catch (err) {
    const now = await d.repo.listDataKeys().catch(() => undefined);
    if (now?.every((k) => k.masterKeyId !== next.id)) token.destroyAesKey(label, next.objectId);
    throw err;
  }
  return { next, report: report(d, next, count, 'token') };
}
