import { PlatformError } from '@bulwark/core';
import { parseAddressRanges } from './address-ranges.js';
import { privacyProblems } from '../privacy/index.js';
import { SETTINGS, type Setting, envName } from './settings.js';

/** Whether a listener address is this machine only (what the config accepts as safe for plain protocols). */
export const isLoopbackHost = (host: string): boolean => /^(127\.|localhost$|::1$)/.test(host);

export interface ServerConfig {
  readonly dataDir: string;
  readonly store: string;
  /** `memory`, or a comma-separated list of nats:// URLs. */
  readonly bus: string;
  /** `memory`, or a redis:// URL. */
  readonly counters: string;
  readonly nodeId?: string;
  readonly cluster: {
    readonly leaseMs: number;
    readonly drainLeaveMs: number;
    readonly replicas: number;
    readonly tlsCaFile?: string;
    readonly tlsCertFile?: string;
    readonly tlsKeyFile?: string;
    readonly natsCredsFile?: string;
    readonly natsIssuerFile?: string;
  };
  readonly stream: { readonly maxAgeMs: number; readonly maxBytes: number; readonly duplicateWindowMs: number; readonly writerBatchMax: number; readonly writerMaxPending: number; readonly writerConnections: number; readonly writerLingerMs: number };
  readonly http: {
    readonly host: string;
    readonly port: number;
    readonly bodyLimitBytes: number;
    readonly trustedProxies: string;
    readonly allowInsecure: boolean;
    readonly tls: boolean;
    readonly tlsNames: string;
    readonly tlsCertFile: string;
    readonly tlsKeyFile: string;
    readonly hstsMaxAgeS: number;
  };
  readonly audit: { readonly checkpointFile: string; readonly checkpointIntervalMs: number };
  readonly auth: { readonly accessTokenTtlMs: number; readonly lockoutThreshold: number; readonly keyLockoutThreshold: number; readonly lockoutWindowMs: number; readonly lockoutMs: number };
  readonly rateLimit: { readonly perAddressPerMinute: number; readonly perPrincipalPerMinute: number };
  readonly mqtt: {
    readonly enabled: boolean;
    readonly host: string;
    readonly port: number;
    readonly hostnames: string;
    readonly maxPayloadBytes: number;
    readonly maxTopicLength: number;
    readonly maxTopicLevels: number;
    readonly publishRatePerSecond: number;
    readonly publishBurst: number;
    readonly publishBacklogLimit: number;
    readonly publishesPerTurn: number;
    readonly receiveMaximum: number;
    readonly sessionExpiryMaxSeconds: number;
    readonly maxSubscriptionsPerSession: number;
  };
  readonly gateway: { readonly proxyProtocolFrom: string };
  readonly deviceHttp: { readonly enabled: boolean; readonly host: string; readonly port: number; readonly maxBodyBytes: number };
  readonly coap: { readonly enabled: boolean; readonly host: string; readonly port: number; readonly trustedNetwork: boolean };
  readonly identity: { readonly deviceCertValidityDays: number; readonly claimTokenTtlMs: number; readonly rotationOverlapMs: number; readonly crlValidityMs: number };
  readonly ingest: { readonly batchMaxItems: number; readonly batchMaxDelayMs: number; readonly maxClockSkewMs: number; readonly maxPendingMessages: number };
  readonly telemetry: { readonly rawRetentionDays: number; readonly rollupRetentionDays: number; readonly deadLetterRetentionDays: number; readonly retentionIntervalMs: number };
  readonly registry: { readonly countsFoldIntervalMs: number };
  readonly twin: { readonly driftThresholdMs: number };
  readonly commands: {
    readonly defaultTtlS: number;
    readonly maxTtlS: number;
    readonly resultTimeoutMs: number;
    readonly perDevicePerMinute: number;
    readonly perPrincipalPerMinute: number;
    readonly maxOpenPerDevice: number;
    readonly retentionDays: number;
  };
  readonly logs: { readonly ringEntries: number; readonly maxStreams: number; readonly liveQueueLimit: number };
  readonly health: { readonly historyPerDevice: number; readonly minIntervalMs: number; readonly retentionDays: number; readonly sweepIntervalMs: number };
  readonly ota: {
    readonly rootKeysFile?: string;
    readonly artifactMaxBytes: number;
    readonly minSecurityVersion: number;
    readonly tickIntervalMs: number;
    readonly deviceTimeoutMs: number;
    readonly defaultMaxRetries: number;
  };
  readonly jobs: {
    readonly tickIntervalMs: number;
    readonly maxDevices: number;
    readonly maxRatePerSecond: number;
    readonly defaultRatePerSecond: number;
    readonly defaultDeviceTimeoutMs: number;
  };
  readonly webhooks: {
    readonly allowHttp: boolean;
    readonly allowPrivateTargets: boolean;
    readonly caFile?: string;
    readonly timeoutMs: number;
    readonly batchMaxReadings: number;
    readonly maxAttempts: number;
    readonly retryBaseMs: number;
    readonly retryMaxMs: number;
    readonly pollIntervalMs: number;
  };
  readonly alerts: {
    readonly offlineAfterMs: number;
    readonly runbookBaseUrl: string;
    readonly notifyPollIntervalMs: number;
    readonly notifyGatherMs: number;
    readonly retryBaseMs: number;
    readonly retryMaxMs: number;
    readonly notificationMaxAgeMs: number;
    readonly groupWaitMs: number;
    readonly groupMinAlerts: number;
    readonly groupWindowMs: number;
    readonly flapMaxFires: number;
    readonly flapWindowMs: number;
    readonly sweepIntervalMs: number;
    readonly transitionBatchMs: number;
    readonly smtpUrl: string;
    readonly smtpFrom: string;
    readonly smtpCaFile?: string;
    readonly smtpAllowInsecure: boolean;
    readonly smtpTimeoutMs: number;
  };
  readonly tracing: { readonly sampleEvery: number; readonly maxPerSecond: number; readonly otelEndpoint: string; readonly retentionHours: number };
  readonly log: { readonly level: string };
  readonly privacy: { readonly pseudonymise: string; readonly pseudonymiseIdentifiers: string };
  readonly masterKey?: string;
  readonly masterKeyNext?: string;
  readonly hsm: { readonly keys: 'none' | 'ca' | 'master' | 'all'; readonly library: string; readonly tokenLabel: string; readonly labelPrefix: string; readonly pin?: string };
  readonly bootstrapAdminKey?: string;
}

