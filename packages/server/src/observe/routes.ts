import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bearer, errorResponses } from '../http/index.js';
import { PlatformError } from '@bulwark/core';
import type { ClusterNode } from '../cluster/index.js';
import type { Metrics } from './metrics.js';

export interface ObserveRouteDeps {
  readonly metrics: Metrics;
  readonly ready: () => Promise<{ ok: boolean; checks: Record<string, string> }>;
  readonly info: () => Record<string, string | number>;
  readonly now: () => number;
  /** The cluster's nodes (embedded mode: this one). */
  readonly nodes: () => Promise<ClusterNode[]>;
  readonly mode: 'embedded' | 'cluster';
  /** Asks node `id` to drain; false when no live node has that id. */
  readonly drain: (id: string, spreadMs: number) => Promise<boolean>;
  readonly nodeId: string;
}

const ClusterNodeSchema = Type.Object({
  id: Type.String(),
  version: Type.String(),
  startedAt: Type.Integer(),
  heartbeatAt: Type.Integer(),
  sessions: Type.Integer(),
  leads: Type.Array(Type.String()),
  alive: Type.Boolean(),
  draining: Type.Boolean(),
  natsServer: Type.Optional(Type.String({ description: 'The NATS server the node is connected to (cluster mode)' })),
  masterKeyIds: Type.Optional(Type.Array(Type.String(), { description: 'Fingerprints of the master keys the node holds (never the keys)' })),
  firmwareRootId: Type.Optional(Type.String({ description: "Fingerprint of the node's firmware root key set (`none` without one): the same on every node" })),
});

/** Liveness, readiness, Prometheus metrics and platform info. */
export const observeRoutes: FastifyPluginAsyncTypebox<ObserveRouteDeps> = async (app, { metrics, ready, info, now, nodes, mode, nodeId, drain }) => {
  app.get(
    '/healthz',
    {
      config: { auth: { public: true } },
      schema: { tags: ['observe'], summary: 'Liveness: the process is serving', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      config: { auth: { public: true } },
      schema: {
        tags: ['observe'],
        summary: 'Readiness: every dependency answers',
        response: { 200: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) }), 503: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) }) },
      },
    },
    async (_request, reply) => {
      const r = await ready();
      return reply.code(r.ok ? 200 : 503).send({ status: r.ok ? 'ready' : 'not ready', checks: r.checks });
    },
  );

  app.get(
    '/metrics',
    {
      config: { auth: { loopbackOrScope: 'metrics:read' } },
      schema: { tags: ['observe'], summary: 'Prometheus metrics (open on loopback; elsewhere needs metrics:read)', security: bearer, response: errorResponses },
    },
    async (_request, reply) => {
      const text = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(text as never);
    },
  );

  app.get(
    '/api/v1/time',
    {
      config: { auth: { public: true } },
      schema: {
        tags: ['observe'],
        summary: 'NTP-style time over HTTP: send your clock as t0, get the receive (t1) and transmit (t2) times in milliseconds',
        querystring: Type.Object({ t0: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ t0: Type.Union([Type.Integer(), Type.Null()]), t1: Type.Integer(), t2: Type.Integer() }), ...errorResponses },
      },
    },
    async (request) => {
      const t1 = now();
      return { t0: request.query.t0 ?? null, t1, t2: now() };
    },
  );

  app.get(
    '/api/v1/system/info',
    {
      config: { auth: { authenticated: true }, groupLimit: 'none' },
      schema: { tags: ['system'], summary: 'Version, store engine and uptime', security: bearer, response: { 200: Type.Record(Type.String(), Type.Union([Type.String(), Type.Number()])), ...errorResponses } },
    },
    async () => info(),
  );

  app.get(
    '/api/v1/cluster',
    {
      config: { auth: { scope: 'metrics:read' } },
      schema: {
        tags: ['system'],
        summary: 'The nodes of the cluster with their heartbeat, version, sessions held and the singletons they lead (embedded mode: this node alone)',
        security: bearer,
        response: { 200: Type.Object({ mode: Type.Union([Type.Literal('embedded'), Type.Literal('cluster')]), self: Type.String(), nodes: Type.Array(ClusterNodeSchema) }), ...errorResponses },
      },
    },
    async () => ({ mode, self: nodeId, nodes: (await nodes()).map(({ masterKeyIds, ...n }) => ({ ...n, leads: [...n.leads], ...(masterKeyIds ? { masterKeyIds: [...masterKeyIds] } : {}) })) }),
  );

  app.post(
    '/api/v1/cluster/nodes/:id/drain',
    {
      config: { auth: { scope: 'cluster:write' }, audit: 'cluster.drain' },
      schema: {
        tags: ['system'],
        security: bearer,
        summary: 'Drain a node for a rolling restart: it leaves the load balancer (/readyz 503), then ends its device sessions one by one over spreadS seconds; follow it with GET /api/v1/cluster, stop the node once it holds none',
        params: Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) }),
        body: Type.Optional(Type.Object({ spreadS: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })) }, { additionalProperties: false })),
        response: { 202: Type.Object({ nodeId: Type.String(), spreadS: Type.Integer() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const spreadS = request.body?.spreadS ?? 30;
      if (!(await drain(request.params.id, spreadS * 1000))) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no live node "${request.params.id}" in the cluster`);
      return reply.code(202).send({ nodeId: request.params.id, spreadS });
    },
  );
};
