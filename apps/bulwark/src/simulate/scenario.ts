import { type Problems, duration, fraction, keysOf, list, num, obj, str } from './checks.js';

/**
 * A simulation, as written in a scenario file (JSON or YAML; docs/guides/simulate.md) and
 * resolved: durations in ms, shares as fractions, defaults filled in.
 */
export interface Scenario {
  readonly name: string;
  /** Makes every random choice (values, which devices misbehave, jitter) repeatable. */
  readonly seed: number;
  readonly devices: number;
  readonly durationMs: number;
  /** After the run: how long to wait for queues to drain before reading the platform back. */
  readonly drainMs: number;
  /** Device ids are `<idPrefix><n>` (n zero-padded): a run's devices are told apart by it. */
  readonly idPrefix: string;
  readonly profiles: readonly Profile[];
  readonly clockSkew: { readonly share: number; readonly maxMs: number };
  readonly crashLoop: { readonly share: number; readonly everyMs: number };
  readonly misbehaving: { readonly share: number; readonly kinds: readonly Misbehaviour[] };
  readonly phases: readonly Phase[];
  readonly actions: readonly Action[];
  readonly targets: Targets;
  readonly server: { readonly url?: string; readonly mqtt?: string; readonly deviceHttps?: string };
  /** Devices that take firmware updates (the agent's A/B updater, slot files in a temporary directory). */
  readonly firmware: FirmwareSpec | null;
}

/** What the virtual devices run before an update, and what they trust. */
export interface FirmwareSpec {
  /** The platform's firmware root key set (its `ota.rootKeysFile`): the devices pin it. */
  readonly rootKeysFile: string;
  readonly model: string;
  readonly hardwareRevision: string;
  readonly version: string;
  readonly securityVersion: number;
}

export interface Profile {
  readonly name: string;
  /** Weight among profiles (normalised). */
  readonly share: number;
  /** `name@version`; registered by the simulator when the platform does not have it. */
  readonly schema: string;
  readonly intervalMs: number;
  /** Every `everyMs`, each device sends `readings` more at once. */
  readonly burst: { readonly everyMs: number; readonly readings: number } | null;
  readonly fields: Readonly<Record<string, FieldSpec>>;
}

/** A numeric field: Gaussian noise around a mean, with optional drift, spikes and stuck runs. */
export interface FieldSpec {
  readonly mean: number;
  readonly sigma: number;
  /** Added to the mean per reading. */
  readonly drift: number;
  readonly spike: { readonly probability: number; readonly size: number } | null;
  readonly stuck: { readonly probability: number; readonly length: number } | null;
}

export const MISBEHAVIOURS = ['bad_payload', 'unknown_schema'] as const;
export type Misbehaviour = (typeof MISBEHAVIOURS)[number];

/** Network conditions from `atMs` until the next phase. */
export interface Phase {
  readonly name: string;
  readonly atMs: number;
  readonly impair: Impairment;
}

export interface Impairment {
  readonly latencyMs: number;
  readonly jitterMs: number;
  /** Connections reset per device per minute (on average). */
  readonly resetsPerMinute: number;
  /** This share of the devices cut off (their traffic goes nowhere) for the phase. */
  readonly partition: number;
  /** Connections dropped and refused for `downMs` every `everyMs`. */
  readonly flapping: { readonly everyMs: number; readonly downMs: number } | null;
  /** Packet loss in percent: needs a network namespace (root); see the report's notes. */
  readonly lossPercent: number;
  /** A bandwidth cap in kbit/s: needs a network namespace (root). */
  readonly bandwidthKbit: number | null;
}

export const NO_IMPAIRMENT: Impairment = { latencyMs: 0, jitterMs: 0, resetsPerMinute: 0, partition: 0, flapping: null, lossPercent: 0, bandwidthKbit: null };

/** An operator's action at a time: a command or a twin change to a share of the devices. */
export type Action =
  | { readonly atMs: number; readonly kind: 'command'; readonly share: number; readonly name: string; readonly params: Readonly<Record<string, unknown>> }
  | { readonly atMs: number; readonly kind: 'twin'; readonly share: number; readonly patch: Readonly<Record<string, unknown>> }
  /** A staged rollout of an uploaded artifact to the run's devices; `failHealth` of them fail the new image's health check (and revert). */
  | { readonly atMs: number; readonly kind: 'rollout'; readonly share: number; readonly artifactId: string; readonly strategy: Readonly<Record<string, unknown>>; readonly gates: Readonly<Record<string, unknown>>; readonly failHealth: number };