export interface ConfigSources {
  /** Flag values by setting key (`http.port`), as the CLI parsed them. */
  readonly flags?: Readonly<Record<string, unknown>>;
  /** The process environment; only BULWARK_* names are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The parsed config file: nested objects (`{"http": {"port": 8080}}`). */
  readonly file?: unknown;
  readonly fileName?: string;
}

type Value = string | number | boolean;

/**
 * Builds the configuration from its sources, checking every setting and reporting every
 * problem at once. The result is frozen.
 */
export function loadConfig(sources: ConfigSources): ServerConfig {
  const problems: string[] = [];
  const fileValues = flattenFile(sources.file, sources.fileName ?? 'config file', problems);
  const known = new Set(SETTINGS.map((s) => s.key));
  for (const key of Object.keys(fileValues)) if (!known.has(key)) problems.push(`${sources.fileName ?? 'config file'}: unknown setting "${key}"`);
  const knownEnv = new Set(SETTINGS.map((s) => envName(s.key)));
  for (const name of Object.keys(sources.env ?? {})) {
    if (name.startsWith('BULWARK_') && !knownEnv.has(name) && !IGNORED_ENV.has(name)) problems.push(`${name}: unknown environment variable`);
  }

  const out: Record<string, Value> = {};
  for (const s of SETTINGS) {
    const [raw, origin] = pick(s, sources, fileValues);
    if (raw === undefined) {
      if (s.default !== undefined) out[s.key] = s.default;
      continue;
    }
    if (s.envOnly && origin !== envName(s.key)) {
      problems.push(`${origin}: "${s.key}" is a secret and may only be set through ${envName(s.key)}`);
      continue;
    }
    const parsed = coerce(s, raw);
    if (typeof parsed === 'string' && parsed.startsWith('!')) problems.push(`${origin}: ${parsed.slice(1)}`);
    else out[s.key] = parsed;
  }
  if (typeof out.store === 'string' && !/^(sqlite(:.+)?|postgres(ql)?:\/\/.+)$/.test(out.store)) {
    problems.push(`store: "${out.store}" is not sqlite, sqlite:<path> or a postgres:// URL`);
  }
  problems.push(...clusterProblems(out));
  problems.push(...privacyProblems(out['privacy.pseudonymise'], out['privacy.pseudonymiseIdentifiers']));
  if (out.masterKeyNext !== undefined && out.masterKey === undefined) problems.push('BULWARK_MASTER_KEY_NEXT: needs BULWARK_MASTER_KEY (the key in use) beside it');
  problems.push(...hsmProblems(out));
  const otel = String(out['tracing.otelEndpoint'] ?? '');
  if (otel !== '' && !/^https?:\/\/[^\s/]+/.test(otel)) problems.push(`tracing.otelEndpoint: "${otel}" is not an http:// or https:// URL (an OTLP/HTTP collector, such as http://collector:4318)`);
  for (const p of parseAddressRanges(String(out['gateway.proxyProtocolFrom'] ?? '')).problems) problems.push(`gateway.proxyProtocolFrom: ${p}`);
  const host = String(out['http.host'] ?? '127.0.0.1');
  if (!isLoopbackHost(host) && out['http.tls'] !== true && out['http.allowInsecure'] !== true) {
    problems.push(`http.host: ${host} is not a loopback address and the API speaks plain HTTP; turn on http.tls (--http-tls), or put a TLS proxy in front and keep 127.0.0.1, or set http.allowInsecure (--http-allow-insecure) to accept the risk`);
  }
  const [certFile, keyFile] = [String(out['http.tlsCertFile'] ?? ''), String(out['http.tlsKeyFile'] ?? '')];
  if ((certFile === '') !== (keyFile === '')) problems.push("http.tlsCertFile and http.tlsKeyFile: give both (a certificate and its key) or neither (a certificate from the platform's CA)");
  else if (certFile !== '' && out['http.tls'] !== true) problems.push('http.tlsCertFile: set, but http.tls is off; turn it on (--http-tls) to serve HTTPS with it');
  const coapHost = String(out['coap.host'] ?? '127.0.0.1');
  if (out['coap.enabled'] === true && !isLoopbackHost(coapHost) && out['coap.trustedNetwork'] !== true) {
    problems.push(`coap.host: ${coapHost} is not loopback; CoAP has no DTLS here, so set coap.trustedNetwork to accept that readings cross that network in the clear`);
  }
  if (problems.length > 0) {
    throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `invalid configuration:\n  - ${problems.join('\n  - ')}`, { details: { problems } });
  }
  return deepFreeze(nest(out)) as unknown as ServerConfig;
}

