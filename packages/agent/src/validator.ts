import { Ajv, type ValidateFunction } from 'ajv';
import { COMMAND_NAME_PATTERN, CommandRequest, DEVICE_MESSAGE_LIMITS, ENVELOPE_LIMITS, TwinDesired } from '@bulwark/protocol';
import { describeErrors } from './config.js';

/**
 * Everything that arrives from the cloud is checked here before anything acts on it: size
 * before parsing, JSON, nesting depth, forbidden keys, the message's shape, then the
 * handler's own JSON Schema (types, bounds, enums; unknown properties refused unless the
 * schema allows them). A refusal carries a stable reason and a readable detail.
 */

export type Refusal = { readonly ok: false; readonly id: string | null; readonly reason: string; readonly detail: string };
export type Checked<T> = { readonly ok: true; readonly value: T } | Refusal;

export type JsonSchema = Readonly<Record<string, unknown>>;

const refuse = (reason: string, detail: string, id: string | null = null): Refusal => ({ ok: false, id, reason, detail });

/** Strict mode refuses schemas with unknown keywords or loose types. */
export function newAjv(): Ajv {
  return new Ajv({ allErrors: true, strict: true, strictTypes: true, strictRequired: true, coerceTypes: false, useDefaults: false });
}

/** Object schemas without an explicit `additionalProperties` get `false`, all the way down. */
export function closeObjects(schema: JsonSchema): JsonSchema {
  const walk = (s: unknown): unknown => {
    if (Array.isArray(s)) return s.map(walk);
    if (!s || typeof s !== 'object') return s;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(s))
      out[k] =
        k === 'properties' || k === 'patternProperties' || k === '$defs' || k === 'definitions'
          ? Object.fromEntries(Object.entries(v as object).map(([p, sub]) => [p, walk(sub)]))
          : k === 'enum' || k === 'const' || k === 'default' || k === 'examples'
            ? v
            : walk(v);
    if (out.type === 'object' && !('additionalProperties' in out) && !('unevaluatedProperties' in out)) out.additionalProperties = false;
    return out;
  };
  return walk(schema) as JsonSchema;
}

/** JSON with object keys sorted at every level: equal schemas give equal text, whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Compiles the JSON Schemas of command parameters and remote configuration (objects closed,
 * see `closeObjects`), each once: compiled functions are kept by the schema's canonical JSON,
 * so the agents of one process that share a Validator (`deps.validator`) and register the
 * same schemas share one Ajv and one compiled function per schema. A compiled function keeps
 * no state between calls that matters here (`errors` is read right after each call).
 */
export class Validator {
  readonly #ajv: Ajv;
  readonly #compiled = new Map<string, ValidateFunction>();
  #compiles = 0;

  constructor(ajv: Ajv = newAjv()) {
    this.#ajv = ajv;
  }

  compile(schema: JsonSchema): ValidateFunction {
    const key = canonicalJson(schema);
    let validate = this.#compiled.get(key);
    if (!validate) {
      validate = this.#ajv.compile(closeObjects(schema));
      this.#compiled.set(key, validate);
      this.#compiles += 1;
    }
    return validate;
  }

  /** Schemas compiled so far (each distinct schema once). */
  get compiles(): number {
    return this.#compiles;
  }
}

