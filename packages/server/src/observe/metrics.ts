import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per server instance (several run in one test process), with the metrics
 * every context shares. Contexts add their own through `registry`.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'bulwark_' });
  return {
    registry,
    httpRequests: new Counter({
      name: 'bulwark_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'bulwark_http_request_duration_seconds',
      help: 'HTTP request duration by route',
      labelNames: ['method', 'route'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    httpErrors: new Counter({
      name: 'bulwark_http_errors_total',
      help: 'HTTP error responses by error code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'bulwark_auth_failures_total',
      help: 'Failed authentications by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    lockouts: new Counter({
      name: 'bulwark_auth_lockouts_total',
      help: 'Addresses, or key ids tried from one address (kind address_key), locked out after repeated failed authentication',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'bulwark_rate_limited_total',
      help: 'Requests refused by a rate limit (per: address, principal, or exchange: too many key exchanges under way at once)',
      labelNames: ['per'] as const,
      registers: [registry],
    }),
    liveDropped: new Counter({ name: 'bulwark_live_dropped_total', help: 'Readings dropped for live subscribers that read too slowly', registers: [registry] }),
    liveStreamsClosed: new Counter({
      name: 'bulwark_live_streams_closed_total',
      help: 'Live streams (SSE, WebSocket) the platform closed because their credentials were revoked or had expired, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    auditEntries: new Counter({ name: 'bulwark_audit_entries_total', help: 'Audit log entries written', registers: [registry] }),
    countersFallback: new Counter({
      name: 'bulwark_counters_fallback_total',
      help: 'Counter operations (rate limits, lock-outs) done on this node because Redis did not answer',
      labelNames: ['operation'],
      registers: [registry],
    }),
    busEvents: new Counter({ name: 'bulwark_bus_events_received_total', help: 'Platform events received from other nodes over NATS', labelNames: ['type'], registers: [registry] }),
    busMalformed: new Counter({ name: 'bulwark_bus_events_malformed_total', help: 'Messages on the event subjects that were not a platform event (ignored)', registers: [registry] }),
    nodesGone: new Counter({ name: 'bulwark_cluster_nodes_gone_total', help: 'Nodes whose lease expired; their sessions were cleaned by this node', registers: [registry] }),
    firmwareCacheFetches: new Counter({
      name: 'bulwark_firmware_cache_fetches_total',
      help: "Firmware images fetched from the shared store into this node's cache, by result (fetched, corrupt, missing)",
      labelNames: ['result'],
      registers: [registry],
    }),
    auditFailures: new Counter({ name: 'bulwark_audit_write_failures_total', help: 'Audit entries that could not be written', registers: [registry] }),
    auditCheckpointRefusals: new Counter({ name: 'bulwark_audit_checkpoint_refusals_total', help: "Checkpoints not signed because the chain no longer holds the last checkpoint's entry (rewritten or cut short)", registers: [registry] }),
    masterKeyMissing: new Counter({
      name: 'bulwark_master_key_missing_total',
      help: "Data keys refused because they are wrapped by a master key this node does not hold, by that key's id (a fingerprint)",
      labelNames: ['master_key_id'],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
