import type { Logger } from '@bulwark/core';
import { NatsBus } from '../bus/index.js';
import type { Metrics } from '../observe/index.js';
import { ClusterSessionTable, type ClusterSessionTableDeps } from './cluster-sessions.js';
import { type EngineTls, NatsLink } from './nats.js';
import { type ClusterNode, ClusterNodes, type NodeKeys } from './nodes.js';
import { Leases, type SingletonJob } from './leases.js';

export { loadOrCreateNodeId } from './node-id.js';
export type { ClusterNode, NodeKeys } from './nodes.js';
export type { SingletonJob } from './leases.js';
export { type EngineTls, NatsLink, redactUrl, whileElecting } from './nats.js';

/** How long a node's heartbeat stays valid: past it, the others clean its sessions. */
export const DEFAULT_LEASE_MS = 15_000;

export interface ClusterOptions {
  readonly servers: string;
  readonly nodeId: string;
  readonly version: string;
  readonly log: Logger;
  readonly leaseMs?: number;
  readonly replicas?: number;
  readonly tls?: EngineTls;
  /** Text of the `.creds` file the node logs in with (NATS in operator mode). */
  readonly natsCreds?: string;
  readonly metrics?: Pick<Metrics, 'busEvents' | 'busMalformed'>;
}

/**
 * One node's membership of a cluster: its NATS connection, the bus over it, and (once the
 * contexts exist) its session table and heartbeat. Embedded mode has none of it.
 */
export class ClusterMembership {
  #sessions: ClusterSessionTable | undefined;
  #nodes: ClusterNodes | undefined;
  #keys: (() => NodeKeys) | undefined;
  readonly startedAt = Date.now();

  private constructor(
    readonly link: NatsLink,
    readonly bus: NatsBus,
    readonly leases: Leases,
    private readonly options: ClusterOptions,
  ) {}

  static async join(options: ClusterOptions): Promise<ClusterMembership> {
    const link = await NatsLink.connect(options.servers, `bulwark ${options.nodeId}`, options.log, options.tls, options.natsCreds);
    const { metrics } = options;
    const bus = new NatsBus(link, options.log, metrics && { received: (type) => metrics.busEvents.inc({ type }), malformed: () => metrics.busMalformed.inc() });
    // Trust changes missed while NATS was away: reload TLS contexts and forget admissions from the store's state.
    link.onReconnect(() => void bus.publishLocally({ type: 'trust.changed' }));
    const leases = await Leases.open(link, options.nodeId, { leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS, log: options.log, ...(options.replicas ? { replicas: options.replicas } : {}) });
    return new ClusterMembership(link, bus, leases, options);
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  /** The cluster session table; its directory is loaded before any device is admitted. */
  async sessionTable(deps: Omit<ClusterSessionTableDeps, 'link' | 'nodeId' | 'replicas'>, onNodeGone: (nodeId: string, decidedAt: number) => Promise<void>, draining: () => boolean): Promise<ClusterSessionTable> {
    const sessions = await ClusterSessionTable.open({ ...deps, link: this.link, nodeId: this.options.nodeId, ...(this.options.replicas ? { replicas: this.options.replicas } : {}) });
    await sessions.load();
    this.#sessions = sessions;
    this.#nodes = await ClusterNodes.open(
      this.link,
      { id: this.options.nodeId, version: this.options.version, startedAt: this.startedAt },
      {
        sessions: () => sessions.localCount,
        leads: () => this.leases.leads(),
        draining,
        keys: () => this.#keys?.() ?? {},
      },
      {
        leaseMs: this.options.leaseMs ?? DEFAULT_LEASE_MS,
        log: this.options.log,
        ...(this.options.replicas ? { replicas: this.options.replicas } : {}),
        onLeaseLost: () => sessions.reclaimAll(),
        onGone: async (nodeId, decidedAt) => {
          const forgotten = await sessions.directory.forgetNodes(new Set([nodeId]));
          this.options.log.info({ node: nodeId, sessions: forgotten }, 'claims of a gone node removed');
          await onNodeGone(nodeId, decidedAt);
        },
      },
    );
    for (const node of sessions.directory.countsByNode().keys()) this.#nodes.know(node);
    return sessions;
  }

  /** What this node publishes with its heartbeat about the keys it holds (fingerprints only). */
  announceKeys(keys: () => NodeKeys): void {
    this.#keys = keys;
  }

  /** Runs `job` on exactly one node of the cluster at a time (register before `start`). */
  singleton(name: string, job: SingletonJob): void {
    this.leases.add(name, job);
  }

  /** Runs `job`, one of a set of equal jobs the live nodes share evenly, on one node at a time. */
  sharedSingleton(name: string, job: SingletonJob): void {
    this.leases.addShared(name, job);
  }

  /** Starts beating and competing for the singletons (after the listeners are up). */
  async start(): Promise<void> {
    this.leases.countPeers(async () => (await this.nodes()).filter((n) => n.alive).length);
    await this.#nodes?.start();
    await this.leases.start();
  }

  /** Stops the singletons this node leads and hands their leases over. */
  async stopSingletons(): Promise<void> {
    await this.leases.stop();
  }

  async nodes(): Promise<ClusterNode[]> {
    return this.#nodes ? this.#nodes.list() : [];
  }

  /** Leaves the cluster: heartbeat removed, bus and connection closed. */
  async leave(): Promise<void> {
    await this.leases.stop();
    await this.#nodes?.stop();
    await this.#sessions?.close();
    await this.bus.close();
    await this.link.close();
  }
}
