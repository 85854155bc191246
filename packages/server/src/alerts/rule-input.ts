import { PlatformError } from '@bulwark/core';
import { GROUP_ID_PATTERN } from '../registry/index.js';
import type { AlertRule, Comparison, RuleCondition, RuleScope, Severity } from './alerts.js';

/** A rule as people send it: durations as "30s", "5m", "2h", "1d" or milliseconds. */
export interface RuleInput {
  readonly name?: unknown;
  readonly severity?: unknown;
  readonly scope?: unknown;
  readonly condition?: unknown;
  readonly enabled?: unknown;
}

export interface Problem {
  readonly path: string;
  readonly reason: string;
}

/** What a rule's fields are checked against: a schema's numeric fields (undefined: no such schema). */
export type SchemaFields = (schemaId: string) => Promise<ReadonlyMap<string, FieldFacts> | undefined>;
export interface FieldFacts {
  readonly numeric: boolean;
  /** Stored hashed or encrypted: a rule cannot compare it. */
  readonly concealed: boolean;
}

const SEVERITIES: readonly Severity[] = ['info', 'warning', 'critical'];
const OPS: readonly Comparison[] = ['>', '>=', '<', '<='];
const KINDS = ['threshold', 'rate', 'absence', 'anomaly', 'offline', 'flapping', 'restart_loop', 'dead_letters', 'clock_skew', 'firmware_security', 'queue_dropping', 'rollout_stopped', 'twin_drift', 'cert_expiry', 'cohort', 'link_quality'] as const;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MAX_DURATION_MS = 30 * 86_400_000;
/** How far ahead a certificate-expiry rule may look. */
const MAX_EXPIRY_WINDOW_MS = 365 * 86_400_000;
const FIELD = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const NAME_LIST_MAX = 1000;

/** "5m" → 300000. Undefined when it is not a duration (or longer than `maxMs`, 30 days unless said). */
export function parseDuration(value: unknown, maxMs = MAX_DURATION_MS): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 && value <= maxMs ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(value.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  return ms <= maxMs ? ms : undefined;
}

/** 300000 → "5m": durations in summaries and lists. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const)
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** 1030 → "1.0s", 312000 → "5.2m": how long something lasted, in a summary. */
export function humanDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)}m`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)}h`;
  return `${(ms / 86_400_000).toFixed(1)}d`;
}

/**
 * Checks a rule as sent and returns it in stored form, or throws BULWARK_ERR_VALIDATION
 * listing every problem with its path (`condition.for: "5 minutes" is not a duration`).
 * Fields of telemetry rules are checked against the scope's schemas (every schema must
 * exist and hold the field as a number); without schemas in the scope a field is taken on
 * trust and matches readings that carry it.
 */
export async function checkRule(input: RuleInput, fields: SchemaFields): Promise<{ name: string; severity: Severity; scope: RuleScope; condition: RuleCondition; enabled: boolean }> {
  const problems: Problem[] = [];
  const fail = (path: string, reason: string) => void problems.push({ path, reason });
  if (typeof input !== 'object' || input === null) throw invalid([{ path: '', reason: 'a rule is an object' }]);
  const name = typeof input.name === 'string' && input.name.trim().length > 0 && input.name.length <= 128 ? input.name.trim() : (fail('name', 'a name of 1-128 characters is required'), '');
  const severity = input.severity === undefined ? 'warning' : SEVERITIES.includes(input.severity as Severity) ? (input.severity as Severity) : (fail('severity', `must be one of ${SEVERITIES.join(', ')}`), 'warning');
  const enabled = input.enabled === undefined ? true : typeof input.enabled === 'boolean' ? input.enabled : (fail('enabled', 'must be true or false'), true);
  const scope = checkScope(input.scope, fail);
  const condition = checkCondition(input.condition, fail);
  if (condition && 'field' in condition && condition.field !== null && problems.length === 0) {
    for (const [i, schemaId] of scope.schemas.entries()) {
      const known = await fields(schemaId);
      if (!known) fail(`scope.schemas[${i}]`, `no schema ${schemaId} is registered`);
      else {
        const facts = known.get(condition.field);
        if (!facts) fail('condition.field', `schema ${schemaId} has no field "${condition.field}"`);
        else if (facts.concealed) fail('condition.field', `"${condition.field}" is stored hashed or encrypted by ${schemaId}: a rule cannot compare it`);
        else if (!facts.numeric && condition.kind !== 'absence') fail('condition.field', `"${condition.field}" is not a number in ${schemaId}`);
      }
    }
  }
  if (problems.length > 0 || !condition) throw invalid(problems);
  return { name, severity, scope, condition, enabled };
}