function hsmProblems(out: Record<string, Value>): string[] {
  const keys = out['hsm.keys'];
  if (keys === 'none' || keys === undefined) return [];
  const problems: string[] = [];
  if (String(out['hsm.library'] ?? '') === '') problems.push(`hsm.keys: "${String(keys)}" needs hsm.library, the path of the token's PKCS#11 module`);
  if (out['hsm.pin'] === undefined) problems.push(`hsm.keys: "${String(keys)}" needs the token's user PIN in BULWARK_HSM_PIN`);
  if ((keys === 'master' || keys === 'all') && out.masterKey !== undefined) problems.push('hsm.keys: the master key is in the token, so BULWARK_MASTER_KEY must not be set (keep one of the two)');
  return problems;
}

/** Environment variables that belong to the CLI or the tests, not to the server. */
const IGNORED_ENV = new Set(['BULWARK_URL', 'BULWARK_KEY', 'BULWARK_CONFIG', 'BULWARK_CLI_CONFIG', 'BULWARK_TEST_PG_URL']);

function pick(s: Setting, src: ConfigSources, fileValues: Record<string, unknown>): [unknown, string] {
  const flag = src.flags?.[s.key];
  if (flag !== undefined) return [flag, s.flag ?? `flag ${s.key}`];
  const env = src.env?.[envName(s.key)];
  if (env !== undefined && env !== '') return [env, envName(s.key)];
  if (s.key in fileValues) return [fileValues[s.key], `${src.fileName ?? 'config file'} ${s.key}`];
  return [undefined, ''];
}

