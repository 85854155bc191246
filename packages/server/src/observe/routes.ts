import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bearer, errorResponses } from '../http/schemas.js';
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
  readonly nodeId: string;
}

const ClusterNodeSchema = Type.Object({
  id: Type.String(), version: Type.String(), startedAt: Type.Integer(), heartbeatAt: Type.Integer(), sessions: Type.Integer(),
  leads: Type.Array(Type.String()), alive: Type.Boolean(), draining: Type.Boolean(),
});

/** Liveness, readiness, Prometheus metrics and platform info. */
export const observeRoutes: FastifyPluginAsyncTypebox<ObserveRouteDeps> = async (app, { metrics, ready, info, now, nodes, mode, nodeId }) => {
  app.get('/healthz', {
    config: { auth: { public: true } },
    schema: { tags: ['observe'], summary: 'Liveness: the process is serving', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
  }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', {
    config: { auth: { public: true } },
    schema: {
      tags: ['observe'], summary: 'Readiness: every dependency answers',
      response: { 200: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) }), 503: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) }) },
    },
  }, async (_request, reply) => {
    const r = await ready();
    return reply.code(r.ok ? 200 : 503).send({ status: r.ok ? 'ready' : 'not ready', checks: r.checks });
  });

  app.get('/metrics', {
    config: { auth: { loopbackOrScope: 'metrics:read' } },
    schema: { tags: ['observe'], summary: 'Prometheus metrics (open on loopback; elsewhere needs metrics:read)', security: bearer, response: errorResponses },
  }, async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text as never);
  });

  app.get('/api/v1/time', {
    config: { auth: { public: true } },
    schema: {
      tags: ['observe'], summary: 'NTP-style time over HTTP: send your clock as t0, get the receive (t1) and transmit (t2) times in milliseconds',
      querystring: Type.Object({ t0: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })) }, { additionalProperties: false }),
      response: { 200: Type.Object({ t0: Type.Union([Type.Integer(), Type.Null()]), t1: Type.Integer(), t2: Type.Integer() }), ...errorResponses },
    },
  }, async (request) => {
    const t1 = now();
    return { t0: request.query.t0 ?? null, t1, t2: now() };
  });

  app.get('/api/v1/system/info', {
    config: { auth: { authenticated: true } },
    schema: { tags: ['system'], summary: 'Version, store engine and uptime', security: bearer, response: { 200: Type.Record(Type.String(), Type.Union([Type.String(), Type.Number()])), ...errorResponses } },
  }, async () => info());

  app.get('/api/v1/cluster', {
    config: { auth: { scope: 'metrics:read' } },
    schema: {
      tags: ['system'], summary: 'The nodes of the cluster with their heartbeat, version, sessions held and the singletons they lead (embedded mode: this node alone)', security: bearer,
      response: { 200: Type.Object({ mode: Type.Union([Type.Literal('embedded'), Type.Literal('cluster')]), self: Type.String(), nodes: Type.Array(ClusterNodeSchema) }), ...errorResponses },
    },
  }, async () => ({ mode, self: nodeId, nodes: (await nodes()).map((n) => ({ ...n, leads: [...n.leads] })) }));
};
