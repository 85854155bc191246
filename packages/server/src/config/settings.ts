/**
 * The one configuration schema. Every setting has a dotted key, a type, a default, the
 * environment variable and (for the common ones) the flag that set it, and a description;
 * docs/reference/config.md is generated from this table.
 * Precedence: flags, then BULWARK_* environment variables, then the config file, then defaults.
 */
import { CLUSTER_SETTINGS } from './settings-cluster.js';

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

export const envName = (key: string) =>
  `BULWARK_${key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/\./g, '_')
    .toUpperCase()}`;

export const SETTINGS: readonly Setting[] = [
  { key: 'dataDir', type: 'string', default: './.bulwark', flag: '--data', description: 'Directory for the SQLite store, the master key file and other local state. Created with mode 0700 if missing.' },
  { key: 'store', type: 'string', default: 'sqlite', flag: '--store', description: 'Where state lives: `sqlite` (bulwark.db in the data directory), `sqlite:<path>`, or a `postgres://user@host:port/db` URL.' },
  ...CLUSTER_SETTINGS,
  { key: 'http.host', type: 'string', default: '127.0.0.1', flag: '--http-host', description: 'Address the HTTP API and dashboard listen on. Loopback by default; expose it only behind TLS.' },
  { key: 'http.port', type: 'integer', default: 8080, min: 0, max: 65535, flag: '--http-port', description: 'Port of the HTTP API and dashboard; 0 picks a free port (printed at start).' },
  { key: 'http.bodyLimitBytes', type: 'integer', default: 1_048_576, min: 1024, max: 104_857_600, description: 'Largest request body accepted; larger bodies get 413 BULWARK_ERR_PAYLOAD_TOO_LARGE.' },
  {
    key: 'http.trustedProxies',
    type: 'string',
    default: '',
    description:
      'Comma-separated addresses or CIDR ranges of reverse proxies you run. Only X-Forwarded-For hops added by these are believed; the client address decides per-address limits, lock-outs and loopback-only endpoints. Empty: never believe X-Forwarded-For.',
  },
  {
    key: 'http.allowInsecure',
    type: 'boolean',
    default: false,
    flag: '--http-allow-insecure',
    description: 'Allow the HTTP API (plain HTTP, no TLS yet) on a non-loopback address. Off: such an address is refused at start; put a TLS-terminating proxy in front instead.',
  },
  {
    key: 'http.tls',
    type: 'boolean',
    default: false,
    flag: '--http-tls',
    description:
      "Serve the HTTP API and dashboard over TLS (HTTPS only, HSTS sent). The certificate comes from the platform's own CA for localhost, 127.0.0.1, http.host and http.tlsNames (its root is written to <dataDir>/ca.pem for clients to trust), or from http.tlsCertFile and http.tlsKeyFile.",
  },
  { key: 'http.tlsNames', type: 'string', default: '', flag: '--http-tls-names', description: 'Comma-separated DNS names or addresses clients use to reach the API; they go into its platform-issued certificate besides localhost, 127.0.0.1 and http.host.' },
  { key: 'http.tlsCertFile', type: 'string', default: '', description: "PEM certificate chain (the server certificate first) for the HTTP API, instead of one from the platform's CA; needs http.tlsKeyFile. Read at start." },
  { key: 'http.tlsKeyFile', type: 'string', default: '', description: 'PEM private key of http.tlsCertFile; keep it owner-only. Read at start.' },
  { key: 'http.hstsMaxAgeS', type: 'integer', default: 15_552_000, min: 0, max: 63_072_000, description: 'Strict-Transport-Security max-age, in seconds, sent with every response when http.tls is on (0: no header). 180 days by default.' },
  { key: 'auth.accessTokenTtlMs', type: 'integer', default: 900_000, min: 10_000, max: 86_400_000, description: 'Lifetime of an access token obtained from an API key.' },
  { key: 'auth.lockoutThreshold', type: 'integer', default: 10, min: 1, max: 10_000, description: 'Failed authentications from one address within the lock-out window that lock the address.' },
  {
    key: 'auth.keyLockoutThreshold',
    type: 'integer',
    default: 5,
    min: 1,
    max: 10_000,
    description: 'Failed key exchanges from one address for one key id within the lock-out window that stop that address trying that key (never more than auth.lockoutThreshold). A key is never locked for every address: its id is public.',
  },
  { key: 'auth.lockoutWindowMs', type: 'integer', default: 300_000, min: 1000, max: 86_400_000, description: 'Window in which failed authentications are counted.' },
  { key: 'auth.lockoutMs', type: 'integer', default: 900_000, min: 1000, max: 86_400_000, description: 'How long a locked address, or a key locked for one address, stays locked.' },
  { key: 'rateLimit.perAddressPerMinute', type: 'integer', default: 1200, min: 1, max: 10_000_000, description: 'Requests a minute accepted from one client address (before authentication).' },
  { key: 'rateLimit.perPrincipalPerMinute', type: 'integer', default: 600, min: 1, max: 10_000_000, description: 'Requests a minute accepted from one user or service account.' },
  { key: 'mqtt.enabled', type: 'boolean', default: true, description: 'Run the MQTT device gateway (mutual TLS).' },
  { key: 'mqtt.host', type: 'string', default: '0.0.0.0', flag: '--mqtt-host', description: 'Address the MQTT gateway listens on. Devices must present a certificate from the platform CA; there is no plaintext listener.' },
  { key: 'mqtt.port', type: 'integer', default: 8883, min: 0, max: 65535, flag: '--mqtt-port', description: 'Port of the MQTT gateway (MQTT over TLS); 0 picks a free port (printed at start).' },
  { key: 'mqtt.hostnames', type: 'string', default: '', description: 'Comma-separated DNS names or addresses devices use to reach the gateway; they go into its server certificate besides localhost and 127.0.0.1.' },
  {
    key: 'mqtt.maxPayloadBytes',
    type: 'integer',
    default: 262_144,
    min: 64,
    max: 268_435_455,
    description:
      'Largest PUBLISH payload accepted from a device; a larger one is refused (MQTT 5 QoS 1: PUBACK 0x97; otherwise a disconnect), counted in bulwark_mqtt_limit_hits_total. A packet announced larger than this plus 1 KiB and the topic bound is refused before it is read (MQTT 5: DISCONNECT 0x95; the bound is announced as Maximum Packet Size).',
  },
  { key: 'mqtt.maxTopicLength', type: 'integer', default: 256, min: 16, max: 65_535, description: 'Longest topic a device may publish to.' },
  { key: 'mqtt.maxTopicLevels', type: 'integer', default: 8, min: 3, max: 100, description: 'Deepest topic (in levels) a device may publish or subscribe to.' },
  {
    key: 'mqtt.publishRatePerSecond',
    type: 'integer',
    default: 100,
    min: 1,
    max: 100_000,
    description:
      'Sustained messages a second allowed per device, over MQTT, device HTTPS and CoAP together (one token bucket per device). Over it a device is slowed, not disconnected: MQTT holds its PUBACKs and stops reading its socket until the bucket refills; HTTPS answers 429 with Retry-After, CoAP 4.29 with Max-Age.',
  },
  { key: 'mqtt.publishBurst', type: 'integer', default: 200, min: 1, max: 1_000_000, description: 'Messages a device may send at once above its sustained rate (the size of its token bucket).' },
  {
    key: 'mqtt.publishBacklogLimit',
    type: 'integer',
    default: 5000,
    min: 1,
    max: 1_000_000,
    description:
      'Hard abuse bound: publishes of one MQTT session held for want of tokens past which it is disconnected (reason publish_backlog_exceeded, counted in bulwark_mqtt_limit_hits_total{limit="publish_backlog"}). A device that waits for its PUBACKs, or any client once its socket is no longer read, stays far below it.',
  },
  {
    key: 'mqtt.publishesPerTurn',
    type: 'integer',
    default: 256,
    min: 1,
    max: 100_000,
    description: 'Publishes, over all MQTT sessions, handed to the pipeline in one turn of the event loop; the rest wait for the next turn, so that a burst never keeps the HTTP API waiting (counted in bulwark_mqtt_publishes_deferred_total).',
  },
  {
    key: 'mqtt.receiveMaximum',
    type: 'integer',
    default: 100,
    min: 1,
    max: 65_535,
    description:
      'QoS 1 publishes of one device under way (not yet acknowledged) at once. Announced to MQTT 5 devices as Receive Maximum (one that exceeds it is disconnected with 0x93); an MQTT 3.1.1 device is simply not read while it has this many under way.',
  },
  {
    key: 'mqtt.sessionExpiryMaxSeconds',
    type: 'integer',
    default: 86_400,
    min: 0,
    max: 31_536_000,
    description: 'Longest time the subscriptions of a device that connected without a clean start are kept while it is away (MQTT 5 Session Expiry Interval is capped to it; MQTT 3.1.1 clean: false sessions get it).',
  },
  {
    key: 'mqtt.maxSubscriptionsPerSession',
    type: 'integer',
    default: 64,
    min: 1,
    max: 10_000,
    description: 'Subscriptions one MQTT session may hold; past it a SUBSCRIBE is refused (MQTT 5: 0x97 quota exceeded; 3.1.1: 0x80). A device subscribes to a handful of its own topics.',
  },
  {
    key: 'gateway.proxyProtocolFrom',
    type: 'string',
    default: '',
    description:
      "Comma-separated addresses or CIDR ranges of TCP load balancers in front of the device listeners (MQTT and device HTTPS) that send a PROXY protocol v2 header (HAProxy: `send-proxy-v2` on the server lines). A connection from one of these must start with a valid header, or it is closed (counted in bulwark_device_proxy_refused_total); the address in it is the device's address in logs. A header from any other address is never read: it fails the TLS handshake. Empty: off, every connection is taken as it comes.",
  },
  { key: 'deviceHttp.enabled', type: 'boolean', default: true, description: 'Run the device HTTPS listener (mutual TLS): telemetry, time and certificate rotation for devices without an MQTT session.' },
  { key: 'deviceHttp.host', type: 'string', default: '0.0.0.0', flag: '--device-http-host', description: 'Address the device HTTPS listener binds. Devices must present a certificate from the platform CA or a registered manufacturer CA.' },
  { key: 'deviceHttp.port', type: 'integer', default: 8443, min: 0, max: 65535, flag: '--device-http-port', description: 'Port of the device HTTPS listener; 0 picks a free port (printed at start).' },
  { key: 'deviceHttp.maxBodyBytes', type: 'integer', default: 262_144, min: 64, max: 16_777_216, description: 'Largest request body a device may send over HTTPS; larger gets 413.' },
  {
    key: 'coap.enabled',
    type: 'boolean',
    default: false,
    flag: '--coap',
    description: 'Run CoAP ingest (UDP). CoAP here has no DTLS: requests are authenticated by an ECDSA signature made with the device certificate key, but travel in the clear. Off by default.',
  },
  { key: 'coap.host', type: 'string', default: '127.0.0.1', description: 'Address CoAP binds. Loopback by default; any other address needs coap.trustedNetwork.' },
  { key: 'coap.port', type: 'integer', default: 5683, min: 0, max: 65535, flag: '--coap-port', description: 'UDP port of CoAP ingest; 0 picks a free port.' },
  { key: 'coap.trustedNetwork', type: 'boolean', default: false, description: 'Accept that CoAP readings cross the network readable by anyone on it (no DTLS); required to bind a non-loopback address.' },
  { key: 'identity.deviceCertValidityDays', type: 'integer', default: 365, min: 1, max: 3650, description: 'Lifetime of a device certificate issued by the platform CA.' },
  { key: 'identity.claimTokenTtlMs', type: 'integer', default: 604_800_000, min: 60_000, max: 31_536_000_000, description: 'Default lifetime of a one-time enrollment claim token.' },
  {
    key: 'identity.rotationOverlapMs',
    type: 'integer',
    default: 604_800_000,
    min: 0,
    max: 31_536_000_000,
    description: 'How long a rotated-out certificate keeps working when its successor is never used; the first session with the new one revokes the old one at once.',
  },
  { key: 'identity.crlValidityMs', type: 'integer', default: 604_800_000, min: 3_600_000, max: 31_536_000_000, description: 'Validity (nextUpdate) of the published CRLs; they are re-signed at least daily and on every revocation.' },
  {
    key: 'tracing.sampleEvery',
    type: 'integer',
    default: 1_000,
    min: 0,
    max: 1_000_000,
    description:
      "Trace one telemetry message in this many (1: every message; 0: only those whose device asks, with a sampled W3C `traceparent`: an MQTT 5 user property or a device HTTPS header, always honoured within tracing.maxPerSecond). A traced message records a span per hop (gateway receive, each pipeline step, durable commit, live fan-out, acknowledgement, and in cluster mode the stream's store writer and each node's live fan-out) in the trace store (`bulwark telemetry trace`), in bulwark_message_hop_seconds, and over OTLP when tracing.otelEndpoint is set. An untraced message costs one counter.",
  },
  {
    key: 'tracing.maxPerSecond',
    type: 'integer',
    default: 20,
    min: 0,
    max: 100_000,
    description: 'Most messages a node traces per second (sampled and device-asked together); past it they go untraced and are counted in bulwark_traces_dropped_total{reason="rate"}. Bounds what a device that marks every message sampled can cost.',
  },
  {
    key: 'tracing.otelEndpoint',
    type: 'string',
    default: '',
    flag: '--otel-endpoint',
    description:
      'OTLP/HTTP endpoint to export the spans of traced messages to (`http://collector:4318`; `/v1/traces` is added unless given), with the OpenTelemetry SDK (optional dependencies, loaded only when this is set). Empty: no export; traces are still kept in the trace store.',
  },
  { key: 'tracing.retentionHours', type: 'integer', default: 24, min: 1, max: 8_760, description: 'Hours the trace store keeps the spans of traced messages.' },
  { key: 'ingest.batchMaxItems', type: 'integer', default: 256, min: 1, max: 10_000, description: 'Most readings written in one group-commit transaction.' },
  { key: 'ingest.batchMaxDelayMs', type: 'integer', default: 5, min: 0, max: 1000, description: 'Longest a reading waits for its batch to fill before the batch is written; acknowledgements wait for the write.' },
  {
    key: 'ingest.maxPendingMessages',
    type: 'integer',
    default: 5_000,
    min: 100,
    max: 1_000_000,
    description: 'Telemetry messages in the pipeline at once past which MQTT QoS 0 messages are dropped and counted (outcome "shed") instead of queued; QoS 1 and HTTPS messages are never dropped, their acknowledgements wait.',
  },
  { key: 'ingest.maxClockSkewMs', type: 'integer', default: 30_000, min: 100, max: 86_400_000, description: 'A device whose clock is off by more than this (estimated from its readings) is listed by GET /api/v1/telemetry/clock-skew and counted.' },
  { key: 'telemetry.rawRetentionDays', type: 'integer', default: 30, min: 1, max: 36_500, description: 'Days raw readings are kept when their schema sets no `x-retention-days`.' },
  { key: 'telemetry.rollupRetentionDays', type: 'integer', default: 365, min: 1, max: 36_500, description: 'Days 1-minute and 1-hour rollups are kept.' },
  { key: 'telemetry.deadLetterRetentionDays', type: 'integer', default: 30, min: 1, max: 36_500, description: 'Days dead letters are kept.' },
  { key: 'telemetry.retentionIntervalMs', type: 'integer', default: 3_600_000, min: 0, max: 86_400_000, description: 'How often the retention job deletes expired data (each deletion writes a receipt to the audit log); 0 runs it only on request.' },
  {
    key: 'registry.countsFoldIntervalMs',
    type: 'integer',
    default: 2000,
    min: 0,
    max: 600_000,
    description:
      'How often the fleet counts (GET /api/v1/devices/stats) fold the device changes recorded since the last fold (one node: the fleet-counts job). Counts are exact either way: a read adds the changes not folded yet; folding keeps that sum short. 0 folds only at start.',
  },
  {
    key: 'twin.driftThresholdMs',
    type: 'integer',
    default: 300_000,
    min: 1000,
    max: 604_800_000,
    description: 'A device whose reported configuration has disagreed with the desired one (other version, rejected, or a desired key with another value) for longer than this counts as drifted: GET /api/v1/twin/drift lists it.',
  },
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
  {
    key: 'ota.rootKeysFile',
    type: 'string',
    default: undefined,
    description: 'JSON file with the firmware root key set (`bulwark firmware root`): the offline root public keys and how many must sign a release-key delegation. Default: `<dataDir>/firmware-root.json`; without it every firmware upload is refused.',
  },
  { key: 'ota.artifactMaxBytes', type: 'integer', default: 268_435_456, min: 1024, max: 4_294_967_296, description: 'Largest firmware image accepted; larger uploads are cut off with 413.' },
  { key: 'ota.minSecurityVersion', type: 'integer', default: 0, min: 0, max: 2_147_483_647, description: 'Fleet minimum security version: firmware below it is refused at upload (audited, reason rollback).' },
  { key: 'ota.tickIntervalMs', type: 'integer', default: 5000, min: 0, max: 3_600_000, description: 'How often running rollouts are advanced (gates, next wave, retries, timeouts, maintenance windows) besides after every device status; 0 only on status.' },
  { key: 'ota.deviceTimeoutMs', type: 'integer', default: 3_600_000, min: 1000, max: 604_800_000, description: 'A device that reports nothing for this long during an update counts as a failed attempt (reason timeout).' },
  { key: 'ota.defaultMaxRetries', type: 'integer', default: 2, min: 0, max: 20, description: 'Retries per device after a failed attempt when a rollout names none.' },
  {
    key: 'jobs.tickIntervalMs',
    type: 'integer',
    default: 200,
    min: 0,
    max: 60_000,
    description: 'How often jobs over groups dispatch their next devices, time out the silent ones and check their abort rule (one node: the jobs job). A cancel stops dispatching within one pass on the node that runs it; 0 stops the engine.',
  },
  { key: 'jobs.maxDevices', type: 'integer', default: 100_000, min: 1, max: 10_000_000, description: 'Most devices one job may act on; a larger group is refused when the job is made (split it).' },
  { key: 'jobs.maxRatePerSecond', type: 'integer', default: 1000, min: 1, max: 100_000, description: 'Fastest pace a job may ask for (devices dispatched a second).' },
  { key: 'jobs.defaultRatePerSecond', type: 'integer', default: 50, min: 1, max: 100_000, description: 'Pace of a job that names none (devices dispatched a second).' },
  { key: 'jobs.defaultDeviceTimeoutMs', type: 'integer', default: 30_000, min: 1000, max: 86_400_000, description: 'How long a dispatched device has to answer when a job names no timeout.' },
  { key: 'webhooks.allowHttp', type: 'boolean', default: false, description: 'Allow webhook URLs with plain http://. Off: only https:// is accepted (BULWARK_ERR_WEBHOOK_URL_REFUSED); the readings and signatures would otherwise cross the network readable.' },
  {
    key: 'webhooks.allowPrivateTargets',
    type: 'boolean',
    default: false,
    description:
      "Allow webhook hosts that resolve to loopback, private (RFC 1918, IPv6 ULA), shared (CGNAT), link-local, unspecified, multicast or reserved addresses. Off: such a target is refused at creation and at every delivery (SSRF: a webhook must not reach the platform's own host or the networks behind it).",
  },
  { key: 'webhooks.caFile', type: 'string', default: undefined, description: "PEM file of CA certificates trusted for webhook receivers besides the system's (a receiver with a certificate from a private CA)." },
  { key: 'webhooks.timeoutMs', type: 'integer', default: 10_000, min: 100, max: 300_000, description: 'Longest a webhook delivery may take (connect, TLS, answer) before it counts as failed and is retried.' },
  { key: 'webhooks.batchMaxReadings', type: 'integer', default: 100, min: 1, max: 10_000, description: 'Most readings in one webhook delivery.' },
  {
    key: 'webhooks.maxAttempts',
    type: 'integer',
    default: 10,
    min: 1,
    max: 1000,
    description: "Failed attempts of one batch after which it goes to the webhook's dead letters and the subscription pauses itself (resume it once the receiver is fixed; replay the dead letter). With the default backoff about 7 minutes of failure.",
  },
  {
    key: 'webhooks.retryBaseMs',
    type: 'integer',
    default: 1_000,
    min: 10,
    max: 3_600_000,
    description: "Wait before the second attempt of a failed webhook batch; it doubles with every failure (half of it random) up to webhooks.retryMaxMs. A receiver's Retry-After is honoured up to that cap.",
  },
  { key: 'webhooks.retryMaxMs', type: 'integer', default: 300_000, min: 10, max: 86_400_000, description: 'Longest wait between two attempts of a failed webhook batch.' },
  { key: 'webhooks.pollIntervalMs', type: 'integer', default: 1_000, min: 10, max: 60_000, description: 'How often webhook delivery looks for new readings and changed subscriptions (readings stored on the delivering node are sent at once).' },
  {
    key: 'alerts.offlineAfterMs',
    type: 'integer',
    default: 300_000,
    min: 1_000,
    max: 2_592_000_000,
    description: 'The built-in "device offline" rule\'s duration when it is first created: a device whose session ended and did not come back for this long fires it. Change it later through the rule itself (PATCH /api/v1/alerts/rules/builtin-offline).',
  },
  {
    key: 'alerts.runbookBaseUrl',
    type: 'string',
    default: 'docs/runbooks',
    description: "Where the runbooks live: a notification links `<runbookBaseUrl>/<type>.md`. The default names the repository's docs/runbooks; point it at your own copy (a wiki, an internal docs site).",
  },
  {
    key: 'alerts.groupWaitMs',
    type: 'integer',
    default: 10_000,
    min: 0,
    max: 600_000,
    description:
      "How long a new alert's notification waits for others of its rule: when alerts.groupMinAlerts of them are open together it is folded into one incident notification instead (200 devices offline at once make one message). The delay of every first notification.",
  },
  {
    key: 'alerts.groupMinAlerts',
    type: 'integer',
    default: 10,
    min: 2,
    max: 1_000_000,
    description: "Open alerts of one rule, fired within alerts.groupWindowMs and not yet in an incident, that make a fleet-wide incident: notified once, joined by the rule's later alerts until every one of them has resolved.",
  },
  { key: 'alerts.groupWindowMs', type: 'integer', default: 300_000, min: 1_000, max: 86_400_000, description: 'How far back alerts of one rule count toward an incident (see alerts.groupMinAlerts).' },
  {
    key: 'alerts.flapMaxFires',
    type: 'integer',
    default: 4,
    min: 1,
    max: 1_000_000,
    description: 'A rule and device that fires more often than this within alerts.flapWindowMs is flapping: its further alerts are stored (marked silenced, counted as suppressed) and not notified until it calms down.',
  },
  { key: 'alerts.flapWindowMs', type: 'integer', default: 600_000, min: 1_000, max: 86_400_000, description: 'The window of alerts.flapMaxFires.' },
  {
    key: 'alerts.smtpUrl',
    type: 'string',
    default: '',
    description:
      'SMTP server for e-mail alert channels: `smtp://user:password@host:587` (STARTTLS) or `smtps://user:password@host:465`. Empty: e-mail channels are refused (BULWARK_ERR_CONFLICT). Give it through BULWARK_ALERTS_SMTP_URL to keep the password out of files.',
  },
  { key: 'alerts.smtpFrom', type: 'string', default: 'Bulwark <bulwark@localhost>', description: 'The From of alert e-mails.' },
  { key: 'alerts.smtpCaFile', type: 'string', default: undefined, description: "PEM file of CA certificates trusted for the SMTP server besides the system's." },
  {
    key: 'alerts.smtpAllowInsecure',
    type: 'boolean',
    default: false,
    description: 'Send alert e-mail to an SMTP server that offers no TLS (a relay on the same host). Off: the connection must be TLS or upgrade with STARTTLS, or the mail is not sent (and retried).',
  },
  { key: 'alerts.smtpTimeoutMs', type: 'integer', default: 10_000, min: 100, max: 300_000, description: 'Longest an SMTP connection, greeting or command may take before the mail counts as failed and is retried.' },
  {
    key: 'alerts.transitionBatchMs',
    type: 'integer',
    default: 100,
    min: 0,
    max: 1_000,
    description:
      "How long an alert that fires or resolves waits for others to share its transaction (with their notifications and audit entries). Each transaction rewrites the pages it touches: at a hundred transitions a second, 20 ms halves their cost, 100 ms takes another sixth off. Adds at most this much to a notification's delay.",
  },
  {
    key: 'alerts.sweepIntervalMs',
    type: 'integer',
    default: 60_000,
    min: 1_000,
    max: 86_400_000,
    description: "How often the fleet sweep (one node: the alert-sweep job) looks for twins out of sync longer than their rule allows and certificates ending within their rule's window, firing and resolving those alerts.",
  },
  {
    key: 'alerts.notifyGatherMs',
    type: 'integer',
    default: 100,
    min: 0,
    max: 10_000,
    description:
      "The least time between two passes of the alert notifier: notifications written meanwhile gather and go in the next pass (to a batching channel in one POST). Adds at most this much to a notification's delay; 0 sends each as soon as it is written.",
  },
  { key: 'alerts.notifyPollIntervalMs', type: 'integer', default: 2_000, min: 10, max: 60_000, description: 'How often the alert notifier looks for notifications written by other nodes (ones written on the notifying node are sent at once).' },
  { key: 'alerts.retryBaseMs', type: 'integer', default: 1_000, min: 10, max: 3_600_000, description: 'Wait before the second attempt of a failed alert notification; it doubles with every failure (half of it random) up to alerts.retryMaxMs.' },
  { key: 'alerts.retryMaxMs', type: 'integer', default: 60_000, min: 10, max: 3_600_000, description: 'Longest wait between two attempts of a failed alert notification.' },
  {
    key: 'alerts.notificationMaxAgeMs',
    type: 'integer',
    default: 86_400_000,
    min: 1_000,
    max: 2_592_000_000,
    description: 'A notification its receiver has not taken by this age is given up (counted in bulwark_alert_notifications_total{outcome="given_up"} and logged); until then it is retried, in order per channel.',
  },
  {
    key: 'audit.checkpointFile',
    type: 'string',
    default: '',
    flag: '--audit-checkpoint-file',
    description:
      'File a signed checkpoint of the audit chain head is appended to (JSON lines; default <dataDir>/audit-checkpoints.jsonl). Put it where an attacker who gets the database cannot rewrite it (another disk, a mount on another host, append-only storage): `bulwark audit-log verify --checkpoint FILE` then detects a rewritten chain.',
  },
  { key: 'audit.checkpointIntervalMs', type: 'integer', default: 300_000, min: 0, max: 86_400_000, description: 'How often the chain head is checkpointed when it moved (also at start and stop). 0: no checkpoints.' },
  {
    key: 'privacy.pseudonymise',
    type: 'string',
    default: '',
    description:
      'Comma-separated places where identifiers are replaced by keyed pseudonyms (`p:dev:…`, `p:own:…`, `p:loc:…`): `exports` (telemetry exports), `webhooks` (bodies of webhook deliveries and alert notifications; signed as sent), `logs` (every log line: identifier fields, device topics, request URLs, and the same values in messages and errors). Empty: none. The same identifier always gives the same pseudonym (HMAC-SHA-256 under the vault key privacy.pseudonym-key), so joins still work; `bulwark privacy pseudonym` and `bulwark privacy resolve` (scope privacy:resolve, audited) map between the two. The audit log always keeps real identifiers.',
  },
  {
    key: 'privacy.pseudonymiseIdentifiers',
    type: 'string',
    default: 'devices,owners,locations',
    description: "Which identifiers privacy.pseudonymise replaces: comma-separated `devices` (device ids), `owners`, `locations` (the registry's owner and location of a device).",
  },
  { key: 'log.level', type: 'enum', default: 'info', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], flag: '--log-level', description: 'Log level of the JSON logs on standard output.' },
  {
    key: 'masterKey',
    type: 'string',
    default: undefined,
    envOnly: true,
    description:
      'Master key as base64 (32 bytes) or 64 hex characters. When unset, the key lives in `<dataDir>/master.key` (created with mode 0600 on first start). When set, the platform cannot replace it; it rotates to masterKeyNext. A cluster gives every node the same value.',
  },
  {
    key: 'masterKeyNext',
    type: 'string',
    default: undefined,
    envOnly: true,
    description:
      'The next master key (same format), beside masterKey: the node also reads data keys wrapped by it, and `POST /api/v1/system/master-key/rotate` re-wraps every data key under it (refused while a live node does not hold it). Afterwards make it masterKey on every node and unset this. Needs masterKey. See the cluster guide, "Secrets on every node".',
  },
  {
    key: 'hsm.keys',
    type: 'enum',
    default: 'none',
    values: ['none', 'ca', 'master', 'all'],
    flag: '--hsm-keys',
    description:
      'Keys kept inside a PKCS#11 token (an HSM; SoftHSM for trying it): `ca` the device CA\'s signing keys, `master` the master key, `all` both, `none` neither (the default: CA keys sealed in the store, the master key in a file or BULWARK_MASTER_KEY). Made inside the token, never extractable; see the security guide, "Keys in hardware". Needs hsm.library and BULWARK_HSM_PIN.',
  },
  { key: 'hsm.library', type: 'string', default: '', description: 'Path of the PKCS#11 module of the token, e.g. `/usr/lib/softhsm/libsofthsm2.so`.' },
  { key: 'hsm.tokenLabel', type: 'string', default: 'bulwark', description: 'Label of the token that holds the keys (`softhsm2-util --init-token --label bulwark`).' },
  { key: 'hsm.labelPrefix', type: 'string', default: 'bulwark', description: "Prefix of the labels of Bulwark's keys in the token (`<prefix>-master-key`, `<prefix>-ca-<ca id>`), so that deployments can share a token. Set it before the first start." },
  { key: 'hsm.pin', type: 'string', default: undefined, envOnly: true, description: 'User PIN of the token.' },
  { key: 'bootstrapAdminKey', type: 'string', default: undefined, envOnly: true, description: 'On the very first start only: the admin API key to create (format `bwk.<id>.<secret>`), for automation. Ignored once any user exists.' },
];