export interface Targets {
  /** Stored ÷ sent, in percent. */
  readonly deliveredPercent: number | null;
  /** Sent → stored at the platform, 99th percentile. */
  readonly latencyP99Ms: number | null;
  readonly commandsAnsweredPercent: number | null;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const SCHEMA = /^[a-z0-9][a-z0-9._-]{0,63}@[1-9][0-9]{0,5}$/;
const FIELD = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const ID_PREFIX = /^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/;
/** One process's share is bounded by open files (20,000 here) and memory: more is a typo. */
export const MAX_DEVICES = 100_000;
/** Below this the simulator would be a flood tool, not a fleet. */
const MIN_INTERVAL_MS = 100;
const MAX_RUN_MS = 7 * 86_400_000;

export const DEFAULT_PROFILE: Profile = {
  name: 'env',
  share: 1,
  schema: 'sim-env@1',
  intervalMs: 10_000,
  burst: null,
  fields: { temp_c: { mean: 21, sigma: 0.5, drift: 0, spike: null, stuck: null }, humidity: { mean: 45, sigma: 2, drift: 0, spike: null, stuck: null } },
};

export class ScenarioError extends Error {
  constructor(readonly problems: Problems) {
    super(`the scenario is not valid:\n${problems.map((p) => `  ${p.path || '(scenario)'}: ${p.reason}`).join('\n')}`);
  }
}

/** Checks a scenario and resolves it; every problem found is listed (ScenarioError). */
export function checkScenario(input: unknown): Scenario {
  const problems: Problems = [];
  const s = obj(input, '', problems) ?? {};
  keysOf(s, '', ['name', 'seed', 'devices', 'duration', 'drain', 'idPrefix', 'profiles', 'clockSkew', 'crashLoop', 'misbehaving', 'phases', 'actions', 'targets', 'server', 'firmware'], problems);
  const name = str(s.name, 'name', problems, { pattern: NAME, fallback: 'scenario' });
  const devices = num(s.devices, 'devices', problems, { min: 1, max: MAX_DEVICES, integer: true, fallback: 10 });
  const durationMs = duration(s.duration, 'duration', problems, { min: 1000, max: MAX_RUN_MS, fallback: 60_000 });
  const profiles = s.profiles === undefined ? [DEFAULT_PROFILE] : list(s.profiles, 'profiles', problems, { min: 1, max: 32 }).map((p, i) => profile(p, `profiles[${i}]`, problems));
  for (const [i, p] of profiles.entries()) {
    const readingsPerSecond = (((devices * p.share) / profiles.reduce((sum, q) => sum + q.share, 0)) * 1000) / p.intervalMs;
    if (readingsPerSecond > 50_000) problems.push({ path: `profiles[${i}].interval`, reason: `${Math.round(readingsPerSecond)} readings/s from one simulator is more than it can make (50,000)` });
  }
  const skew = obj(s.clockSkew, 'clockSkew', problems, true) ?? {};
  keysOf(skew, 'clockSkew', ['share', 'max'], problems);
  const crash = obj(s.crashLoop, 'crashLoop', problems, true) ?? {};
  keysOf(crash, 'crashLoop', ['share', 'every'], problems);
  const bad = obj(s.misbehaving, 'misbehaving', problems, true) ?? {};
  keysOf(bad, 'misbehaving', ['share', 'kinds'], problems);
  const kinds =
    bad.kinds === undefined
      ? [...MISBEHAVIOURS]
      : list(bad.kinds, 'misbehaving.kinds', problems, { min: 1, max: MISBEHAVIOURS.length }).flatMap((k, i) => {
          if (MISBEHAVIOURS.includes(k as Misbehaviour)) return [k as Misbehaviour];
          problems.push({ path: `misbehaving.kinds[${i}]`, reason: `must be one of ${MISBEHAVIOURS.join(', ')}` });
          return [];
        });
  const phases = s.phases === undefined ? [{ name: 'steady', atMs: 0, impair: NO_IMPAIRMENT }] : list(s.phases, 'phases', problems, { min: 1, max: 100 }).map((p, i) => phase(p, `phases[${i}]`, problems, durationMs));
  for (let i = 1; i < phases.length; i += 1) {
    if ((phases[i] as Phase).atMs <= (phases[i - 1] as Phase).atMs) problems.push({ path: `phases[${i}].at`, reason: 'phases must start in order, each after the one before' });
  }
  if (phases.length > 0 && (phases[0] as Phase).atMs !== 0) problems.push({ path: 'phases[0].at', reason: 'the first phase starts at 0s' });
  const actions = s.actions === undefined ? [] : list(s.actions, 'actions', problems, { max: 1000 }).map((a, i) => action(a, `actions[${i}]`, problems, durationMs));
  const t = obj(s.targets, 'targets', problems, true) ?? {};
  keysOf(t, 'targets', ['delivered', 'latencyP99', 'commandsAnswered'], problems);
  const server = obj(s.server, 'server', problems, true) ?? {};
  keysOf(server, 'server', ['url', 'mqtt', 'deviceHttps'], problems);
  const url = server.url === undefined ? undefined : str(server.url, 'server.url', problems, { pattern: /^https?:\/\/\S+$/ });
  const mqtt = server.mqtt === undefined ? undefined : str(server.mqtt, 'server.mqtt', problems, { pattern: /^mqtts:\/\/\S+$/ });
  const deviceHttps = server.deviceHttps === undefined ? undefined : str(server.deviceHttps, 'server.deviceHttps', problems, { pattern: /^https:\/\/\S+$/ });
  const firmware = s.firmware === undefined ? null : firmwareSpec(s.firmware, problems);
  if (!firmware && actions.some((a) => a.kind === 'rollout')) problems.push({ path: 'firmware', reason: "a rollout action needs the devices' firmware (rootKeys, model, hardwareRevision, version, securityVersion)" });
  if (actions.filter((a) => a.kind === 'rollout').length > 1) problems.push({ path: 'actions', reason: 'at most one rollout a run' });
  const scenario: Scenario = {
    name,
    devices,
    durationMs,
    seed: num(s.seed, 'seed', problems, { min: 0, max: 2 ** 31, integer: true, fallback: 1 }),
    drainMs: duration(s.drain, 'drain', problems, { min: 0, max: 3_600_000, fallback: 30_000 }),
    idPrefix: str(s.idPrefix, 'idPrefix', problems, { pattern: ID_PREFIX, fallback: `sim-${name}-` }),
    profiles,
    clockSkew: { share: fraction(skew.share, 'clockSkew.share', problems, 0), maxMs: duration(skew.max, 'clockSkew.max', problems, { min: 0, max: 86_400_000, fallback: 120_000 }) },
    crashLoop: { share: fraction(crash.share, 'crashLoop.share', problems, 0), everyMs: duration(crash.every, 'crashLoop.every', problems, { min: 1000, max: MAX_RUN_MS, fallback: 30_000 }) },
    misbehaving: { share: fraction(bad.share, 'misbehaving.share', problems, 0), kinds },
    phases,
    actions,
    targets: {
      deliveredPercent: t.delivered === undefined ? null : num(t.delivered, 'targets.delivered', problems, { min: 0, max: 100 }),
      latencyP99Ms: t.latencyP99 === undefined ? null : duration(t.latencyP99, 'targets.latencyP99', problems, { min: 1, max: 3_600_000 }),
      commandsAnsweredPercent: t.commandsAnswered === undefined ? null : num(t.commandsAnswered, 'targets.commandsAnswered', problems, { min: 0, max: 100 }),
    },
    server: { ...(url !== undefined ? { url } : {}), ...(mqtt !== undefined ? { mqtt } : {}), ...(deviceHttps !== undefined ? { deviceHttps } : {}) },
    firmware,
  };
  if (problems.length > 0) throw new ScenarioError(problems);
  return scenario;
}

function profile(input: unknown, path: string, problems: Problems): Profile {
  const p = obj(input, path, problems) ?? {};
  keysOf(p, path, ['name', 'share', 'schema', 'interval', 'burst', 'fields'], problems);
  const burst = p.burst === undefined ? null : obj(p.burst, `${path}.burst`, problems);
  if (burst) keysOf(burst, `${path}.burst`, ['every', 'readings'], problems);
  const fieldsIn = p.fields === undefined ? undefined : obj(p.fields, `${path}.fields`, problems);
  const fields: Record<string, FieldSpec> = {};
  for (const [k, v] of Object.entries(fieldsIn ?? {})) {
    if (!FIELD.test(k)) problems.push({ path: `${path}.fields.${k}`, reason: 'a field name is a letter or _ then letters, digits or _ (at most 64)' });
    else fields[k] = field(v, `${path}.fields.${k}`, problems);
  }
  if (fieldsIn && Object.keys(fieldsIn).length === 0) problems.push({ path: `${path}.fields`, reason: 'at least one field' });
  return {
    name: str(p.name, `${path}.name`, problems, { pattern: NAME, fallback: `profile-${path}` }),
    share: num(p.share, `${path}.share`, problems, { min: 0, max: 1_000_000, fallback: 1 }),
    schema: str(p.schema, `${path}.schema`, problems, { pattern: SCHEMA, fallback: DEFAULT_PROFILE.schema }),
    intervalMs: duration(p.interval, `${path}.interval`, problems, { min: MIN_INTERVAL_MS, max: 86_400_000, fallback: 10_000 }),
    burst: burst ? { everyMs: duration(burst.every, `${path}.burst.every`, problems, { min: 1000, max: MAX_RUN_MS }), readings: num(burst.readings, `${path}.burst.readings`, problems, { min: 1, max: 1000, integer: true }) } : null,
    fields: fieldsIn === undefined ? DEFAULT_PROFILE.fields : fields,
  };
}

function field(input: unknown, path: string, problems: Problems): FieldSpec {
  const f = obj(input, path, problems) ?? {};
  keysOf(f, path, ['mean', 'sigma', 'drift', 'spike', 'stuck'], problems);
  const spike = f.spike === undefined ? null : obj(f.spike, `${path}.spike`, problems);
  if (spike) keysOf(spike, `${path}.spike`, ['probability', 'size'], problems);
  const stuck = f.stuck === undefined ? null : obj(f.stuck, `${path}.stuck`, problems);
  if (stuck) keysOf(stuck, `${path}.stuck`, ['probability', 'length'], problems);
  return {
    mean: num(f.mean, `${path}.mean`, problems, { min: -1e12, max: 1e12, fallback: 0 }),
    sigma: num(f.sigma, `${path}.sigma`, problems, { min: 0, max: 1e12, fallback: 1 }),
    drift: num(f.drift, `${path}.drift`, problems, { min: -1e9, max: 1e9, fallback: 0 }),
    spike: spike ? { probability: fraction(spike.probability, `${path}.spike.probability`, problems, 0.001), size: num(spike.size, `${path}.spike.size`, problems, { min: -1e12, max: 1e12, fallback: 5 }) } : null,
    stuck: stuck ? { probability: fraction(stuck.probability, `${path}.stuck.probability`, problems, 0.001), length: num(stuck.length, `${path}.stuck.length`, problems, { min: 1, max: 1_000_000, integer: true, fallback: 20 }) } : null,
  };
}

function phase(input: unknown, path: string, problems: Problems, runMs: number): Phase {
  const p = obj(input, path, problems) ?? {};
  keysOf(p, path, ['name', 'at', 'impair'], problems);
  const atMs = duration(p.at, `${path}.at`, problems, { min: 0, max: MAX_RUN_MS, fallback: 0 });
  if (atMs >= runMs) problems.push({ path: `${path}.at`, reason: 'starts after the run ends (duration)' });
  const i = p.impair === undefined ? {} : (obj(p.impair, `${path}.impair`, problems) ?? {});
  const ip = `${path}.impair`;
  keysOf(i, ip, ['latency', 'jitter', 'resetsPerMinute', 'partition', 'flapping', 'loss', 'bandwidthKbit'], problems);
  const flap = i.flapping === undefined ? null : obj(i.flapping, `${ip}.flapping`, problems);
  if (flap) keysOf(flap, `${ip}.flapping`, ['every', 'down'], problems);
  const flapping = flap ? { everyMs: duration(flap.every, `${ip}.flapping.every`, problems, { min: 1000, max: MAX_RUN_MS }), downMs: duration(flap.down, `${ip}.flapping.down`, problems, { min: 100, max: MAX_RUN_MS }) } : null;
  if (flapping && flapping.downMs >= flapping.everyMs) problems.push({ path: `${ip}.flapping.down`, reason: 'must be shorter than flapping.every' });
  return {
    name: str(p.name, `${path}.name`, problems, { pattern: NAME, fallback: `phase-${path}` }),
    atMs,
    impair: {
      latencyMs: duration(i.latency, `${ip}.latency`, problems, { min: 0, max: 60_000, fallback: 0 }),
      jitterMs: duration(i.jitter, `${ip}.jitter`, problems, { min: 0, max: 60_000, fallback: 0 }),
      resetsPerMinute: num(i.resetsPerMinute, `${ip}.resetsPerMinute`, problems, { min: 0, max: 60, fallback: 0 }),
      partition: fraction(i.partition, `${ip}.partition`, problems, 0),
      flapping,
      lossPercent: num(i.loss, `${ip}.loss`, problems, { min: 0, max: 100, fallback: 0 }),
      bandwidthKbit: i.bandwidthKbit === undefined ? null : num(i.bandwidthKbit, `${ip}.bandwidthKbit`, problems, { min: 8, max: 10_000_000, integer: true }),
    },
  };
}

function action(input: unknown, path: string, problems: Problems, runMs: number): Action {
  const a = obj(input, path, problems) ?? {};
  const atMs = duration(a.at, `${path}.at`, problems, { min: 0, max: MAX_RUN_MS, fallback: 0 });
  if (atMs >= runMs) problems.push({ path: `${path}.at`, reason: 'comes after the run ends (duration)' });
  const share = fraction(a.share, `${path}.share`, problems, 1);
  if ('command' in a) {
    keysOf(a, path, ['at', 'share', 'command'], problems);
    const c = obj(a.command, `${path}.command`, problems) ?? {};
    keysOf(c, `${path}.command`, ['name', 'params'], problems);
    const params = c.params === undefined ? {} : (obj(c.params, `${path}.command.params`, problems) ?? {});
    return { atMs, share, kind: 'command', name: str(c.name, `${path}.command.name`, problems, { pattern: /^[a-z][a-z0-9._-]{0,63}$/, fallback: 'ping' }), params };
  }
  if ('twin' in a) {
    keysOf(a, path, ['at', 'share', 'twin'], problems);
    const patch = obj(a.twin, `${path}.twin`, problems) ?? {};
    if (Object.keys(patch).length === 0) problems.push({ path: `${path}.twin`, reason: 'a twin change sets at least one key' });
    return { atMs, share, kind: 'twin', patch };
  }
  if ('rollout' in a) {
    keysOf(a, path, ['at', 'share', 'rollout'], problems);
    const r = obj(a.rollout, `${path}.rollout`, problems) ?? {};
    keysOf(r, `${path}.rollout`, ['artifact', 'strategy', 'gates', 'failHealth'], problems);
    return {
      atMs,
      share,
      kind: 'rollout',
      artifactId: str(r.artifact, `${path}.rollout.artifact`, problems, { pattern: /^[A-Za-z0-9._:-]{1,64}$/ }),
      strategy: r.strategy === undefined ? { waves: [{ percent: 100 }] } : (obj(r.strategy, `${path}.rollout.strategy`, problems) ?? {}),
      gates: r.gates === undefined ? { minDevices: 1, onFailure: 'pause' } : (obj(r.gates, `${path}.rollout.gates`, problems) ?? {}),
      failHealth: fraction(r.failHealth, `${path}.rollout.failHealth`, problems, 0),
    };
  }
  problems.push({ path, reason: 'an action is a command ({at, share, command: {name, params}}), a twin change ({at, share, twin: {…}}) or a rollout ({at, rollout: {artifact, strategy, gates, failHealth}})' });
  return { atMs, share, kind: 'twin', patch: {} };
}

function firmwareSpec(input: unknown, problems: Problems): FirmwareSpec {
  const f = obj(input, 'firmware', problems) ?? {};
  keysOf(f, 'firmware', ['rootKeys', 'model', 'hardwareRevision', 'version', 'securityVersion'], problems);
  return {
    rootKeysFile: str(f.rootKeys, 'firmware.rootKeys', problems, { pattern: /^\S{1,1024}$/ }),
    model: str(f.model, 'firmware.model', problems, { pattern: /^[A-Za-z0-9._-]{1,64}$/ }),
    hardwareRevision: str(f.hardwareRevision, 'firmware.hardwareRevision', problems, { pattern: /^[A-Za-z0-9._-]{1,32}$/ }),
    version: str(f.version, 'firmware.version', problems, { pattern: /^\d+\.\d+\.\d+\S*$/ }),
    securityVersion: num(f.securityVersion, 'firmware.securityVersion', problems, { min: 0, max: 2_147_483_647, integer: true, fallback: 0 }),
  };
}