/** The value in the setting's type, or a string starting with `!` that says what is wrong. */
function coerce(s: Setting, raw: unknown): Value {
  switch (s.type) {
    case 'string':
      return typeof raw === 'string' && raw.length > 0 ? raw : `!"${s.key}" must be a non-empty string`;
    case 'enum':
      return typeof raw === 'string' && (s.values ?? []).includes(raw) ? raw : `!"${s.key}" must be one of ${(s.values ?? []).join(', ')} (got ${JSON.stringify(raw)})`;
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      return `!"${s.key}" must be true or false (got ${JSON.stringify(raw)})`;
    case 'integer': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
      if (!Number.isSafeInteger(n)) return `!"${s.key}" must be a whole number (got ${JSON.stringify(raw)})`;
      if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) return `!"${s.key}" must be between ${s.min} and ${s.max} (got ${n})`;
      return n;
    }
  }
}

function flattenFile(file: unknown, name: string, problems: string[], prefix = ''): Record<string, unknown> {
  if (file === undefined) return {};
  if (typeof file !== 'object' || file === null || Array.isArray(file)) {
    problems.push(`${name}: must hold a JSON object`);
    return {};
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(file)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) Object.assign(out, flattenFile(v, name, problems, key));
    else out[key] = v;
  }
  return out;
}

function nest(flat: Record<string, Value>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(flat)) {
    const parts = key.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
    node[parts.at(-1) as string] = value;
  }
  return root;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Defaults only; for tests and tools that need a complete configuration. */
export function defaultConfig(overrides: ConfigSources['file'] = {}): ServerConfig {
  return loadConfig({ file: overrides, fileName: 'overrides' });
}

const NATS_URL = /^(?:nats|tls):\/\/(?:[^@/\s]+@)?[A-Za-z0-9.-]+(?::\d{1,5})?$|^(?:nats|tls):\/\/\[[0-9a-fA-F:]+\](?::\d{1,5})?$/;
const REDIS_URL = /^rediss?:\/\/(?:[^@/\s]*@)?[A-Za-z0-9.-]+(?::\d{1,5})?(?:\/\d{1,2})?$/;
const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The cluster settings: URLs well formed, and a NATS bus only over PostgreSQL (nodes share one store). */
function clusterProblems(out: Record<string, Value>): string[] {
  const problems: string[] = [];
  const bus = String(out.bus ?? 'memory');
  if (bus !== 'memory') {
    const bad = bus
      .split(',')
      .map((u) => u.trim())
      .filter((u) => !NATS_URL.test(u));
    if (bad.length > 0 || bus.trim() === '') problems.push(`bus: "${bad.join(',') || bus}" is not memory or a comma-separated list of nats://host:port (or tls://host:port) URLs`);
    else if (!/^postgres(ql)?:\/\//.test(String(out.store ?? ''))) problems.push("bus: a NATS bus (cluster mode) needs a postgres:// store that every node shares; SQLite is one node's file");
  }
  const counters = String(out.counters ?? 'memory');
  if (counters !== 'memory' && !REDIS_URL.test(counters)) problems.push(`counters: "${counters.replace(/\/\/[^@]*@/, '//***@')}" is not memory or a redis://host:port[/db] URL`);
  if ((out['cluster.tlsCertFile'] === undefined) !== (out['cluster.tlsKeyFile'] === undefined)) problems.push('cluster.tlsCertFile and cluster.tlsKeyFile go together: a client certificate needs its key');
  if (out.nodeId !== undefined && !NODE_ID.test(String(out.nodeId))) problems.push(`nodeId: "${String(out.nodeId)}" must be 1-64 letters, digits, "-" or "_"`);
  return problems;
}
