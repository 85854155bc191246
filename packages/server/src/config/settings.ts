/**
 * The one configuration schema. Every setting has a dotted key, a type, a default, the
 * environment variable and (for the common ones) the flag that set it, and a description;
 * docs/reference/config.md is generated from this table.
 * Precedence: flags, then BULWARK_* environment variables, then the config file, then defaults.
 */
export type SettingType = 'string' | 'integer' | 'boolean' | 'enum';

export interface Setting {
  readonly key: string;
  readonly type: SettingType;
  readonly default: string | number | boolean | undefined;
  readonly description: string;
  readonly flag?: string;
  readonly min?: number;
  readonly max?: number;
  readonly values?: readonly string[];
  /** Secrets: only from the environment, never from a file or a flag (they would leak into shell history or backups). */
  readonly envOnly?: boolean;
}

export const envName = (key: string) => `BULWARK_${key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/\./g, '_').toUpperCase()}`;

export const SETTINGS: readonly Setting[] = [
  { key: 'dataDir', type: 'string', default: './.bulwark', flag: '--data', description: 'Directory for the SQLite store, the master key file and other local state. Created with mode 0700 if missing.' },
  { key: 'store', type: 'string', default: 'sqlite', flag: '--store', description: 'Where state lives: `sqlite` (bulwark.db in the data directory), `sqlite:<path>`, or a `postgres://user@host:port/db` URL.' },
  { key: 'bus', type: 'string', default: 'memory', flag: '--bus', description: 'Event bus between contexts and nodes: `memory` (in process, embedded mode) or NATS with JetStream, `nats://host:4222[,nats://host2:4222,…]` (`tls://` for TLS; a `user:password@` part is used to log in) (cluster mode; needs a postgres:// store). In cluster mode the bus also carries the session registry and deliveries to the node that holds a device.' },
  { key: 'counters', type: 'string', default: 'memory', flag: '--counters', description: 'Where rate-limit and lock-out counters live: `memory` (per process) or `redis://[user:password@]host:6379[/db]` (shared by every node). While Redis does not answer, each node counts on its own (counted in bulwark_counters_fallback_total).' },
  { key: 'cluster.leaseMs', type: 'integer', default: 15_000, min: 1_000, max: 300_000, description: 'Cluster mode: how long a node\'s heartbeat and a singleton\'s lease stay valid. A node silent for longer is gone (the others clean its sessions); a singleton (rollout engine, retention, device-state sweep, CRL re-signing) moves to another node within it.' },
  { key: 'cluster.replicas', type: 'integer', default: 1, min: 1, max: 5, description: 'Cluster mode: how many NATS servers keep a copy of each JetStream bucket Bulwark uses (session directory, node heartbeats, leases, stream tickets). 1 for a single NATS server; 3 for a 3-server NATS cluster, which then survives the loss of any one server. Set it before the first start: an existing bucket keeps the count it was made with.' },
  { key: 'cluster.tlsCaFile', type: 'string', default: undefined, description: 'Cluster mode: PEM file of the CA(s) that signed the certificates of the NATS and Redis servers. With it the node speaks TLS to NATS (also implied by tls:// URLs in `bus`) and verifies the servers against it; `rediss://` counters use it too. Without it, tls:// and rediss:// verify against the system\'s CAs, and nats:// is plain TCP.' },
  { key: 'cluster.tlsCertFile', type: 'string', default: undefined, description: 'Cluster mode: PEM client certificate this node presents to NATS and Redis servers that require one (with cluster.tlsKeyFile).' },
  { key: 'cluster.tlsKeyFile', type: 'string', default: undefined, description: 'Cluster mode: PEM private key of cluster.tlsCertFile.' },
  { key: 'stream.maxAgeMs', type: 'integer', default: 604_800_000, min: 60_000, max: 31_536_000_000, description: 'Cluster mode: how long the telemetry stream keeps readings (after the store has them too: applications, webhooks and replays read them there). The store writer must catch up within it.' },
  { key: 'stream.maxBytes', type: 'integer', default: 4_294_967_296, min: 1_048_576, max: 1_099_511_627_776, description: 'Cluster mode: bytes the telemetry stream may hold on each NATS server. When full, new readings are refused (devices are not acknowledged and retry), never old ones pushed out before the store has them.' },
  { key: 'stream.duplicateWindowMs', type: 'integer', default: 120_000, min: 1_000, max: 86_400_000, description: 'Cluster mode: window in which the telemetry stream drops a reading whose device and message id it has seen (Nats-Msg-Id); later repeats are dropped by the store and by consumers.' },
  { key: 'stream.writerBatchMax', type: 'integer', default: 2_000, min: 1, max: 50_000, description: 'Cluster mode: most readings the store writer copies into PostgreSQL in one transaction (one stream acknowledgement per batch).' },
  { key: 'stream.writerMaxPending', type: 'integer', default: 4_000, min: 1, max: 100_000, description: 'Cluster mode: readings a store writer of one partition holds delivered and not yet stored (its memory bound); 8 partitions share the nodes.' },
  { key: 'cluster.drainLeaveMs', type: 'integer', default: 3_000, min: 0, max: 300_000, description: 'Draining a node: how long it reports not ready before it starts ending sessions, so that the load balancer has stopped sending it new ones (HAProxy: fall × inter of its health check).' },
  { key: 'nodeId', type: 'string', default: undefined, flag: '--node-id', description: 'This node\'s id in a cluster: 1-64 letters, digits, "-" or "_". Default: generated on the first start and kept in the data directory (node-id), so it is stable across restarts.' },
  { key: 'http.host', type: 'string', default: '127.0.0.1', flag: '--http-host', description: 'Address the HTTP API and dashboard listen on. Loopback by default; expose it only behind TLS.' },
  { key: 'http.port', type: 'integer', default: 8080, min: 0, max: 65535, flag: '--http-port', description: 'Port of the HTTP API and dashboard; 0 picks a free port (printed at start).' },
  { key: 'http.bodyLimitBytes', type: 'integer', default: 1_048_576, min: 1024, max: 104_857_600, description: 'Largest request body accepted; larger bodies get 413 BULWARK_ERR_PAYLOAD_TOO_LARGE.' },
  { key: 'http.trustedProxies', type: 'string', default: '', description: 'Comma-separated addresses or CIDR ranges of reverse proxies you run. Only X-Forwarded-For hops added by these are believed; the client address decides per-address limits, lock-outs and loopback-only endpoints. Empty: never believe X-Forwarded-For.' },
  { key: 'http.allowInsecure', type: 'boolean', default: false, flag: '--http-allow-insecure', description: 'Allow the HTTP API (plain HTTP, no TLS yet) on a non-loopback address. Off: such an address is refused at start; put a TLS-terminating proxy in front instead.' },
  { key: 'auth.accessTokenTtlMs', type: 'integer', default: 900_000, min: 10_000, max: 86_400_000, description: 'Lifetime of an access token obtained from an API key.' },
  { key: 'auth.lockoutThreshold', type: 'integer', default: 10, min: 1, max: 10_000, description: 'Failed authentications from one address within the lock-out window that lock the address.' },
  { key: 'auth.keyLockoutThreshold', type: 'integer', default: 5, min: 1, max: 10_000, description: 'Failed key exchanges from one address for one key id within the lock-out window that stop that address trying that key (never more than auth.lockoutThreshold). A key is never locked for every address: its id is public.' },
  { key: 'auth.lockoutWindowMs', type: 'integer', default: 300_000, min: 1000, max: 86_400_000, description: 'Window in which failed authentications are counted.' },
  { key: 'auth.lockoutMs', type: 'integer', default: 900_000, min: 1000, max: 86_400_000, description: 'How long a locked address, or a key locked for one address, stays locked.' },
  { key: 'rateLimit.perAddressPerMinute', type: 'integer', default: 1200, min: 1, max: 10_000_000, description: 'Requests a minute accepted from one client address (before authentication).' },
  { key: 'rateLimit.perPrincipalPerMinute', type: 'integer', default: 600, min: 1, max: 10_000_000, description: 'Requests a minute accepted from one user or service account.' },
  { key: 'mqtt.enabled', type: 'boolean', default: true, description: 'Run the MQTT device gateway (mutual TLS).' },
  { key: 'mqtt.host', type: 'string', default: '0.0.0.0', flag: '--mqtt-host', description: 'Address the MQTT gateway listens on. Devices must present a certificate from the platform CA; there is no plaintext listener.' },
  { key: 'mqtt.port', type: 'integer', default: 8883, min: 0, max: 65535, flag: '--mqtt-port', description: 'Port of the MQTT gateway (MQTT over TLS); 0 picks a free port (printed at start).' },
  { key: 'mqtt.hostnames', type: 'string', default: '', description: 'Comma-separated DNS names or addresses devices use to reach the gateway; they go into its server certificate besides localhost and 127.0.0.1.' },
  { key: 'mqtt.maxPayloadBytes', type: 'integer', default: 262_144, min: 64, max: 268_435_455, description: 'Largest PUBLISH payload accepted from a device; a larger one is refused (MQTT 5 QoS 1: PUBACK 0x97; otherwise a disconnect), counted in bulwark_mqtt_limit_hits_total. A packet announced larger than this plus 1 KiB and the topic bound is refused before it is read (MQTT 5: DISCONNECT 0x95; the bound is announced as Maximum Packet Size).' },
  { key: 'mqtt.maxTopicLength', type: 'integer', default: 256, min: 16, max: 65_535, description: 'Longest topic a device may publish to.' },
  { key: 'mqtt.maxTopicLevels', type: 'integer', default: 8, min: 3, max: 100, description: 'Deepest topic (in levels) a device may publish or subscribe to.' },
  { key: 'mqtt.publishRatePerSecond', type: 'integer', default: 100, min: 1, max: 100_000, description: 'Sustained messages a second allowed per device, over MQTT, device HTTPS and CoAP together (one token bucket per device). Over it a device is slowed, not disconnected: MQTT holds its PUBACKs and stops reading its socket until the bucket refills; HTTPS answers 429 with Retry-After, CoAP 4.29 with Max-Age.' },
  { key: 'mqtt.publishBurst', type: 'integer', default: 200, min: 1, max: 1_000_000, description: 'Messages a device may send at once above its sustained rate (the size of its token bucket).' },
  { key: 'mqtt.publishBacklogLimit', type: 'integer', default: 5000, min: 1, max: 1_000_000, description: 'Hard abuse bound: publishes of one MQTT session held for want of tokens past which it is disconnected (reason publish_backlog_exceeded, counted in bulwark_mqtt_limit_hits_total{limit="publish_backlog"}). A device that waits for its PUBACKs, or any client once its socket is no longer read, stays far below it.' },
  { key: 'mqtt.publishesPerTurn', type: 'integer', default: 256, min: 1, max: 100_000, description: 'Publishes, over all MQTT sessions, handed to the pipeline in one turn of the event loop; the rest wait for the next turn, so that a burst never keeps the HTTP API waiting (counted in bulwark_mqtt_publishes_deferred_total).' },
  { key: 'mqtt.receiveMaximum', type: 'integer', default: 100, min: 1, max: 65_535, description: 'QoS 1 publishes of one device under way (not yet acknowledged) at once. Announced to MQTT 5 devices as Receive Maximum (one that exceeds it is disconnected with 0x93); an MQTT 3.1.1 device is simply not read while it has this many under way.' },
  { key: 'mqtt.sessionExpiryMaxSeconds', type: 'integer', default: 86_400, min: 0, max: 31_536_000, description: 'Longest time the subscriptions of a device that connected without a clean start are kept while it is away (MQTT 5 Session Expiry Interval is capped to it; MQTT 3.1.1 clean: false sessions get it).' },
  { key: 'mqtt.maxSubscriptionsPerSession', type: 'integer', default: 64, min: 1, max: 10_000, description: 'Subscriptions one MQTT session may hold; past it a SUBSCRIBE is refused (MQTT 5: 0x97 quota exceeded; 3.1.1: 0x80). A device subscribes to a handful of its own topics.' },
  { key: 'gateway.proxyProtocolFrom', type: 'string', default: '', description: 'Comma-separated addresses or CIDR ranges of TCP load balancers in front of the device listeners (MQTT and device HTTPS) that send a PROXY protocol v2 header (HAProxy: `send-proxy-v2` on the server lines). A connection from one of these must start with a valid header, or it is closed (counted in bulwark_device_proxy_refused_total); the address in it is the device\'s address in logs. A header from any other address is never read: it fails the TLS handshake. Empty: off, every connection is taken as it comes.' },
  { key: 'deviceHttp.enabled', type: 'boolean', default: true, description: 'Run the device HTTPS listener (mutual TLS): telemetry, time and certificate rotation for devices without an MQTT session.' },
  { key: 'deviceHttp.host', type: 'string', default: '0.0.0.0', flag: '--device-http-host', description: 'Address the device HTTPS listener binds. Devices must present a certificate from the platform CA or a registered manufacturer CA.' },
  { key: 'deviceHttp.port', type: 'integer', default: 8443, min: 0, max: 65535, flag: '--device-http-port', description: 'Port of the device HTTPS listener; 0 picks a free port (printed at start).' },
  { key: 'deviceHttp.maxBodyBytes', type: 'integer', default: 262_144, min: 64, max: 16_777_216, description: 'Largest request body a device may send over HTTPS; larger gets 413.' },
  { key: 'coap.enabled', type: 'boolean', default: false, flag: '--coap', description: 'Run CoAP ingest (UDP). CoAP here has no DTLS: requests are authenticated by an ECDSA signature made with the device certificate key, but travel in the clear. Off by default.' },
  { key: 'coap.host', type: 'string', default: '127.0.0.1', description: 'Address CoAP binds. Loopback by default; any other address needs coap.trustedNetwork.' },
  { key: 'coap.port', type: 'integer', default: 5683, min: 0, max: 65535, flag: '--coap-port', description: 'UDP port of CoAP ingest; 0 picks a free port.' },
  { key: 'coap.trustedNetwork', type: 'boolean', default: false, description: 'Accept that CoAP readings cross the network readable by anyone on it (no DTLS); required to bind a non-loopback address.' },
  { key: 'identity.deviceCertValidityDays', type: 'integer', default: 365, min: 1, max: 3650, description: 'Lifetime of a device certificate issued by the platform CA.' },
  { key: 'identity.claimTokenTtlMs', type: 'integer', default: 604_800_000, min: 60_000, max: 31_536_000_000, description: 'Default lifetime of a one-time enrollment claim token.' },
  { key: 'identity.rotationOverlapMs', type: 'integer', default: 604_800_000, min: 0, max: 31_536_000_000, description: 'How long a rotated-out certificate keeps working when its successor is never used; the first session with the new one revokes the old one at once.' },
  { key: 'identity.crlValidityMs', type: 'integer', default: 604_800_000, min: 3_600_000, max: 31_536_000_000, description: 'Validity (nextUpdate) of the published CRLs; they are re-signed at least daily and on every revocation.' },
  { key: 'ingest.batchMaxItems', type: 'integer', default: 256, min: 1, max: 10_000, description: 'Most readings written in one group-commit transaction.' },
  { key: 'ingest.batchMaxDelayMs', type: 'integer', default: 5, min: 0, max: 1000, description: 'Longest a reading waits for its batch to fill before the batch is written; acknowledgements wait for the write.' },
  { key: 'ingest.maxPendingMessages', type: 'integer', default: 5_000, min: 100, max: 1_000_000, description: 'Telemetry messages in the pipeline at once past which MQTT QoS 0 messages are dropped and counted (outcome "shed") instead of queued; QoS 1 and HTTPS messages are never dropped, their acknowledgements wait.' },
  { key: 'ingest.maxClockSkewMs', type: 'integer', default: 30_000, min: 100, max: 86_400_000, description: 'A device whose clock is off by more than this (estimated from its readings) is listed by GET /api/v1/telemetry/clock-skew and counted.' },
  { key: 'telemetry.rawRetentionDays', type: 'integer', default: 30, min: 1, max: 36_500, description: 'Days raw readings are kept when their schema sets no `x-retention-days`.' },
  { key: 'telemetry.rollupRetentionDays', type: 'integer', default: 365, min: 1, max: 36_500, description: 'Days 1-minute and 1-hour rollups are kept.' },
  { key: 'telemetry.deadLetterRetentionDays', type: 'integer', default: 30, min: 1, max: 36_500, description: 'Days dead letters are kept.' },
  { key: 'telemetry.retentionIntervalMs', type: 'integer', default: 3_600_000, min: 0, max: 86_400_000, description: 'How often the retention job deletes expired data (each deletion writes a receipt to the audit log); 0 runs it only on request.' },
  { key: 'twin.driftThresholdMs', type: 'integer', default: 300_000, min: 1000, max: 604_800_000, description: 'A device whose reported configuration has disagreed with the desired one (other version, rejected, or a desired key with another value) for longer than this counts as drifted: GET /api/v1/twin/drift lists it.' },
  { key: 'commands.defaultTtlS', type: 'integer', default: 300, min: 1, max: 604_800, description: 'Lifetime of a command when the caller gives no ttlS: until then an offline device gets it when it subscribes; after it the command is expired.' },
  { key: 'commands.maxTtlS', type: 'integer', default: 86_400, min: 1, max: 604_800, description: 'Longest ttlS a caller may give a command.' },
  { key: 'commands.resultTimeoutMs', type: 'integer', default: 3_600_000, min: 1000, max: 604_800_000, description: 'How long after its expiry a command the device accepted may still report its outcome before it is marked expired (reason no_result).' },
  { key: 'commands.perDevicePerMinute', type: 'integer', default: 30, min: 1, max: 100_000, description: 'Commands a minute that may be issued to one device (any caller); more get 429.' },
  { key: 'commands.perPrincipalPerMinute', type: 'integer', default: 120, min: 1, max: 100_000, description: 'Commands a minute one user or service account may issue (any device); more get 429.' },
  { key: 'commands.maxOpenPerDevice', type: 'integer', default: 100, min: 1, max: 100_000, description: 'Commands that may wait (pending, sent or accepted) for one device; more get 409.' },
  { key: 'commands.retentionDays', type: 'integer', default: 30, min: 1, max: 36_500, description: 'Days ended commands (succeeded, failed, rejected, expired) are kept.' },
  { key: 'logs.ringEntries', type: 'integer', default: 1000, min: 10, max: 100_000, description: 'Log entries kept in memory per device whose logs are streaming; older ones are overwritten.' },
  { key: 'logs.maxStreams', type: 'integer', default: 100, min: 1, max: 100_000, description: 'Devices whose logs may stream at once; another request gets 409.' },
  { key: 'logs.liveQueueLimit', type: 'integer', default: 1000, min: 10, max: 100_000, description: 'Log entries a live (SSE) reader may have waiting before the oldest are dropped and counted.' },
  { key: 'health.historyPerDevice', type: 'integer', default: 100, min: 1, max: 100_000, description: 'Health reports kept per device (newest first); older ones are deleted as new ones arrive.' },
  { key: 'health.minIntervalMs', type: 'integer', default: 1000, min: 0, max: 86_400_000, description: 'Health reports from one device closer together than this are dropped and counted (bulwark_device_messages_total{result="too_frequent"}).' },
  { key: 'health.retentionDays', type: 'integer', default: 30, min: 1, max: 36_500, description: 'Days health reports and device events are kept.' },
  { key: 'health.sweepIntervalMs', type: 'integer', default: 60_000, min: 0, max: 86_400_000, description: 'How often expired commands are marked and old health reports, events and ended commands are deleted; 0 only on reads.' },
  { key: 'ota.rootKeysFile', type: 'string', default: undefined, description: 'JSON file with the firmware root key set (`bulwark firmware root`): the offline root public keys and how many must sign a release-key delegation. Default: `<dataDir>/firmware-root.json`; without it every firmware upload is refused.' },
  { key: 'ota.artifactMaxBytes', type: 'integer', default: 268_435_456, min: 1024, max: 4_294_967_296, description: 'Largest firmware image accepted; larger uploads are cut off with 413.' },
  { key: 'ota.minSecurityVersion', type: 'integer', default: 0, min: 0, max: 2_147_483_647, description: 'Fleet minimum security version: firmware below it is refused at upload (audited, reason rollback).' },
  { key: 'ota.tickIntervalMs', type: 'integer', default: 5000, min: 0, max: 3_600_000, description: 'How often running rollouts are advanced (gates, next wave, retries, timeouts, maintenance windows) besides after every device status; 0 only on status.' },
  { key: 'ota.deviceTimeoutMs', type: 'integer', default: 3_600_000, min: 1000, max: 604_800_000, description: 'A device that reports nothing for this long during an update counts as a failed attempt (reason timeout).' },
  { key: 'ota.defaultMaxRetries', type: 'integer', default: 2, min: 0, max: 20, description: 'Retries per device after a failed attempt when a rollout names none.' },
  { key: 'log.level', type: 'enum', default: 'info', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], flag: '--log-level', description: 'Log level of the JSON logs on standard output.' },
  { key: 'masterKey', type: 'string', default: undefined, envOnly: true, description: 'Master key as base64 (32 bytes) or 64 hex characters. When unset, the key lives in `<dataDir>/master.key` (created with mode 0600 on first start). When set, the platform cannot replace it; it rotates to masterKeyNext. A cluster gives every node the same value.' },
  { key: 'masterKeyNext', type: 'string', default: undefined, envOnly: true, description: 'The next master key (same format), beside masterKey: the node also reads data keys wrapped by it, and `POST /api/v1/system/master-key/rotate` re-wraps every data key under it (refused while a live node does not hold it). Afterwards make it masterKey on every node and unset this. Needs masterKey. See the cluster guide, "Secrets on every node".' },
  { key: 'bootstrapAdminKey', type: 'string', default: undefined, envOnly: true, description: 'On the very first start only: the admin API key to create (format `bwk.<id>.<secret>`), for automation. Ignored once any user exists.' },
];