function invalid(problems: readonly Problem[]): PlatformError {
  return new PlatformError('BULWARK_ERR_VALIDATION', `the rule is not valid: ${problems.map((p) => `${p.path || 'rule'}: ${p.reason}`).join('; ')}`, { details: { problems } });
}

function names(value: unknown, path: string, fail: (path: string, reason: string) => void, pattern?: RegExp): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > NAME_LIST_MAX) {
    fail(path, `must be a list of at most ${NAME_LIST_MAX} names`);
    return [];
  }
  const out: string[] = [];
  value.forEach((v, i) => {
    if (typeof v !== 'string' || v.length === 0 || v.length > 128 || (pattern && !pattern.test(v))) fail(`${path}[${i}]`, pattern ? `must match ${pattern.source}` : 'must be a name of 1-128 characters');
    else out.push(v);
  });
  return [...new Set(out)];
}

function checkScope(value: unknown, fail: (path: string, reason: string) => void): RuleScope {
  const none: RuleScope = { deviceIds: [], tags: [], models: [], groups: [], schemas: [] };
  if (value === undefined) return none;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail('scope', 'must be an object with deviceIds, tags, models, groups or schemas');
    return none;
  }
  const s = value as Record<string, unknown>;
  for (const key of Object.keys(s)) if (!Object.hasOwn(none, key)) fail(`scope.${key}`, 'is not a scope (deviceIds, tags, models, groups, schemas)');
  return {
    deviceIds: names(s.deviceIds, 'scope.deviceIds', fail),
    tags: names(s.tags, 'scope.tags', fail),
    models: names(s.models, 'scope.models', fail),
    groups: names(s.groups, 'scope.groups', fail, new RegExp(GROUP_ID_PATTERN)),
    schemas: names(s.schemas, 'scope.schemas', fail, /^[a-z0-9][a-z0-9._-]{0,63}@[1-9][0-9]{0,5}$/),
  };
}

