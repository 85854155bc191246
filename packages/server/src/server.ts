import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomIds, systemClock } from '@bulwark/core';
import { AccessService, MemoryCounterStore, Throttle, TokenKeyRing, accessRoutes } from './access/index.js';
import { AuditCheckpointWriter, AuditService, auditRoutes, vaultCheckpointKeys } from './audit/index.js';
import { checklistRoutes, wireChecklist } from './checklist/index.js';
import { type EventBus, MemoryBus } from './bus/index.js';
import { dashboardRoutes } from './dashboard/index.js';
import type { ServerConfig } from './config/index.js';
import { createHttpApp } from './http/app.js';
import { apiTls } from './http/api-tls.js';
import { makeAuditHook } from './http/audit-hook.js';
import { makeGuard } from './http/guard.js';
import { LiveStreams } from './http/live-streams.js';
import type { DeliveryOptions } from './gateway/sessions.js';
import { LocalSessionTable } from './gateway/sessions-local.js';
import { IdentityService, ManufacturerCas, caMetrics, loadOrCreateAuthority } from './identity/index.js';
import { IngestService, RetentionJob } from './ingest/index.js';
import { ingestRoutes } from './ingest/routes.js';
import { TelemetryExporter, deviceSet, exportRoutes } from './ingest/index.js';
import { manufacturerRoutes } from './identity/manufacturer-routes.js';
import { caRoutes } from './identity/ca-routes.js';
import { identityRoutes } from './identity/routes.js';
import { createMetrics } from './observe/metrics.js';
import { SecretVault, secretsRoutes } from './secrets/index.js';
import { type PlatformKeys, openPlatformKeys } from './server-keys.js';
import { CountsFolder, GroupService, RegistryService, groupRoutes, ownerCheck, registryRoutes } from './registry/index.js';
import { SchemaService, schemaRoutes } from './schemas/index.js';
import { type Store, openStore, parseStoreUrl } from './store/index.js';
import { ArtifactStore, FirmwareService, RolloutService, SharedArtifactStore, otaRoutes } from './ota/index.js';
import { buildDeviceOps } from './device-ops.js';
import { saveAdminKey } from './first-start.js';
import { ClusterMembership, loadOrCreateNodeId } from './cluster/index.js';
import { RedisCounterStore } from './access/redis-counters.js';
import { TelemetryStreams } from './stream/index.js';
import { PostgresTelemetryCopy } from './store/postgres/telemetry-copy.js';
import { StreamReplays } from './stream/replay.js';
import { replayRoutes } from './stream/routes.js';
import { KvStreamTickets } from './cluster/stream-tickets-kv.js';
import { NodeDrain } from './cluster/drain.js';
import type { SessionTable } from './gateway/sessions.js';
import { applicationRoutes, buildApplications } from './applications/index.js';
import { buildWebhooks, checkUrl, newSecret, resolveTarget, webhookRoutes } from './webhooks/index.js';
import { alertRoutes } from './alerts/index.js';
import { wireAlerts } from './server-alerts.js';
import { wireJobs } from './server-jobs.js';
import { wireEndOfLife } from './server-lifecycle.js';
import { serverLogger, wirePrivacy } from './server-privacy.js';
import { privacyRoutes } from './privacy/index.js';
import { type EndOfLifeService, lifecycleRoutes } from './lifecycle/index.js';
import { jobRoutes } from './jobs/index.js';
import { tracingRoutes } from './tracing/index.js';
import { createTracer } from './server-tracing.js';
import { platformSingletons } from './server-singletons.js';
import { engineTls, natsLogin, warnOnOtherRootKeys } from './server-cluster.js';
import { registerObserveRoutes } from './server-observe.js';
import { deviceGateways } from './server-gateways.js';

import type { BulwarkServer, ServerDeps } from './server-types.js';

export type { BulwarkServer, FirstStart, ServerDeps } from './server-types.js';
export const VERSION = '0.1.0';

/**
 * Builds the whole platform without opening a port: opens and migrates the store, loads
 * the secret vault, bootstraps the first admin, and wires every context's routes.
 */
