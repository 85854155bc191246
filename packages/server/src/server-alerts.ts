import type { Clock, IdGen, Logger } from '@bulwark/core';
import { isPlatformError } from '@bulwark/core';
import type { Registry } from 'prom-client';
import { type Alerts, type FieldFacts, buildAlerts } from './alerts/index.js';
import { EmailSender, SeriesDetector } from './alerts/index.js';
import type { AuditService } from './audit/index.js';
import type { EventBus } from './bus/index.js';
import type { ServerConfig } from './config/index.js';
import { type IngestService, ROLLUP_BUCKETS_MS } from './ingest/index.js';
import type { GroupService, RegistryService } from './registry/index.js';
import type { SchemaService } from './schemas/index.js';
import type { SecretVault } from './secrets/index.js';
import type { Store } from './store/index.js';
import type { Webhooks } from './webhooks/index.js';

/**
 * The alerting context wired into the platform: it hears every reading this node accepts
 * and every session that begins or ends here, reads schemas and the registry, and sends
 * through the webhooks' signed delivery.
 */
export async function wireAlerts(
  config: ServerConfig,
  deps: {
    store: Store;
    bus: EventBus;
    clock: Clock;
    ids: IdGen;
    log: Logger;
    metrics: Registry;
    schemas: SchemaService;
    registry: RegistryService;
    ingest: IngestService;
    webhooks: Webhooks;
    vault: SecretVault;
    audit: AuditService;
    groups: GroupService;
  },
): Promise<Alerts> {
  const { registry } = deps;
  const alerts = buildAlerts(
    {
      ...config.alerts,
      pollIntervalMs: config.alerts.notifyPollIntervalMs,
      gatherMs: config.alerts.notifyGatherMs,
      maxAgeMs: config.alerts.notificationMaxAgeMs,
      clockSkewMs: config.ingest.maxClockSkewMs,
      twinDriftMs: config.twin.driftThresholdMs,
    },
    {
      minSecurityVersion: () => config.ota.minSecurityVersion,
      drifting: async (atOrBefore, limit) =>
        (await deps.store.twins.listDrifting(atOrBefore, limit)).map((t) => ({
          deviceId: t.deviceId,
          driftSince: t.driftSince ?? atOrBefore,
          desiredVersion: t.desired?.version ?? null,
          reportedVersion: t.reported?.version ?? null,
          reportedStatus: t.reported?.status ?? null,
        })),
      devices: async ({ groups, ...filter }) => {
        const within = groups === undefined ? {} : { within: await deps.groups.selectors(groups) };
        return (await deps.store.devices.list({ ...filter, ...within })).map((d) => ({ id: d.id, model: d.model, tags: d.tags, retired: d.state === 'decommissioned' }));
      },
      fieldMeans: (ids, field, sinceMs) => deps.store.telemetry.fieldMeans(ids, field, ROLLUP_BUCKETS_MS[0], sinceMs),
      ending: async (before, limit) => (await deps.store.identity.listExpiring(before, limit)).map((c) => ({ deviceId: c.deviceId, serial: c.serial, notAfter: c.notAfter })),
      repo: deps.store.alerts,
      bus: deps.bus,
      clock: deps.clock,
      ids: deps.ids,
      log: deps.log,
      metrics: deps.metrics,
      anomaly: (warmup) => new SeriesDetector({ warmup }),
      fields: (schemaId) => schemaFields(deps.schemas, schemaId),
      facts: async (id, groups) => {
        const d = await registry.find(id);
        return d && { tags: d.tags, model: d.model, groups: groups.length > 0 ? await deps.groups.holding(groups, id) : [] };
      },
      online: async (id) => (await registry.find(id))?.connectivity.online === true,
      deliver: (req) => deps.webhooks.delivery.deliver(req),
      email: new EmailSender(
        {
          smtpUrl: config.alerts.smtpUrl,
          from: config.alerts.smtpFrom,
          allowInsecure: config.alerts.smtpAllowInsecure,
          timeoutMs: config.alerts.smtpTimeoutMs,
          ...(config.alerts.smtpCaFile !== undefined ? { caFile: config.alerts.smtpCaFile } : {}),
        },
        deps.clock,
      ),
      seal: (v, c) => deps.vault.encryptValue(v, c),
      open: (t, c) => deps.vault.decryptValue(t, c),
      audit: (actor, action, target, details) => deps.audit.record({ actor, action, target, result: 'ok', requestId: null, source: null, details }).then(() => undefined),
      audited: (n) => deps.audit.appended(n),
    },
  );
  await alerts.start();
  deps.ingest.onAccepted((r) => alerts.observe(r));
  deps.ingest.onDeadLetter((deviceId) => alerts.fleet.deadLettered(deviceId, deps.clock.now()));
  deps.ingest.onLinkTrouble((deviceId, kind, count) => alerts.fleet.linkTrouble(deviceId, kind, count, deps.clock.now()));
  registry.onConnectivity((e) => (e.kind === 'connect' ? alerts.connected(e.id) : alerts.disconnected(e.id, e.at)));
  return alerts;
}

/** A schema's top-level fields as a rule sees them; undefined when no such schema. */
async function schemaFields(schemas: SchemaService, schemaId: string): Promise<ReadonlyMap<string, FieldFacts> | undefined> {
  const at = schemaId.lastIndexOf('@');
  try {
    const schema = await schemas.get(schemaId.slice(0, at), Number(schemaId.slice(at + 1)));
    const fields = new Map<string, FieldFacts>();
    for (const [name, spec] of Object.entries(schema.document.properties)) {
      const types = spec.type === undefined ? [] : typeof spec.type === 'string' ? [spec.type] : spec.type;
      fields.set(name, { numeric: types.includes('number') || types.includes('integer'), concealed: spec['x-sensitive'] === 'hash' || spec['x-sensitive'] === 'encrypt' });
    }
    return fields;
  } catch (err) {
    if (isPlatformError(err) && err.code === 'BULWARK_ERR_NOT_FOUND') return undefined;
    throw err;
  }
}