/** Parses bounded JSON: size limit before reading, depth limit and no `__proto__` after. */
export function parseBounded(payload: Buffer, maxBytes: number): Checked<unknown> {
  if (payload.length > maxBytes) return refuse('too_large', `${payload.length} bytes, at most ${maxBytes}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(payload);
  } catch {
    return refuse('invalid_utf8', 'the payload is not UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return refuse('malformed_json', (err as Error).message);
  }
  const problem = structureProblem(value, 0);
  return problem ? refuse(problem.reason, problem.detail) : { ok: true, value };
}

function structureProblem(v: unknown, depth: number): { reason: string; detail: string } | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  if (depth >= ENVELOPE_LIMITS.maxDepth) return { reason: 'too_deep', detail: `nested deeper than ${ENVELOPE_LIMITS.maxDepth} levels` };
  for (const [k, child] of Object.entries(v)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') return { reason: 'forbidden_key', detail: `key "${k}" is not allowed` };
    const p = structureProblem(child, depth + 1);
    if (p) return p;
  }
  return undefined;
}

/** The fields the contract's messages have; anything else is refused. */
const COMMAND_FIELDS = Object.keys(CommandRequest.properties);
const DESIRED_FIELDS = Object.keys(TwinDesired.properties);

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Checks the envelope of a command (not its params): a CommandRequest `{id, params, issuedAt, expiresAt?}` and nothing else. */
export function checkCommand(name: string, payload: Buffer): Checked<CommandRequest> {
  if (!COMMAND_NAME_PATTERN.test(name)) return refuse('bad_name', `command name must match ${COMMAND_NAME_PATTERN.source}`);
  const parsed = parseBounded(payload, DEVICE_MESSAGE_LIMITS.commandMaxBytes);
  if (!parsed.ok) return parsed;
  const v = parsed.value;
  if (!isPlainObject(v)) return refuse('bad_request', 'the command must be a JSON object');
  const id = typeof v.id === 'string' && v.id.length >= 1 && v.id.length <= DEVICE_MESSAGE_LIMITS.commandIdMaxLength && ![...v.id].some((c) => c.charCodeAt(0) < 0x20) ? v.id : null;
  if (id === null) return refuse('bad_request', `/id: expected a string of 1-${DEVICE_MESSAGE_LIMITS.commandIdMaxLength} printable characters`);
  const extra = Object.keys(v).filter((k) => !COMMAND_FIELDS.includes(k));
  if (extra.length > 0) return refuse('bad_request', `unknown field(s): ${extra.join(', ')}`, id);
  if (!isPlainObject(v.params)) return refuse('bad_request', '/params: expected an object', id);
  if (!finite(v.issuedAt)) return refuse('bad_request', '/issuedAt: expected a number (ms since the epoch)', id);
  if (v.expiresAt !== undefined && !finite(v.expiresAt)) return refuse('bad_request', '/expiresAt: expected a number (ms since the epoch)', id);
  const value: CommandRequest = v.expiresAt === undefined ? { id, params: v.params, issuedAt: v.issuedAt } : { id, params: v.params, issuedAt: v.issuedAt, expiresAt: v.expiresAt };
  return { ok: true, value };
}

/** Checks a desired-configuration document's shape (its `config` is checked against the agent's schema by the caller). */
export function checkDesired(payload: Buffer): Checked<TwinDesired> {
  const parsed = parseBounded(payload, DEVICE_MESSAGE_LIMITS.twinMaxBytes);
  if (!parsed.ok) return parsed;
  const v = parsed.value;
  if (!isPlainObject(v)) return refuse('bad_request', 'the desired document must be a JSON object');
  if (!Number.isSafeInteger(v.version) || (v.version as number) < 0) return refuse('bad_request', '/version: expected an integer >= 0');
  if (!isPlainObject(v.config)) return refuse('bad_request', '/config: expected an object');
  if (v.ts !== undefined && !finite(v.ts)) return refuse('bad_request', '/ts: expected a number');
  const extra = Object.keys(v).filter((k) => !DESIRED_FIELDS.includes(k));
  if (extra.length > 0) return refuse('bad_request', `unknown field(s): ${extra.join(', ')}`);
  return { ok: true, value: { version: v.version as number, config: v.config, ts: finite(v.ts) ? v.ts : 0 } };
}

/** Runs a compiled schema; the detail lists `path: problem` lines. */
export function checkAgainst(validate: ValidateFunction, value: unknown, reason: string, id: string | null = null): Refusal | undefined {
  if (validate(value)) return undefined;
  return refuse(reason, describeErrors(validate.errors).join('; ').slice(0, 1000), id);
}
