import { Ajv, type ErrorObject } from 'ajv';
import type { LogLevel } from '@bulwark/protocol';

/** Everything the agent can be told, with units in the names. Only `deviceId`, `mqtt.url` and `dataDir` are required. */
export interface AgentConfig {
  readonly deviceId: string;
  /** Queue, state and (by default) identity files live here. */
  readonly dataDir: string;
  readonly mqtt: {
    /** `mqtts://host:port` */
    readonly url: string;
    readonly keepaliveS: number;
    readonly connectTimeoutMs: number;
    /** TLS server name to verify, when it differs from the URL's host. */
    readonly servername?: string;
  };
  readonly identity: {
    /** Holds device.key, device.crt and ca.crt (the layout of `bulwark devices enroll --out DIR`). Default: dataDir. */
    readonly dir?: string;
    /** Enroll on first start when there is no certificate yet. */
    readonly claimToken?: string;
    /** The platform's HTTP base URL for `POST /api/v1/enroll`. */
    readonly enrollUrl?: string;
    /** Renew over MQTT once this fraction of the certificate's lifetime has passed. */
    readonly renewAtFraction: number;
    /** Hardware-backed key in a PKCS#11 token instead of device.key. */
    readonly pkcs11?: { readonly library: string; readonly tokenLabel: string; readonly pin: string; readonly keyLabel: string };
  };
  readonly queue: {
    readonly maxItems: number;
    readonly maxBytes: number;
    readonly maxAgeMs: number;
    /** QoS 1 messages on the wire without a PUBACK yet. */
    readonly inflightWindow: number;
    /** A PUBACK missing for this long means a dead connection: drop it and reconnect. */
    readonly ackTimeoutMs: number;
  };
  readonly reconnect: {
    readonly baseMs: number;
    readonly capMs: number;
    /** A session shorter than this does not reset the backoff. */
    readonly stableAfterMs: number;
    /** After a refusal (CONNACK 2/4/5, TLS alert): wait at least this long, with jitter. */
    readonly refusedDelayMs: number;
  };
  readonly timeSync: { readonly intervalMs: number; readonly keepSamples: number; readonly waitOnConnectMs: number };
  readonly health: { readonly intervalMs: number; readonly restartLoopThreshold: number; readonly restartLoopWindowMs: number };
  readonly logs: { readonly level: LogLevel; readonly maxEntriesPerSecond: number; readonly flushIntervalMs: number };
  readonly commands: { readonly rememberIds: number };
  /** Firmware updates; off unless this section is given (see docs/guides/firmware-updates.md). */
  readonly ota?: {
    /** The pinned root key set (`bulwark firmware root` writes it): the only trust anchor for firmware. */
    readonly rootKeysFile: string;
    /** The platform's device HTTPS listener, `https://host:port`: images are fetched there with the device certificate. */
    readonly downloadUrl: string;
    readonly model: string;
    readonly hardwareRevision: string;
    /** What the device runs before its first update. */
    readonly factoryVersion: string;
    readonly factorySecurityVersion: number;
    /** A new image must connect and report within this long after booting, or the device reverts. */
    readonly healthWindowMs: number;
    /** Boots of a new image that never became healthy before the device falls back (bootcount). */
    readonly maxTrialBoots: number;
    /** Consecutive download attempts without progress before the job fails. */
    readonly downloadRetries: number;
    readonly downloadTimeoutMs: number;
  };
}

/** What a caller writes: required fields, the rest optional and nested. */
export type AgentConfigInput = { readonly deviceId: string; readonly dataDir: string; readonly mqtt: { readonly url: string } & Partial<AgentConfig['mqtt']> } & {
  readonly [K in Exclude<keyof AgentConfig, 'deviceId' | 'dataDir' | 'mqtt' | 'ota'>]?: Partial<AgentConfig[K]>;
} & {
  readonly ota?: Pick<NonNullable<AgentConfig['ota']>, 'rootKeysFile' | 'downloadUrl' | 'model' | 'hardwareRevision'> & Partial<NonNullable<AgentConfig['ota']>>;
};

export const AGENT_DEFAULTS = {
  mqtt: { keepaliveS: 30, connectTimeoutMs: 10_000 },
  identity: { renewAtFraction: 0.66 },
  queue: { maxItems: 100_000, maxBytes: 64 * 1024 * 1024, maxAgeMs: 7 * 86_400_000, inflightWindow: 32, ackTimeoutMs: 30_000 },
  reconnect: { baseMs: 1_000, capMs: 120_000, stableAfterMs: 10_000, refusedDelayMs: 15 * 60_000 },
  timeSync: { intervalMs: 15 * 60_000, keepSamples: 8, waitOnConnectMs: 2_000 },
  health: { intervalMs: 60_000, restartLoopThreshold: 5, restartLoopWindowMs: 10 * 60_000 },
  logs: { level: 'info', maxEntriesPerSecond: 50, flushIntervalMs: 1_000 },
  commands: { rememberIds: 1_000 },
  ota: { factoryVersion: '0.0.0', factorySecurityVersion: 0, healthWindowMs: 5 * 60_000, maxTrialBoots: 3, downloadRetries: 10, downloadTimeoutMs: 60_000 },
} as const;

