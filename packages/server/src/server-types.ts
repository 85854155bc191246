import type { JobService } from './jobs/index.js';
import type { Clock, IdGen } from '@bulwark/core';
import type { FastifyInstance } from 'fastify';
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import type { AccessService, CounterStore } from './access/index.js';
import type { AuditService } from './audit/index.js';
import type { EventBus } from './bus/index.js';
import type { ClusterMembership, ClusterNode } from './cluster/index.js';
import type { ServerConfig } from './config/index.js';
import type { DeviceOps } from './device-ops.js';
import type { MqttGateway } from './gateway/mqtt/gateway.js';
import type { RouteInfo } from './http/app.js';
import type { LiveStreams } from './http/live-streams.js';
import type { IdentityService } from './identity/index.js';
import type { IngestService } from './ingest/index.js';
import type { Metrics } from './observe/metrics.js';
import type { FirmwareService, RolloutService } from './ota/index.js';
import type { GroupService, RegistryService } from './registry/index.js';
import type { SchemaService } from './schemas/index.js';
import type { SecretVault } from './secrets/index.js';
import type { Store } from './store/index.js';
import type { TelemetryStreams } from './stream/index.js';
import type { Webhooks } from './webhooks/index.js';
import type { Alerts } from './alerts/index.js';

/** What buildServer returns and takes besides its config (server.ts builds it). */
export interface ServerDeps {
  readonly clock?: Clock;
  readonly ids?: IdGen;
  /** A pino logger; default: JSON to stdout at config.log.level. */
  readonly logger?: PinoLogger;
  /** Where the default logger writes (tests read the lines a real server writes); default: stdout. */
  readonly logDestination?: DestinationStream;
  /** Counters for rate limits and lock-outs; default: in memory. */
  readonly counters?: CounterStore;
  /** PostgreSQL schema to use (tests isolate themselves this way). */
  readonly pgSchema?: string;
}

/** What happened on this start that the operator must be told once. */
export interface FirstStart {
  /**
   * The admin key created on the first start; undefined on every later start. For callers
   * in this process (tests, tools): never print it, standard output ends up in log files.
   */
  readonly adminKey: string | undefined;
  /**
   * Where the first start wrote the admin key it generated (`<data>/admin.key`, mode 0600).
   * Undefined on every later start, and when BULWARK_BOOTSTRAP_ADMIN_KEY provided the key.
   */
  readonly adminKeyFile: string | undefined;
  /** Path of a master key file created on this start. */
  readonly masterKeyCreatedAt: string | undefined;
}

export interface BulwarkServer {
  readonly app: FastifyInstance;
  readonly config: ServerConfig;
  readonly store: Store;
  readonly metrics: Metrics;
  readonly access: AccessService;
  readonly audit: AuditService;
  readonly vault: SecretVault;
  readonly bus: EventBus;
  readonly registry: RegistryService;
  readonly groups: GroupService;
  readonly identity: IdentityService;
  readonly schemas: SchemaService;
  readonly ingest: IngestService;
  /** Twin, commands, remote logs and health. */
  readonly deviceOps: DeviceOps;
  /** Firmware artifacts and rollouts. */
  readonly ota: { readonly firmware: FirmwareService; readonly rollouts: RolloutService };
  readonly jobs: JobService;
  /** Webhook subscriptions, their delivery loops, and signed delivery for other senders (alerts). */
  readonly webhooks: Webhooks;
  readonly alerts: Alerts;
  /** The MQTT gateway, when enabled. */
  readonly mqtt: MqttGateway | undefined;
  /** Open live streams, closed when their credentials are revoked or expire. */
  readonly liveStreams: LiveStreams;
  readonly firstStart: FirstStart;
  /** With http.tls and a certificate from the platform's CA: the file holding the CA chain clients trust. */
  readonly apiCaFile: string | undefined;
  /** This node's id (stable across restarts). */
  readonly nodeId: string;
  /** Cluster mode: this node's membership (undefined in embedded mode). */
  readonly cluster: ClusterMembership | undefined;
  /** Cluster mode: the telemetry stream between acknowledgement and the store (undefined in embedded mode). */
  readonly streams: TelemetryStreams | undefined;
  /** The nodes of the cluster (embedded mode: this one). */
  nodes(): Promise<ClusterNode[]>;
  /** Every route with its auth rule and schemas (for docs and the route-table tests). */
  readonly routes: readonly RouteInfo[];
  /** Starts listening; resolves with the base URL of the HTTP API. */
  start(): Promise<string>;
  /** The port the MQTT gateway listens on, once started (0 when disabled). */
  readonly mqttPort: number;
  /** The port the device HTTPS listener listens on, once started (0 when disabled). */
  readonly deviceHttpPort: number;
  /** The UDP port of CoAP ingest, once started (0 when disabled). */
  readonly coapPort: number;
  stop(): Promise<void>;
}
