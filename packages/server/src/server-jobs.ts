import type { Clock, IdGen, Logger } from '@bulwark/core';
import type { AuditService } from './audit/index.js';
import type { ServerConfig } from './config/index.js';
import type { DeviceOps } from './device-ops.js';
import { JobService } from './jobs/index.js';
import type { GroupService, RegistryService } from './registry/index.js';
import type { Store } from './store/index.js';

/**
 * Jobs over groups wired into the platform: they act through the twin, commands, registry and
 * identity services, and hear every twin report and command result stored on this node.
 */
export function wireJobs(
  config: ServerConfig,
  deps: {
    store: Store;
    registry: RegistryService;
    groups: GroupService;
    deviceOps: DeviceOps;
    audit: AuditService;
    clock: Clock;
    ids: IdGen;
    log: Logger;
    /** Decommission as one operation (end of life, data kept); bound after the jobs exist. */
    decommission: (deviceId: string, by: string) => Promise<void>;
  },
): JobService {
  const { twin, commands } = deps.deviceOps;
  const jobs = new JobService(deps.store.jobs, config.jobs, {
    clock: deps.clock,
    ids: deps.ids,
    log: deps.log,
    registry: deps.registry,
    groups: deps.groups,
    targets: {
      patchDesired: async (id, patch, by) => (await twin.patchDesired(id, patch, by)).version,
      command: async (id, name, params, o) => (await commands.issue(id, name, { ...params }, { actor: o.actor, paced: true, ...(o.ttlS !== undefined ? { ttlS: o.ttlS } : {}) })).id,
      suspend: async (id) => void (await deps.registry.suspend(id)),
      resume: async (id) => void (await deps.registry.resume(id)),
      decommission: (id, by) => deps.decommission(id, by),
      reported: async (id) => (await deps.store.twins.get(id))?.reported ?? null,
      commandResult: async (id, commandId) => deps.store.commands.get(id, commandId),
    },
    onStop: (job) => {
      void deps.audit.record({ actor: 'system', action: `job.${job.state}`, target: job.id, result: 'ok', requestId: null, source: null, details: { reason: job.reason } }).catch((err: unknown) => deps.log.error({ err }, 'could not audit the job change'));
    },
  });
  twin.onReport((deviceId, r) => jobs.onTwinReported(deviceId, r));
  commands.onAnswered((deviceId, r) => jobs.onCommandResult(deviceId, r));
  return jobs;
}
