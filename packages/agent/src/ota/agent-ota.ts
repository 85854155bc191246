import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RootKeySet } from '@bulwark/protocol';
import { AgentConfigError, type AgentConfig } from '../config.js';
import { HttpsFetcher } from './download.js';
import { FileSlotStore, type SlotStore } from './slots.js';
import { Updater, type UpdaterDeps } from './updater.js';
import type { AgentStatus } from '../agent-types.js';

/** What the agent hands its updater: the transport, the clock and the device's own hooks. */
export type AgentUpdaterIo = Omit<UpdaterDeps, 'fetcher' | 'slots'> & {
  readonly tls: () => { key: string; cert: string; ca: string };
  readonly slots?: SlotStore;
};

/** Reads the pinned root key set; fails closed: an agent configured for updates never runs without its anchor. */
export function loadRootKeys(file: string): RootKeySet {
  let root: RootKeySet;
  try {
    root = JSON.parse(readFileSync(file, 'utf8')) as RootKeySet;
  } catch (err) {
    throw new AgentConfigError([`/ota/rootKeysFile: cannot read ${file}: ${(err as Error).message}`]);
  }
  const keysOk = Array.isArray(root?.keys) && root.keys.length > 0 && root.keys.every((k) => typeof k?.keyId === 'string' && typeof k?.publicKey === 'string');
  if (root?.type !== 'root' || !keysOk || !Number.isSafeInteger(root.threshold) || root.threshold < 1 || root.threshold > root.keys.length) {
    throw new AgentConfigError([`/ota/rootKeysFile: ${file} is not a root key set {type: "root", threshold, keys}`]);
  }
  return root;
}

export function agentUpdater(ota: NonNullable<AgentConfig['ota']>, dataDir: string, io: AgentUpdaterIo): Updater {
  const dir = join(dataDir, 'ota');
  const { tls, slots, ...deps } = io;
  return new Updater(
    {
      dir,
      root: loadRootKeys(ota.rootKeysFile),
      device: { model: ota.model, hardwareRevision: ota.hardwareRevision },
      factory: { version: ota.factoryVersion, securityVersion: ota.factorySecurityVersion },
      maxTrialBoots: ota.maxTrialBoots,
      healthWindowMs: ota.healthWindowMs,
      downloadRetries: ota.downloadRetries,
    },
    { ...deps, fetcher: new HttpsFetcher(ota.downloadUrl, tls, ota.downloadTimeoutMs), slots: slots ?? new FileSlotStore(dir) },
  );
}

/** The firmware part of the agent's status. */
export function firmwareStatus(ota: Updater): NonNullable<AgentStatus['firmware']> {
  const r = ota.running();
  const job = ota.state.job;
  return {
    version: r.version,
    securityVersion: r.securityVersion,
    slot: r.slot,
    trial: r.trial,
    ...(job ? { job: { id: job.job.jobId, state: job.state, ...(job.reason ? { reason: job.reason } : {}) } } : {}),
  };
}