export async function buildServer(config: ServerConfig, deps: ServerDeps = {}): Promise<BulwarkServer> {
  const clock = deps.clock ?? systemClock;
  const ids = deps.ids ?? randomIds;
  const privateLogs = serverLogger(config, deps);
  const logger = privateLogs.logger;
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  const nodeId = loadOrCreateNodeId(dataDir, config.nodeId);
  const metrics = createMetrics();
  // The cluster engines first: one that does not answer fails the start before the store is touched.
  const tls = engineTls(config.cluster);
  const sharedCounters =
    deps.counters === undefined && config.counters !== 'memory' ? await RedisCounterStore.connect(config.counters, { clock, log: logger, onFallback: (operation) => metrics.countersFallback.inc({ operation }), ...(tls ? { tls } : {}) }) : undefined;
  let cluster: ClusterMembership | undefined;
  let opened: Store | undefined;
  let streams: TelemetryStreams | undefined;
  let copyWriter: PostgresTelemetryCopy | undefined;
  let platformKeys: PlatformKeys | undefined;
  try {
    // Cluster mode: NATS carries the events to every node, and the session directory.
    cluster =
      config.bus === 'memory'
        ? undefined
        : await ClusterMembership.join({ servers: config.bus, nodeId, version: VERSION, log: logger, metrics, leaseMs: config.cluster.leaseMs, replicas: config.cluster.replicas, ...(tls ? { tls } : {}), ...natsLogin(config.cluster) });
    const target = parseStoreUrl(config.store, dataDir);
    const store = await openStore(deps.pgSchema === undefined ? target : { ...target, schema: deps.pgSchema }, clock);
    opened = store;
    platformKeys = await openPlatformKeys(config, dataDir, logger);
    const { masterKeySource } = platformKeys;
    const vault = await SecretVault.open(store.secrets, masterKeySource, {
      clock,
      ids,
      log: logger,
      onMissingKey: (id) => metrics.masterKeyMissing.inc({ master_key_id: id }),
      // A rotation must not leave a live node unable to open the data keys: each announces the keys it holds.
      ...(cluster ? { nodesLacking: async (id: string) => (cluster ? await cluster.nodes() : []).filter((n) => n.alive && n.id !== nodeId && !n.masterKeyIds?.includes(id)).map((n) => n.id) } : {}),
    });
    const tokenKeys = await TokenKeyRing.open(vault, clock, config.auth.accessTokenTtlMs);

    const checkpointKeys = vaultCheckpointKeys(vault);
    const checkpointFile = config.audit.checkpointFile === '' ? join(dataDir, 'audit-checkpoints.jsonl') : resolve(config.audit.checkpointFile);
    const audit = new AuditService(store.audit, clock, () => metrics.auditEntries.inc(), checkpointKeys);
    const counters = deps.counters ?? sharedCounters ?? new MemoryCounterStore(clock);
    const throttle = new Throttle(counters, { ...config.rateLimit, ...config.auth }, clock);

    const bus: EventBus = cluster ? cluster.bus : new MemoryBus(logger);
    const access = new AccessService({
      principals: store.principals,
      apiKeys: store.apiKeys,
      clock,
      ids,
      tokenKeys,
      accessTokenTtlMs: config.auth.accessTokenTtlMs,
      events: bus,
      ...(cluster ? { tickets: await KvStreamTickets.open(cluster.link, undefined, config.cluster.replicas) } : {}),
    });
    // Applications reading the telemetry stream with NATS credentials Bulwark issues (operator mode).
    const applications = buildApplications({
      repo: store.applications,
      access,
      bus,
      clock,
      ids,
      log: logger,
      cluster: config.cluster,
      ...(cluster ? { nats: { servers: config.bus, link: cluster.link, ...(tls ? { tls } : {}) } } : {}),
    });
    const registry = new RegistryService(store.devices, clock, bus, config.twin.driftThresholdMs, nodeId);
    const privacy = await wirePrivacy(config, { vault, registry, log: privateLogs });
    const countsFolder = new CountsFolder(store.devices, config.registry.countsFoldIntervalMs, logger);
    const groups = new GroupService(store.groups, clock);
    // No MQTT session survives a restart of its node; in a cluster the other nodes' sessions stay.
    if (cluster) await registry.markNodeOffline('node_restarted');
    else await registry.markAllOffline('server_restarted');
    const authority = await loadOrCreateAuthority(store.identity, platformKeys.caKeys(vault), clock, logger);
    const manufacturers = new ManufacturerCas(store.identity, { clock, ids, bus });
    await manufacturers.load();
    const identity = new IdentityService(store.identity, registry, authority, config.identity, manufacturers, {
      clock,
      ids,
      bus,
      log: logger,
      audit: async (action, actor, target, details) => {
        await audit.record({ actor, action, target, result: 'ok', requestId: null, source: null, details });
      },
    });
    await identity.start();
    caMetrics(metrics.registry, { authority, crls: () => identity.crlPem });
    const schemas = new SchemaService(store.schemas, clock);
    const pseudonymKey = await vault.getOrCreate('telemetry.pseudonym-key', () => globalThis.crypto.getRandomValues(Buffer.alloc(32)));
    // Cluster mode: readings are acknowledged into the replicated telemetry stream; store writers, live streams and integrations read it.
    const tracer = await createTracer(config.tracing, { node: nodeId, version: VERSION, clock, log: logger, metrics: metrics.registry, store });
    streams = cluster ? await TelemetryStreams.open(cluster, { replicas: config.cluster.replicas, ...config.stream }, { log: logger, registry: metrics.registry, tracer }) : undefined;
    const ingest = new IngestService(
      store.telemetry,
      schemas,
      config.ingest,
      { pseudonymKey, encrypt: (v, c) => vault.encryptValue(v, c), decrypt: (t, c) => vault.decryptValue(t, c) },
      {
        clock,
        ids,
        log: logger,
        metrics: metrics.registry,
        ...(streams ? { sink: streams.sink } : {}),
      },
    );
    if (streams) {
      streams.fanOutTo(ingest);
      copyWriter = new PostgresTelemetryCopy({ url: target.location, ...(deps.pgSchema !== undefined ? { schema: deps.pgSchema } : {}), maxConnections: config.stream.writerConnections });
      streams.runWriters(copyWriter, (d) => store.telemetry.insertDeadLetter(d), { batchMax: config.stream.writerBatchMax, maxPending: config.stream.writerMaxPending, lingerMs: config.stream.writerLingerMs });
    }
    // Dead letters an older version stored in clear are sealed before anything can list them.
    await ingest.protectClearDeadLetters();
    const retention = new RetentionJob(store.telemetry, schemas, config.telemetry, {
      clock,
      log: logger,
      receipt: async (r) => {
        await audit.record({ actor: 'system', action: 'telemetry.delete', target: r.what, result: 'ok', requestId: null, source: null, details: { ...r } });
      },
    });
    // Webhooks read the store's feed of stored readings; the `webhooks` singleton delivers them.
    const webhooks = buildWebhooks(config.webhooks, {
      repo: store.webhooks,
      // Cluster mode: the stream, whose sequence orders what several store writers commit in any order.
      feed: streams?.feed ?? store.telemetryFeed,
      feedName: streams ? 'stream:telemetry' : `store:${store.engine}`,
      clock,
      ids,
      log: logger,
      metrics: metrics.registry,
      version: VERSION,
      devicesWithTag: async (tag, after, limit) => (await registry.list({ tag, limit, ...(after !== undefined ? { after } : {}) })).map((d) => d.id),
      devicesInGroups: async (ids) => [...(await deviceSet(registry, { within: await groups.selectors(ids) }))],
      seal: (v, c) => vault.encryptValue(v, c),
      open: (t, c) => vault.decryptValue(t, c),
      audit: (action, target, details) => audit.record({ actor: 'system', action, target, result: 'ok', requestId: null, source: null, details }).then(() => undefined),
      ...privacy.webhooks,
    });
    // Alerts: evaluated on the node that accepts a reading or holds a session; notified by the `alert-notifier` singleton.
    const alerts = await wireAlerts(config, { store, bus, clock, ids, log: logger, metrics: metrics.registry, schemas, registry, ingest, webhooks, vault, audit, groups });
    // Embedded mode: a reading stored here wakes idle delivery loops (a cluster's loops poll).
    if (!cluster) ingest.onStored(() => webhooks.dispatcher.notify());
    // On PostgreSQL (a cluster, or one node there, e.g. after `bulwark store migrate`): images in
    // the database, each node serving from its own verified copy; on SQLite: files.
    const sharedImages = store.firmwareImages ? new SharedArtifactStore(store.firmwareImages, store.firmware, dataDir, { log: logger, onFetch: (result) => metrics.firmwareCacheFetches.inc({ result }) }) : undefined;
    await sharedImages?.sweep();
    const firmware = new FirmwareService(
      store.firmware,
      sharedImages ?? new ArtifactStore(dataDir),
      {
        rootKeysFile: config.ota.rootKeysFile ?? join(dataDir, 'firmware-root.json'),
        artifactMaxBytes: config.ota.artifactMaxBytes,
        minSecurityVersion: config.ota.minSecurityVersion,
      },
      { clock, ids, log: logger },
    );
    cluster?.announceKeys(() => ({ masterKeyIds: vault.masterKeyIds, firmwareRootId: firmware.rootKeysId() }));
    // Every path to a device's live session goes through one table: admission, takeover, kicks, delivery.
    let drain: NodeDrain | undefined;
    const sessions: SessionTable = cluster
      ? await cluster.sessionTable(
          { identity, registry, bus, log: logger },
          async (gone, decidedAt) => {
            metrics.nodesGone.inc();
            await registry.markNodeOffline('node_lease_expired', gone, decidedAt);
          },
          () => drain?.draining === true,
        )
      : new LocalSessionTable({ identity, registry, bus, log: logger });
    // Rolling restarts: an operator drains a node through any node's API; the bus tells it.
    const nodeDrain = (drain = new NodeDrain(sessions, logger, config.cluster.drainLeaveMs));
    bus.subscribe('node.drain', (e) => {
      if (e.nodeId === nodeId) nodeDrain.start(e.spreadMs);
    });
    const deviceLink = {
      isConnected: (id: string) => sessions.isConnected(id),
      isHere: (id: string) => sessions.isHere(id),
      publish: (id: string, topic: string, message: object, options?: DeliveryOptions) => sessions.publishToDevice(id, topic, Buffer.from(JSON.stringify(message)), 1, options),
    };
    const rollouts = new RolloutService(store.rollouts, firmware, registry, config.ota, {
      clock,
      ids,
      log: logger,
      health: store.health,
      telemetry: store.telemetry,
      link: deviceLink,
      groups,
      onStop: (r) => {
        alerts.fleet.rollout(r.id, r.state, r.reason);
        void audit.record({ actor: 'system', action: `rollout.${r.state}`, target: r.id, result: 'ok', requestId: null, source: null, details: { reason: r.reason } }).catch((err: unknown) => logger.error({ err }, 'could not audit the rollout change'));
      },
    });
    const deviceOps = buildDeviceOps(config, {
      ota: rollouts,
      store,
      registry,
      bus,
      counters,
      clock,
      ids,
      log: logger,
      metrics,
      link: deviceLink,
      onHealthReport: (deviceId, report) => alerts.fleet.reported(deviceId, report),
    });
    // Jobs decommission through end of life, which cancels job entries: bound once both exist.
    const late: { endOfLife?: EndOfLifeService } = {};
    const jobs = wireJobs(config, {
      store,
      registry,
      groups,
      deviceOps,
      audit,
      clock,
      ids,
      log: logger,
      decommission: async (id, by) => void (await late.endOfLife?.decommission(id, 'keep', by)),
    });
    const checkOwner = ownerCheck({ principalExists: async (id) => (await store.principals.get(id)) !== undefined, groupExists: async (id) => (await store.groups.get(id)) !== undefined });
    const eol = await wireEndOfLife({ store, registry, identity, groups, jobs, deviceOps, bus, audit, vault, dataDir, pseudonymKey, checkOwner, clock, ids, log: logger, streams });
    late.endOfLife = eol.endOfLife;
    const { mqtt, coap, deviceHttps } = deviceGateways(config, { identity, registry, bus, clock, log: logger, metrics: metrics.registry, ingest, inbox: deviceOps.inbox, sessions, tracer, firmware: rollouts });

    const bootstrapped = await access.bootstrap(config.bootstrapAdminKey);
    let adminKeyFile: string | undefined;
    if (bootstrapped) {
      // A generated key goes to a 0600 file, never to standard output; a preset one is the operator's already.
      if (config.bootstrapAdminKey === undefined) adminKeyFile = saveAdminKey(dataDir, bootstrapped.keyText);
      await audit.record({
        actor: 'system',
        action: 'platform.bootstrap',
        target: bootstrapped.principal.id,
        result: 'ok',
        requestId: null,
        source: null,
        details: { adminKeyPreset: config.bootstrapAdminKey !== undefined, ...(adminKeyFile ? { adminKeyFile } : {}) },
      });
    }

    const apiTlsMaterial = await apiTls(config.http, authority, dataDir, clock.now());
    const { app, routes } = await createHttpApp({
      logger,
      bodyLimitBytes: config.http.bodyLimitBytes,
      trustedProxies: config.http.trustedProxies
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean),
      metrics,
      version: VERSION,
      ...(apiTlsMaterial ? { tls: apiTlsMaterial } : {}),
    });
    app.addHook('onRequest', makeGuard(access, throttle, metrics, groups));
    const liveStreams = new LiveStreams({ bus, stillValid: (a) => access.stillValid(a), clock, log: logger, closed: metrics.liveStreamsClosed, tokenTtlMs: config.auth.accessTokenTtlMs });
    liveStreams.attach(app);
    app.addHook('onSend', makeAuditHook(audit, metrics, logger));
    const listNodes = await registerObserveRoutes(app, {
      clock,
      nodeId,
      version: VERSION,
      metrics,
      logger,
      bus,
      ...(cluster ? { cluster } : {}),
      here: () => ({ sessions: sessions.localCount, leads: singletons.map(([name]) => name), draining: nodeDrain.draining, masterKeyIds: vault.masterKeyIds, firmwareRootId: firmware.rootKeysId() }),
      ready: {
        store,
        missingMasterKeys: () => vault.missingMasterKeys(),
        draining: () => nodeDrain.draining,
        ...(cluster ? { bus: () => cluster?.link.connected === true } : {}),
        ...(streams ? { writerLag: () => streams?.lag } : {}),
      },
    });
    await app.register(accessRoutes, {
      access,
      throttle,
      clock,
      groups,
      onAuthFailure: (reason, locked) => {
        metrics.authFailures.inc({ reason });
        if (locked) metrics.lockouts.inc({ kind: locked });
        // Held back (429) for the attempts under way, not failed: a rate limit too.
        if (reason === 'attempts_in_flight') metrics.rateLimited.inc({ per: 'exchange' });
      },
    });
    await app.register(auditRoutes, { audit });
    const checklist = wireChecklist({ store, config, audit, authority, clock, checkpointFile });
    await app.register(checklistRoutes, { checklist });
    await app.register(applicationRoutes, { applications: applications.service, access });
    await app.register(secretsRoutes, { vault, tokenKeys });
    await app.register(registryRoutes, { registry, groups, checkOwner });
    await app.register(groupRoutes, { groups });
    await app.register(identityRoutes, { identity, registry, throttle, checkOwner, onEnrollFailure: () => metrics.authFailures.inc({ reason: 'invalid_claim_token' }) });
    await app.register(manufacturerRoutes, { manufacturers, identity });
    await app.register(caRoutes, { identity });
    await app.register(schemaRoutes, { schemas });
    await app.register(ingestRoutes, { ingest, registry, groups, liveQueueLimit: 1000, liveDropped: metrics.liveDropped, retention, openValue: (t, c) => vault.decryptValue(t, c) });
    await app.register(tracingRoutes, { traces: store.traces, tracer });
    await app.register(replayRoutes, { replays: streams && copyWriter ? new StreamReplays(streams.feed, copyWriter, { clock, ids, log: logger }) : undefined });
    await app.register(exportRoutes, { groups, exporter: new TelemetryExporter({ source: store.telemetryExport, schemas, registry, clock, openValue: (t, c) => vault.decryptValue(t, c), ...privacy.exports }) });
    await deviceOps.register(app);
    await app.register(otaRoutes, { firmware, rollouts });
    await app.register(jobRoutes, { jobs });
    await app.register(lifecycleRoutes, { endOfLife: eol.endOfLife, signer: eol.signer });
    await app.register(webhookRoutes, { webhooks: webhooks.service });
    await app.register(privacyRoutes, { privacy: privacy.service });
    const targets = { allowHttp: config.webhooks.allowHttp, allowPrivateTargets: config.webhooks.allowPrivateTargets };
    await app.register(alertRoutes, {
      alerts: alerts.service,
      runbookBaseUrl: config.alerts.runbookBaseUrl,
      newSecret,
      emailReady: () => config.alerts.smtpUrl !== '',
      groups,
      checkChannelUrl: async (url) => void (await resolveTarget(checkUrl(url, targets).hostname, targets)),
    });
    await app.register(dashboardRoutes, {});
    await app.ready();

    let started = false;
    let mqttPort = 0;
    let deviceHttpPort = 0;
    let coapPort = 0;
    const checkpoints =
      config.audit.checkpointIntervalMs > 0
        ? new AuditCheckpointWriter({ repo: store.audit, keys: checkpointKeys, clock, log: logger, intervalMs: config.audit.checkpointIntervalMs, file: checkpointFile, refused: () => metrics.auditCheckpointRefusals.inc() })
        : undefined;
    // Jobs that must run once in the whole platform: on this process in embedded mode, under a lease in a cluster.
    const singletons = platformSingletons({
      otaTickIntervalMs: config.ota.tickIntervalMs,
      rollouts,
      countsFolder,
      identity,
      jobs,
      retention,
      deviceSweep: deviceOps,
      checkpoints,
      webhooks: webhooks.dispatcher,
      alertNotifier: alerts.notifier,
      alertSweep: alerts.sweep,
    });
    return {
      app,
      config,
      store,
      metrics,
      access,
      audit,
      vault,
      routes,
      bus,
      registry,
      groups,
      identity,
      schemas,
      ingest,
      mqtt,
      deviceOps,
      ota: { firmware, rollouts },
      jobs,
      webhooks,
      alerts,
      liveStreams,
      get mqttPort() {
        return mqttPort;
      },
      get deviceHttpPort() {
        return deviceHttpPort;
      },
      get coapPort() {
        return coapPort;
      },
      nodeId,
      cluster,
      streams,
      nodes: listNodes,
      apiCaFile: apiTlsMaterial?.caFile,
      firstStart: { adminKey: bootstrapped?.keyText, adminKeyFile, masterKeyCreatedAt: vault.createdMasterKey && masterKeySource.kind === 'file' ? masterKeySource.path : undefined },
      async start() {
        liveStreams.start();
        tracer.start();
        await applications.start();
        const url = await app.listen({ host: config.http.host, port: config.http.port });
        started = true;
        if (mqtt) mqttPort = await mqtt.start();
        if (deviceHttps) deviceHttpPort = await deviceHttps.start();
        if (coap) coapPort = await coap.start();
        if (cluster) {
          for (const [name, job] of singletons) cluster.singleton(name, job);
          await cluster.start();
          await warnOnOtherRootKeys(cluster, nodeId, firmware.rootKeysId(), logger);
        } else {
          for (const [, job] of singletons) await job.start();
        }
        return url;
      },
      async stop() {
        liveStreams.stop();
        applications.stop();
        nodeDrain.stop();
        identity.stop();
        if (cluster) await cluster.stopSingletons();
        else for (const [, job] of singletons) await job.stop();
        await rollouts.idle();
        if (mqtt) await mqtt.stop();
        if (deviceHttps) await deviceHttps.stop();
        if (coap) await coap.stop();
        await ingest.drain();
        await registry.flushConnectivity();
        // After the last readings and disconnects: what they fired or resolved is written.
        await alerts.stop();
        webhooks.delivery.close();
        if (started || app.server.listening) await app.close();
        else await app.close().catch(() => undefined);
        await streams?.stop();
        await tracer.stop();
        if (cluster) await cluster.leave();
        else await bus.close();
        await copyWriter?.close();
        await sharedCounters?.close();
        await audit.flush();
        await store.close();
        platformKeys?.close();
      },
    };
  } catch (err) {
    await cluster?.leave().catch(() => undefined);
    await copyWriter?.close().catch(() => undefined);
    await sharedCounters?.close().catch(() => undefined);
    await opened?.close().catch(() => undefined);
    platformKeys?.close();
    throw err;
  }
}
