import type { Setting } from './settings.js';

/**
 * The settings of how a node reaches the others and where shared state lives: the bus,
 * shared counters, cluster membership and TLS to NATS, the telemetry stream and its store
 * writers, draining and the node's id. SETTINGS lists them right after the store.
 */
export const CLUSTER_SETTINGS: readonly Setting[] = [
  {
    key: 'bus',
    type: 'string',
    default: 'memory',
    flag: '--bus',
    description:
      'Event bus between contexts and nodes: `memory` (in process, embedded mode) or NATS with JetStream, `nats://host:4222[,nats://host2:4222,…]` (`tls://` for TLS; a `user:password@` part is used to log in) (cluster mode; needs a postgres:// store). In cluster mode the bus also carries the session registry and deliveries to the node that holds a device.',
  },
  {
    key: 'counters',
    type: 'string',
    default: 'memory',
    flag: '--counters',
    description: 'Where rate-limit and lock-out counters live: `memory` (per process) or `redis://[user:password@]host:6379[/db]` (shared by every node). While Redis does not answer, each node counts on its own (counted in bulwark_counters_fallback_total).',
  },
  {
    key: 'cluster.leaseMs',
    type: 'integer',
    default: 15_000,
    min: 1_000,
    max: 300_000,
    description:
      "Cluster mode: how long a node's heartbeat and a singleton's lease stay valid. A node silent for longer is gone (the others clean its sessions); a singleton (rollout engine, retention, device-state sweep, CRL re-signing) moves to another node within it.",
  },
  {
    key: 'cluster.replicas',
    type: 'integer',
    default: 1,
    min: 1,
    max: 5,
    description:
      'Cluster mode: how many NATS servers keep a copy of each JetStream bucket Bulwark uses (session directory, node heartbeats, leases, stream tickets). 1 for a single NATS server; 3 for a 3-server NATS cluster, which then survives the loss of any one server. Set it before the first start: an existing bucket keeps the count it was made with.',
  },
  {
    key: 'cluster.tlsCaFile',
    type: 'string',
    default: undefined,
    description:
      "Cluster mode: PEM file of the CA(s) that signed the certificates of the NATS and Redis servers. With it the node speaks TLS to NATS (also implied by tls:// URLs in `bus`) and verifies the servers against it; `rediss://` counters use it too. Without it, tls:// and rediss:// verify against the system's CAs, and nats:// is plain TCP.",
  },
  { key: 'cluster.tlsCertFile', type: 'string', default: undefined, description: 'Cluster mode: PEM client certificate this node presents to NATS and Redis servers that require one (with cluster.tlsKeyFile).' },
  { key: 'cluster.tlsKeyFile', type: 'string', default: undefined, description: 'Cluster mode: PEM private key of cluster.tlsCertFile.' },
  {
    key: 'cluster.natsCredsFile',
    type: 'string',
    default: undefined,
    description:
      'Cluster mode with NATS in operator mode: the `.creds` file this node logs in to NATS with (`bulwark nats init` writes `bulwark-node.creds`, a user of the Bulwark account with full rights on it). Unset: no NATS login, or the one in the bus URL.',
  },
  {
    key: 'cluster.natsIssuerFile',
    type: 'string',
    default: undefined,
    description:
      'Cluster mode with NATS in operator mode: `nats-issuer.json` from `bulwark nats init` (mode 0600; a file others may read is refused). With it the node mints NATS credentials for applications reading the telemetry stream, and pushes the Bulwark account JWT with their revocations to the NATS servers. Unset: applications get no NATS credentials.',
  },
  {
    key: 'stream.maxAgeMs',
    type: 'integer',
    default: 604_800_000,
    min: 60_000,
    max: 31_536_000_000,
    description: 'Cluster mode: how long the telemetry stream keeps readings (after the store has them too: applications, webhooks and replays read them there). The store writer must catch up within it.',
  },
  {
    key: 'stream.maxBytes',
    type: 'integer',
    default: 4_294_967_296,
    min: 1_048_576,
    max: 1_099_511_627_776,
    description:
      'Cluster mode: bytes the telemetry stream may hold on each NATS server. The oldest (stored) readings make room for new ones; while readings the store has not taken yet fill 80 % of it (PostgreSQL away), new readings are refused (devices are not acknowledged and retry), so that none is pushed out unstored.',
  },
  {
    key: 'stream.duplicateWindowMs',
    type: 'integer',
    default: 120_000,
    min: 1_000,
    max: 86_400_000,
    description: 'Cluster mode: window in which the telemetry stream drops a reading whose device and message id it has seen (Nats-Msg-Id); later repeats are dropped by the store and by consumers.',
  },
  { key: 'stream.writerBatchMax', type: 'integer', default: 2_000, min: 1, max: 50_000, description: 'Cluster mode: most readings the store writer copies into PostgreSQL in one transaction (one stream acknowledgement per batch).' },
  { key: 'stream.writerMaxPending', type: 'integer', default: 4_000, min: 1, max: 100_000, description: 'Cluster mode: readings a store writer of one partition holds delivered and not yet stored (its memory bound); 8 partitions share the nodes.' },
  {
    key: 'stream.writerLingerMs',
    type: 'integer',
    default: 250,
    min: 0,
    max: 10_000,
    description:
      'Cluster mode: how long a store writer lets a batch grow before it writes it (a full batch goes at once). Fewer, larger transactions cost PostgreSQL less per reading; devices are acknowledged by the stream, so this delays only when readings show in queries.',
  },
  {
    key: 'stream.writerConnections',
    type: 'integer',
    default: 2,
    min: 1,
    max: 8,
    description:
      "Cluster mode: PostgreSQL connections a node's store writers share (its partitions' batches wait for one). More write in parallel and cost PostgreSQL more CPU per reading; 2 kept the writers at over 5× a 5,000 msg/s ingest on a 2-core machine.",
  },
  {
    key: 'cluster.drainLeaveMs',
    type: 'integer',
    default: 3_000,
    min: 0,
    max: 300_000,
    description: 'Draining a node: how long it reports not ready before it starts ending sessions, so that the load balancer has stopped sending it new ones (HAProxy: fall × inter of its health check).',
  },
  {
    key: 'nodeId',
    type: 'string',
    default: undefined,
    flag: '--node-id',
    description: 'This node\'s id in a cluster: 1-64 letters, digits, "-" or "_". Default: generated on the first start and kept in the data directory (node-id), so it is stable across restarts.',
  },
];
