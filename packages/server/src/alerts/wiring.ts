import type { Clock, IdGen, Logger } from '@bulwark/core';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { EventBus } from '../bus/index.js';
import type { TelemetryRecord } from '../ingest/index.js';
import type { DeliveryRequest, DeliveryResult } from '../webhooks/index.js';
import type { AlertChannel, AlertRepository, AlertRule } from './alerts.js';
import type { AnomalyDetectorFactory } from './conditions.js';
import { AlertEvaluator, type DeviceFacts, groupsNamed } from './evaluator.js';
import { AlertNotifier, type NotifierSettings } from './notifier.js';
import type { EmailSender } from './email.js';
import type { SchemaFields } from './rule-input.js';
import { AlertService } from './service.js';
import { FleetHealth } from './fleet-health.js';
import { type CohortFilter, type CohortMember, type DriftingTwin, type EndingCertificate, FleetSweep } from './fleet-sweep.js';

export interface AlertsConfig extends NotifierSettings {
  readonly offlineAfterMs: number;
  /** The built-in clock-skew rule's limit when it is first created (ingest.maxClockSkewMs). */
  readonly clockSkewMs: number;
  /** The built-in twin-drift rule's duration when it is first created (twin.driftThresholdMs). */
  readonly twinDriftMs: number;
  /** How often the fleet sweep (twin drift, certificate expiry, cohorts) runs. */
  readonly sweepIntervalMs: number;
  /** How long an alert transition waits for others to share its transaction. */
  readonly transitionBatchMs: number;
  readonly runbookBaseUrl: string;
  readonly groupWaitMs: number;
  readonly groupMinAlerts: number;
  readonly groupWindowMs: number;
  readonly flapMaxFires: number;
  readonly flapWindowMs: number;
}

export interface AlertsDeps {
  readonly repo: AlertRepository;
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly ids: IdGen;
  readonly log: Logger;
  readonly metrics: Registry;
  readonly fields: SchemaFields;
  /** A device's tags and model, and which of `groups` (those the rules name) hold it; undefined: no such device. */
  readonly facts: (deviceId: string, groups: readonly string[]) => Promise<DeviceFacts | undefined>;
  readonly online: (deviceId: string) => Promise<boolean>;
  readonly anomaly: AnomalyDetectorFactory;
  /** The fleet's minimum security version now (ota.minSecurityVersion). */
  readonly minSecurityVersion: () => number;
  /** Twins out of sync since `atOrBefore` or earlier (the twin context). */
  readonly drifting: (atOrBefore: number, limit: number) => Promise<readonly DriftingTwin[]>;
  /** Devices whose newest live certificate ends by `before` (the identity context). */
  readonly ending: (before: number, limit: number) => Promise<readonly EndingCertificate[]>;
  /** Devices for cohort rules (the registry), keyset paged. */
  readonly devices: (filter: CohortFilter) => Promise<readonly CohortMember[]>;
  /** Each device's mean of a field over its 1-minute rollups since a time (the telemetry store). */
  readonly fieldMeans: (deviceIds: readonly string[], field: string, sinceMs: number) => Promise<ReadonlyMap<string, number>>;
  readonly deliver: (req: DeliveryRequest) => Promise<DeliveryResult>;
  readonly email: EmailSender;
  readonly seal: (plaintext: Buffer, context: string) => string;
  readonly open: (sealed: string, context: string) => Promise<Buffer>;
  readonly audit: (actor: string, action: string, target: string, details: Record<string, unknown>) => Promise<void>;
  /** Audit entries the transitions wrote in their own transactions (the audit log's metric). */
  readonly audited: (entries: number) => void;
}

export interface Alerts {
  readonly service: AlertService;
  readonly evaluator: AlertEvaluator;
  /** Runs as the `alert-notifier` singleton. */
  readonly notifier: AlertNotifier;
  /** Runs as the `alert-sweep` singleton: twin drift and certificate expiry. */
  readonly sweep: FleetSweep;
  /** Loads rules, open alerts, silences and channels; call before readings flow. */
  start(): Promise<void>;
  /** A reading this node accepted. */
  observe(record: TelemetryRecord): void;
  connected(deviceId: string): void;
  disconnected(deviceId: string, at: number): void;
  /** The fleet-health rules' inputs: dead letters, health reports, rollouts that stopped themselves. */
  readonly fleet: FleetHealth;
  /** Stops evaluating and writes the transitions still waiting. */
  stop(): Promise<void>;
}

