import type { Clock, IdGen, Logger } from '@bulwark/core';
import type { HealthReport } from '@bulwark/protocol';
import type { FastifyInstance } from 'fastify';
import { Counter } from 'prom-client';
import type { CounterStore } from './access/index.js';
import type { EventBus } from './bus/index.js';
import type { ServerConfig } from './config/index.js';
import { CommandService, LogStreams, diagnosticsRoutes } from './diagnostics/index.js';
import { type DeviceInbox, type InboxServices, createDeviceInbox } from './gateway/device-inbox.js';
import { HealthService, healthRoutes } from './health/index.js';
import type { Metrics } from './observe/metrics.js';
import type { RegistryService } from './registry/index.js';
import type { Store } from './store/index.js';
import { type DeviceLink, TwinService, twinRoutes } from './twin/index.js';

/** Twin, commands, remote logs and fleet health, wired together (issue 5). */
export interface DeviceOps {
  readonly twin: TwinService;
  readonly commands: CommandService;
  readonly logs: LogStreams;
  readonly health: HealthService;
  /** Where transports hand device messages beside telemetry. */
  readonly inbox: DeviceInbox;
  register(app: FastifyInstance): Promise<void>;
  /** Marks expired commands and deletes old health reports, events and ended commands. */
  sweep(): Promise<void>;
  start(): void;
  stop(): void;
}

export function buildDeviceOps(
  config: ServerConfig,
  deps: {
    store: Store;
    registry: RegistryService;
    link: DeviceLink;
    bus: EventBus;
    counters: CounterStore;
    clock: Clock;
    ids: IdGen;
    log: Logger;
    metrics: Metrics;
    ota?: InboxServices['ota'];
    /** Told of every stored health report. */
    onHealthReport?: (deviceId: string, report: HealthReport) => void;
  },
): DeviceOps {
  const { store, clock, log } = deps;
  const assertDevice = async (id: string) => {
    await deps.registry.get(id);
  };
  const twin = new TwinService(store.twins, { clock, link: deps.link, bus: deps.bus, log, driftThresholdMs: config.twin.driftThresholdMs, assertDevice });
  const commands = new CommandService(store.commands, config.commands, { clock, ids: deps.ids, link: deps.link, counters: deps.counters, bus: deps.bus, log, assertDevice });
  const logs = new LogStreams(commands, config.logs, clock, deps.bus);
  const postureFindings = new Counter({
    name: 'bulwark_device_posture_findings_total',
    help: 'Findings in the postures devices reported (debug-port, boot-unverified, ssh-password, …), by kind and severity',
    labelNames: ['kind', 'severity'] as const,
    registers: [deps.metrics.registry],
  });
  const health = new HealthService(store.health, store.events, config.health, {
    clock,
    log,
    assertDevice,
    recordFirmware: (id, fw) => deps.registry.recordFirmware(id, fw),
    ...(deps.onHealthReport ? { onReport: deps.onHealthReport } : {}),
    onPostureFindings: (_id, findings) => {
      for (const f of findings) postureFindings.inc({ kind: f.kind, severity: f.severity });
    },
  });
  const inbox = createDeviceInbox({ twin, commands, logs, health, ...(deps.ota ? { ota: deps.ota } : {}) }, { log, metrics: deps.metrics.registry });
  let timer: NodeJS.Timeout | undefined;
  const sweep = async () => {
    await commands.sweep();
    await health.sweep();
  };
  return {
    twin,
    commands,
    logs,
    health,
    inbox,
    sweep,
    async register(app) {
      await app.register(twinRoutes, { twin });
      await app.register(diagnosticsRoutes, { commands, logs, liveQueueLimit: config.logs.liveQueueLimit, liveDropped: deps.metrics.liveDropped });
      await app.register(healthRoutes, { health });
    },
    start() {
      if (config.health.sweepIntervalMs <= 0) return;
      timer = setInterval(() => void sweep().catch((err: unknown) => log.error({ err }, 'device-state sweep failed')), config.health.sweepIntervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
