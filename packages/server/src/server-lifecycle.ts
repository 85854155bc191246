import type { Clock, IdGen, Logger } from '@bulwark/core';
import type { AuditService } from './audit/index.js';
import type { EventBus } from './bus/index.js';
import type { DeviceOps } from './device-ops.js';
import type { IdentityService } from './identity/index.js';
import type { JobService } from './jobs/index.js';
import { EndOfLifeService, ReceiptSigner, receiptsDirOf } from './lifecycle/index.js';
import type { GroupService, RegistryService } from './registry/index.js';
import type { SecretVault } from './secrets/index.js';
import type { Store } from './store/index.js';

/** End of life wired into the platform: it acts through the registry, identity, jobs, commands, logs and groups, and signs with a key from the vault. */
export async function wireEndOfLife(deps: {
  store: Store;
  registry: RegistryService;
  identity: IdentityService;
  groups: GroupService;
  jobs: JobService;
  deviceOps: DeviceOps;
  bus: EventBus;
  audit: AuditService;
  vault: SecretVault;
  dataDir: string;
  pseudonymKey: Buffer;
  checkOwner: (owner: string) => Promise<void>;
  clock: Clock;
  ids: IdGen;
  log: Logger;
  /** Cluster mode: the telemetry streams, whose copies of the device's messages go too. */
  streams?: { purgeDevice(deviceId: string): Promise<number> } | undefined;
}): Promise<{ endOfLife: EndOfLifeService; signer: ReceiptSigner }> {
  const { store, clock, streams } = deps;
  const signer = await ReceiptSigner.open(deps.vault);
  const endOfLife = new EndOfLifeService({
    data: store.deviceData,
    registry: deps.registry,
    identity: {
      liveSerials: async (id) => (await deps.identity.listCertificates(id)).filter((c) => c.revokedAt === null).map((c) => c.serial),
      revokeDevice: (id, reason) => deps.identity.revokeDevice(id, reason),
      claimToken: async (id, by) => {
        const [issued] = await deps.identity.createClaimTokens([id], { createdBy: by });
        if (!issued) throw new Error(`no claim token was issued for ${id}`);
        return { token: issued.token, expiresAt: issued.expiresAt };
      },
    },
    // A job that decommissions keeps its own entry: the job ends it when the operation returns.
    cancelJobs: (id, reason, by) => deps.jobs.cancelDevice(id, reason, by.startsWith('job:') ? by.slice('job:'.length) : undefined),
    cancelCommands: (id, reason) => store.commands.cancelOpen(id, reason, clock.now()),
    forgetLogs: async (id) => {
      const here = deps.deviceOps.logs.forget(id);
      await deps.bus.publish({ type: 'device.data-erased', deviceId: id });
      return here;
    },
    leaveGroups: (id) => deps.groups.leaveAll(id),
    ...(streams ? { purgeStreams: (id: string) => streams.purgeDevice(id) } : {}),
    checkOwner: deps.checkOwner,
    audit: async (action, actor, target, details) => {
      await deps.audit.record({ actor, action, target, result: 'ok', requestId: null, source: null, details });
    },
    signer,
    receiptsDir: receiptsDirOf(deps.dataDir),
    pseudonymKey: deps.pseudonymKey,
    clock,
    ids: deps.ids,
    log: deps.log,
  });
  return { endOfLife, signer };
}