/** The platform's own rules, created at first start and kept (they may be changed or disabled, not deleted). */
export function builtInRules(config: AlertsConfig, now: number): AlertRule[] {
  const base = { severity: 'warning' as const, scope: { deviceIds: [], tags: [], models: [], groups: [], schemas: [] }, enabled: true, builtIn: true, createdBy: 'system', createdAt: now, updatedAt: now };
  return [
    { ...base, id: 'builtin-offline', name: 'Device offline', condition: { kind: 'offline', forMs: config.offlineAfterMs } },
    { ...base, id: 'builtin-flapping', name: 'Connection flapping', condition: { kind: 'flapping', connects: 5, withinMs: 600_000 } },
    { ...base, id: 'builtin-restart-loop', name: 'Restart loop', severity: 'critical', condition: { kind: 'restart_loop' } },
    { ...base, id: 'builtin-dead-letters', name: 'Dead letters', condition: { kind: 'dead_letters', perMinute: 10 } },
    { ...base, id: 'builtin-clock-skew', name: 'Device clock off', severity: 'info', condition: { kind: 'clock_skew', maxMs: config.clockSkewMs } },
    { ...base, id: 'builtin-firmware-security', name: 'Firmware below the minimum security version', severity: 'critical', condition: { kind: 'firmware_security' } },
    { ...base, id: 'builtin-queue-dropping', name: 'Agent dropping readings', condition: { kind: 'queue_dropping' } },
    { ...base, id: 'builtin-rollout-stopped', name: 'Rollout stopped itself', condition: { kind: 'rollout_stopped' } },
    { ...base, id: 'builtin-twin-drift', name: 'Configuration out of sync', condition: { kind: 'twin_drift', forMs: config.twinDriftMs } },
    { ...base, id: 'builtin-link-quality', name: 'Readings lost or repeated', condition: { kind: 'link_quality', lost: 10, duplicates: 50, withinMs: 3_600_000 } },
    { ...base, id: 'builtin-cert-expiry', name: 'Certificate ending', condition: { kind: 'cert_expiry', withinMs: 30 * 86_400_000 } },
  ];
}

/** How often every node reloads rules, silences and channels even without a change announced on the bus. */
const RELOAD_MS = 60_000;