const int = (minimum: number, maximum = Number.MAX_SAFE_INTEGER) => ({ type: 'integer', minimum, maximum });
const obj = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', additionalProperties: false, properties, required });

const CONFIG_SCHEMA = obj(
  {
    deviceId: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' },
    dataDir: { type: 'string', minLength: 1 },
    mqtt: obj({ url: { type: 'string', pattern: '^mqtts://[^/]+:[0-9]+/?$' }, keepaliveS: int(1, 3600), connectTimeoutMs: int(100, 600_000), servername: { type: 'string' } }, ['url']),
    identity: obj({
      dir: { type: 'string', minLength: 1 },
      claimToken: { type: 'string', minLength: 1 },
      enrollUrl: { type: 'string', pattern: '^https?://' },
      renewAtFraction: { type: 'number', minimum: 0, maximum: 0.95 },
      pkcs11: obj({ library: { type: 'string' }, tokenLabel: { type: 'string' }, pin: { type: 'string' }, keyLabel: { type: 'string' } }, ['library', 'tokenLabel', 'pin', 'keyLabel']),
    }),
    queue: obj({ maxItems: int(1), maxBytes: int(1024), maxAgeMs: int(1000), inflightWindow: int(1, 1000), ackTimeoutMs: int(100) }),
    reconnect: obj({ baseMs: int(1), capMs: int(1), stableAfterMs: int(0), refusedDelayMs: int(0) }),
    timeSync: obj({ intervalMs: int(1000), keepSamples: int(1, 100), waitOnConnectMs: int(0, 60_000) }),
    health: obj({ intervalMs: int(1000), restartLoopThreshold: int(2, 1000), restartLoopWindowMs: int(1000) }),
    logs: obj({ level: { enum: ['trace', 'debug', 'info', 'warn', 'error'] }, maxEntriesPerSecond: int(1, 10_000), flushIntervalMs: int(50, 60_000) }),
    commands: obj({ rememberIds: int(1, 100_000) }),
    ota: obj(
      {
        rootKeysFile: { type: 'string', minLength: 1 },
        downloadUrl: { type: 'string', pattern: '^https://[^/]+(:[0-9]+)?/?$' },
        model: { type: 'string', minLength: 1, maxLength: 128 },
        hardwareRevision: { type: 'string', minLength: 1, maxLength: 128 },
        factoryVersion: { type: 'string', pattern: '^[0-9]+\\.[0-9]+\\.[0-9]+' },
        factorySecurityVersion: int(0),
        healthWindowMs: int(1000),
        maxTrialBoots: int(1, 100),
        downloadRetries: int(0, 1000),
        downloadTimeoutMs: int(1000),
      },
      ['rootKeysFile', 'downloadUrl', 'model', 'hardwareRevision'],
    ),
  },
  ['deviceId', 'dataDir', 'mqtt'],
);

const validate = new Ajv({ allErrors: true, strict: true }).compile(CONFIG_SCHEMA);

export class AgentConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: string[]) {
    super(`invalid agent configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'AgentConfigError';
    this.problems = problems;
  }
}

export const describeErrors = (errors: readonly ErrorObject[] | null | undefined): string[] =>
  (errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? 'invalid'}${e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : ''}`);

/** Validates (reporting every problem at once), applies defaults and freezes. */
export function resolveConfig(input: AgentConfigInput): AgentConfig {
  if (!validate(input)) throw new AgentConfigError(describeErrors(validate.errors));
  const out: Record<string, unknown> = { deviceId: input.deviceId, dataDir: input.dataDir };
  const sections = ['mqtt', 'identity', 'queue', 'reconnect', 'timeSync', 'health', 'logs', 'commands'] as const;
  for (const k of sections) out[k] = Object.freeze({ ...AGENT_DEFAULTS[k], ...((input as Record<string, unknown>)[k] as object) });
  if (input.ota) out.ota = Object.freeze({ ...AGENT_DEFAULTS.ota, ...input.ota });
  const config = Object.freeze(out) as unknown as AgentConfig;
  if (config.reconnect.capMs < config.reconnect.baseMs) throw new AgentConfigError(['/reconnect/capMs: must be >= baseMs']);
  return config;
}
