import type { Clock } from '@bulwark/core';
import type { FastifyInstance } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import type { EventBus } from './bus/index.js';
import type { ClusterMembership, ClusterNode } from './cluster/index.js';
import type { Metrics } from './observe/metrics.js';
import { type ReadinessSources, readiness } from './observe/readiness.js';
import { observeRoutes } from './observe/routes.js';

export interface ObserveWiring {
  readonly clock: Clock;
  readonly nodeId: string;
  readonly version: string;
  readonly metrics: Metrics;
  readonly logger: PinoLogger;
  readonly bus: EventBus;
  readonly cluster?: ClusterMembership;
  /** What this node says of itself in embedded mode (in cluster mode its heartbeat says it). */
  readonly here: () => Pick<ClusterNode, 'sessions' | 'leads' | 'draining' | 'masterKeyIds' | 'firmwareRootId'>;
  readonly ready: ReadinessSources;
}

/**
 * The health, readiness, metrics, info and node routes; returns the node listing (the
 * cluster's nodes, or this one alone in embedded mode), which the dashboard's fleet view uses too.
 */
export async function registerObserveRoutes(app: FastifyInstance, w: ObserveWiring): Promise<() => Promise<ClusterNode[]>> {
  const { clock, nodeId, cluster } = w;
  const startedAt = clock.now();
  const listNodes = async (): Promise<ClusterNode[]> => (cluster ? cluster.nodes() : [{ id: nodeId, version: w.version, startedAt, heartbeatAt: clock.now(), alive: true, ...w.here() }]);
  await app.register(observeRoutes, {
    metrics: w.metrics,
    ready: readiness(w.ready, w.logger),
    now: () => clock.now(),
    nodes: listNodes,
    drain: async (id, spreadMs) => {
      const known = (await listNodes()).some((n) => n.id === id && n.alive);
      if (known) await w.bus.publish({ type: 'node.drain', nodeId: id, spreadMs });
      return known;
    },
    mode: cluster ? 'cluster' : 'embedded',
    nodeId,
    info: () => ({ version: w.version, store: w.ready.store.engine, bus: cluster ? 'nats' : 'memory', node: nodeId, startedAt, uptimeSeconds: Math.round((clock.now() - startedAt) / 1000) }),
  });
  return listNodes;
}