function checkCondition(value: unknown, fail: (path: string, reason: string) => void): RuleCondition | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail('condition', `an object with a kind (${KINDS.join(', ')}) is required`);
    return undefined;
  }
  const c = value as Record<string, unknown>;
  const allowed: Readonly<Record<RuleCondition['kind'], readonly string[]>> = {
    threshold: ['kind', 'field', 'op', 'value', 'for', 'hysteresis'],
    rate: ['kind', 'field', 'maxPerMinute'],
    absence: ['kind', 'field', 'for'],
    anomaly: ['kind', 'field', 'warmup'],
    offline: ['kind', 'for'],
    flapping: ['kind', 'connects', 'within'],
    restart_loop: ['kind'],
    dead_letters: ['kind', 'perMinute'],
    clock_skew: ['kind', 'max'],
    firmware_security: ['kind'],
    queue_dropping: ['kind'],
    rollout_stopped: ['kind'],
    twin_drift: ['kind', 'for'],
    cert_expiry: ['kind', 'within'],
    cohort: ['kind', 'field', 'by', 'window', 'sigma', 'minPeers'],
    link_quality: ['kind', 'lost', 'duplicates', 'within'],
  };
  if (!KINDS.includes(c.kind as (typeof KINDS)[number])) {
    fail('condition.kind', `must be one of ${KINDS.join(', ')}`);
    return undefined;
  }
  const kind = c.kind as (typeof KINDS)[number];
  for (const key of Object.keys(c)) if (!allowed[kind].includes(key)) fail(`condition.${key}`, `is not a setting of a ${kind} rule (${allowed[kind].join(', ')})`);
  const field = (required: boolean): string | null => {
    if (c.field === undefined && !required) return null;
    if (typeof c.field === 'string' && FIELD.test(c.field)) return c.field;
    fail('condition.field', 'must name a field of the readings (letters, digits, "_")');
    return null;
  };
  /** A duration of at least `min` ms; a problem (one) otherwise. */
  const duration = (key: string, fallback?: number, min = 0, max = MAX_DURATION_MS): number => {
    if (c[key] === undefined && fallback !== undefined) return fallback;
    const ms = parseDuration(c[key], max);
    if (ms === undefined) fail(`condition.${key}`, `${JSON.stringify(c[key]) ?? 'nothing'} is not a duration (e.g. "30s", "5m", "2h", or milliseconds; at most ${formatDuration(max)})`);
    else if (ms < min) fail(`condition.${key}`, `must be at least ${formatDuration(min)}`);
    return ms ?? 0;
  };
  const finite = (key: string, fallback?: number, min = -Infinity): number => {
    if (c[key] === undefined && fallback !== undefined) return fallback;
    if (typeof c[key] === 'number' && Number.isFinite(c[key]) && c[key] >= min) return c[key];
    fail(`condition.${key}`, `must be a number${min > -Infinity ? ` ≥ ${min}` : ''}`);
    return 0;
  };
  switch (kind) {
    case 'threshold': {
      const op = OPS.includes(c.op as Comparison) ? (c.op as Comparison) : (fail('condition.op', `must be one of ${OPS.join(' ')}`), '>');
      return { kind, field: field(true) ?? '', op, value: finite('value'), forMs: duration('for', 0), hysteresis: finite('hysteresis', 0, 0) };
    }
    case 'rate':
      return { kind, field: field(true) ?? '', maxPerMinute: finite('maxPerMinute', undefined, Number.MIN_VALUE) };
    case 'absence':
      return { kind, field: field(false), forMs: duration('for', undefined, 1_000) };
    case 'anomaly': {
      const warmup = c.warmup === undefined ? 50 : Number.isInteger(c.warmup) && (c.warmup as number) >= 10 && (c.warmup as number) <= 10_000 ? (c.warmup as number) : (fail('condition.warmup', 'must be a whole number of readings from 10 to 10000'), 50);
      return { kind, field: field(true) ?? '', warmup };
    }
    case 'offline':
      return { kind, forMs: duration('for', undefined, 1_000) };
    case 'flapping':
      return { kind, connects: Math.round(finite('connects', 5, 1)), withinMs: duration('within', 600_000, 1_000) };
    case 'dead_letters':
      return { kind, perMinute: finite('perMinute', 10, 0) };
    case 'clock_skew':
      return { kind, maxMs: duration('max', 300_000, 1) };
    case 'twin_drift':
      return { kind, forMs: duration('for', 300_000, 1_000) };
    case 'cert_expiry':
      return { kind, withinMs: duration('within', 30 * 86_400_000, 60_000, MAX_EXPIRY_WINDOW_MS) };
    case 'link_quality':
      return { kind, lost: Math.round(finite('lost', 10, 0)), duplicates: Math.round(finite('duplicates', 50, 0)), withinMs: duration('within', 3_600_000, 60_000, 86_400_000) };
    case 'cohort': {
      const by = c.by === undefined || c.by === 'model' ? 'model' : c.by === 'tag' ? 'tag' : (fail('condition.by', 'must be "model" or "tag"'), 'model');
      const minPeers = c.minPeers === undefined ? 5 : Number.isInteger(c.minPeers) && (c.minPeers as number) >= 3 && (c.minPeers as number) <= 100_000 ? (c.minPeers as number) : (fail('condition.minPeers', 'must be a whole number from 3 to 100000'), 5);
      return { kind, field: field(true) ?? '', by, windowMs: duration('window', 600_000, 60_000, 86_400_000), sigma: finite('sigma', 5, Number.MIN_VALUE), minPeers };
    }
    case 'restart_loop':
    case 'firmware_security':
    case 'queue_dropping':
    case 'rollout_stopped':
      return { kind };
  }
}

/** A stored rule's condition as people write it (durations as text). */
export function conditionView(c: RuleCondition): Record<string, unknown> {
  switch (c.kind) {
    case 'threshold':
      return { kind: c.kind, field: c.field, op: c.op, value: c.value, for: formatDuration(c.forMs), hysteresis: c.hysteresis };
    case 'rate':
      return { ...c };
    case 'absence':
      return { kind: c.kind, ...(c.field !== null ? { field: c.field } : {}), for: formatDuration(c.forMs) };
    case 'anomaly':
      return { ...c };
    case 'offline':
      return { kind: c.kind, for: formatDuration(c.forMs) };
    case 'flapping':
      return { kind: c.kind, connects: c.connects, within: formatDuration(c.withinMs) };
    case 'clock_skew':
      return { kind: c.kind, max: formatDuration(c.maxMs) };
    case 'twin_drift':
      return { kind: c.kind, for: formatDuration(c.forMs) };
    case 'cert_expiry':
      return { kind: c.kind, within: formatDuration(c.withinMs) };
    case 'link_quality':
      return { kind: c.kind, lost: c.lost, duplicates: c.duplicates, within: formatDuration(c.withinMs) };
    case 'cohort':
      return { kind: c.kind, field: c.field, by: c.by, window: formatDuration(c.windowMs), sigma: c.sigma, minPeers: c.minPeers };
    default:
      return { ...c };
  }
}

export type { AlertRule };