/** The alerting context, wired: evaluation on every node, notification under a lease. */
export function buildAlerts(config: AlertsConfig, deps: AlertsDeps): Alerts {
  const transitions = new Counter({
    name: 'bulwark_alert_transitions_total',
    help: 'Alert transitions (fired, resolved, acknowledged; suppressed: fired while silenced or flapping, stored and not notified).',
    labelNames: ['transition'],
    registers: [deps.metrics],
  });
  const notifications = new Counter({ name: 'bulwark_alert_notifications_total', help: 'Alert notification attempts by outcome (delivered, failed and retried, given_up).', labelNames: ['outcome'], registers: [deps.metrics] });
  const errors = new Counter({ name: 'bulwark_alert_evaluation_errors_total', help: 'Readings or deadlines the alert evaluator could not act on (the store or registry did not answer); logged.', registers: [deps.metrics] });
  const service = new AlertService({
    repo: deps.repo,
    clock: deps.clock,
    ids: deps.ids,
    log: deps.log,
    fields: deps.fields,
    audit: deps.audit,
    runbookBaseUrl: config.runbookBaseUrl,
    grouping: { waitMs: config.groupWaitMs, minAlerts: config.groupMinAlerts, windowMs: config.groupWindowMs },
    flapping: { maxFires: config.flapMaxFires, windowMs: config.flapWindowMs },
    batchMs: config.transitionBatchMs,
    seal: (secret, id) => deps.seal(Buffer.from(secret, 'utf8'), `alert-channel:${id}`),
    audited: deps.audited,
    // The notifier is made below; a transition can only come once the evaluator runs.
    queued: () => notifier.notify(),
    changed: () => void deps.bus.publish({ type: 'alerts.changed' }).catch(() => undefined),
    counted: (t) => transitions.inc({ transition: t }),
  });
  // The groups the rules name: a device's facts say which of them hold it.
  let named: readonly string[] = [];
  const facts = (deviceId: string) => deps.facts(deviceId, named);
  const evaluator = new AlertEvaluator({ clock: deps.clock, log: deps.log, facts, online: deps.online, sink: service, anomaly: deps.anomaly, onError: () => errors.inc() });
  const fleet = new FleetHealth({ clock: deps.clock, log: deps.log, sink: service, facts, minSecurityVersion: deps.minSecurityVersion, onError: () => errors.inc() });
  const sweep = new FleetSweep(
    {
      clock: deps.clock,
      log: deps.log,
      sink: service,
      facts,
      drifting: deps.drifting,
      ending: deps.ending,
      devices: deps.devices,
      fieldMeans: deps.fieldMeans,
      onError: () => errors.inc(),
      openSubjects: async (ruleId) => (await deps.repo.list({ state: 'open', ruleId, limit: 100_000 })).map((a) => a.deviceId),
    },
    config.sweepIntervalMs,
  );
  const notifier = new AlertNotifier(config, {
    repo: deps.repo,
    deliver: deps.deliver,
    clock: deps.clock,
    log: deps.log,
    counted: (o) => notifications.inc({ outcome: o }),
    channels: () => service.knownChannels,
    email: (channel, n) => deps.email.send(channel, n),
    openSecret: async (c: AlertChannel) => (await deps.open(c.secret, `alert-channel:${c.id}`)).toString('utf8'),
  });
  new Gauge({
    name: 'bulwark_alert_deadlines',
    help: 'Absence, offline, flapping and dead-letter deadlines this node holds (one per rule and device that did something).',
    registers: [deps.metrics],
    collect() {
      this.set(evaluator.deadlines + fleet.deadlines);
    },
  });
  new Gauge({
    name: 'bulwark_alerts_open',
    help: 'Alerts firing or acknowledged, over the platform.',
    registers: [deps.metrics],
    async collect() {
      this.set(await deps.repo.countOpen().catch(() => 0));
    },
  });
  new Gauge({
    name: 'bulwark_alert_notifications_pending',
    help: 'Alert notifications not yet taken by their receiver.',
    registers: [deps.metrics],
    async collect() {
      this.set(await deps.repo.countUndelivered().catch(() => 0));
    },
  });

  const reload = async () => {
    await service.refresh();
    const rules = await service.listRules();
    named = groupsNamed(rules.filter((r) => r.enabled));
    evaluator.setRules(rules);
    fleet.setRules(rules);
    sweep.setRules(rules);
  };
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  return {
    service,
    evaluator,
    notifier,
    fleet,
    sweep,
    async start() {
      await deps.repo.seedRules(builtInRules(config, deps.clock.now()));
      await reload();
      unsubscribe = deps.bus.subscribe('alerts.changed', () => reload().catch((err: unknown) => deps.log.warn({ err }, 'alerts: could not reload the rules')));
      timer = setInterval(() => void reload().catch((err: unknown) => deps.log.warn({ err }, 'alerts: could not reload the rules')), RELOAD_MS);
      timer.unref();
    },
    observe(record) {
      evaluator.observe(record);
      fleet.reading(record);
    },
    connected(deviceId) {
      fleet.connected(deviceId, deps.clock.now());
      // Alerts fired where the device was before become resolvable here, then the connect clears them.
      void service.learnDevice(deviceId).then(
        () => evaluator.connected(deviceId),
        (err: unknown) => {
          errors.inc();
          deps.log.warn({ err, deviceId }, 'alerts: could not read the open alerts of a device');
        },
      );
    },
    disconnected: (deviceId, at) => evaluator.disconnected(deviceId, at),
    async stop() {
      clearInterval(timer);
      unsubscribe?.();
      evaluator.stop();
      fleet.stop();
      await sweep.stop();
      await service.flush();
      deps.email.close();
    },
  };
}
