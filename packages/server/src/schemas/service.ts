import { isDeepStrictEqual } from 'node:util';
import { type Clock, GenerationalMap, PlatformError } from '@bulwark/core';
import { compatibilityProblems } from './compatibility.js';
import type { SchemaDocument, SchemaProblem, SchemaRepository, TelemetrySchema } from './schemas.js';
import { type CompiledSchema, SCHEMA_ID, createSchemaCompiler } from './validator.js';

/** What `check` found: `ok` when the document would register and the data (if any) is valid. */
export interface SchemaCheck {
  readonly ok: boolean;
  /** The document's `name@version`, as far as it could be read. */
  readonly id: string | null;
  /** Why the document would not register (empty when it would). */
  readonly problems: string[];
  /** This very document is registered under its id already. */
  readonly registered: boolean;
  /** The highest version of this name already registered. */
  readonly latestVersion: number | null;
  readonly data?: { readonly ok: boolean; readonly problems: SchemaProblem[] };
}

export type Validation = { readonly ok: true } | { readonly ok: false; readonly reason: 'unknown_schema' | 'invalid'; readonly problems: SchemaProblem[] };

/** Registers schema versions (checked for compatibility with the one before) and validates data against them. */
export class SchemaService {
  readonly #compile = createSchemaCompiler();
  readonly #compiled = new Map<string, CompiledSchema>();
  readonly #sensitive = new Map<string, ReadonlyMap<string, 'mask' | 'hash' | 'encrypt'>>();
  /** Ids recently looked up and not found, with when to look again: a device naming an unknown schema costs no store read per message. */
  readonly #unknown = new GenerationalMap<string, number>(10_000);

  constructor(
    private readonly repo: SchemaRepository,
    private readonly clock: Clock,
  ) {}

  async register(document: SchemaDocument, createdBy: string): Promise<TelemetrySchema> {
    const compiled = this.#compile(document);
    if (await this.repo.get(compiled.name, compiled.version)) {
      throw new PlatformError('BULWARK_ERR_CONFLICT', `${compiled.name}@${compiled.version} already exists; versions are immutable, register a higher one`);
    }
    const latest = await this.repo.latest(compiled.name);
    if (latest && latest.version > compiled.version) {
      throw new PlatformError('BULWARK_ERR_CONFLICT', `${compiled.name} is already at version ${latest.version}; a new version must be higher`);
    }
    if (latest) {
      const problems = compatibilityProblems(latest.document, document);
      if (problems.length > 0) {
        throw new PlatformError('BULWARK_ERR_SCHEMA_INCOMPATIBLE', `${compiled.name}@${compiled.version} is not compatible with version ${latest.version}: ${problems.join('; ')}`, { details: { problems } });
      }
    }
    const schema: TelemetrySchema = { name: compiled.name, version: compiled.version, document, createdAt: this.clock.now(), createdBy };
    await this.repo.insert(schema);
    this.#compiled.set(`${schema.name}@${schema.version}`, compiled);
    this.#unknown.delete(`${schema.name}@${schema.version}`);
    return schema;
  }

  /**
   * What `register` would say of `document`, without storing it: the schema's own problems
   * (it does not compile) or why the registry would refuse it (the version exists, is not
   * higher, or is not compatible with the latest one). With `data`, also what that data
   * object breaks in the document.
   */
  async check(document: SchemaDocument, data?: unknown): Promise<SchemaCheck> {
    let compiled: CompiledSchema;
    try {
      compiled = this.#compile(document);
    } catch (err) {
      return { ok: false, id: typeof document.$id === 'string' ? document.$id : null, problems: [(err as Error).message], registered: false, latestVersion: null };
    }
    const id = `${compiled.name}@${compiled.version}`;
    const latest = await this.repo.latest(compiled.name);
    const problems: string[] = [];
    const existing = await this.repo.get(compiled.name, compiled.version);
    const registered = existing !== undefined && isDeepStrictEqual(existing.document, document);
    if (existing && !registered) problems.push(`${id} is already registered with another document; versions are immutable, register a higher one`);
    else if (!existing && latest && latest.version > compiled.version) problems.push(`${compiled.name} is already at version ${latest.version}; a new version must be higher`);
    else if (!existing && latest) problems.push(...compatibilityProblems(latest.document, document).map((p) => `not compatible with version ${latest.version}: ${p}`));
    const dataProblems = data === undefined ? undefined : compiled.validate(data);
    return {
      ok: problems.length === 0 && (dataProblems?.length ?? 0) === 0,
      id,
      problems,
      registered,
      latestVersion: latest?.version ?? null,
      ...(dataProblems !== undefined ? { data: { ok: dataProblems.length === 0, problems: dataProblems } } : {}),
    };
  }

  list(): Promise<TelemetrySchema[]> {
    return this.repo.list();
  }

  async get(name: string, version: number): Promise<TelemetrySchema> {
    const s = await this.repo.get(name, version);
    if (!s) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no schema ${name}@${version}`);
    return s;
  }

  /** Top-level fields the schema marks `x-sensitive`, with how each is protected at rest. */
  sensitiveFields(id: string): ReadonlyMap<string, 'mask' | 'hash' | 'encrypt'> | Promise<ReadonlyMap<string, 'mask' | 'hash' | 'encrypt'>> {
    return this.#sensitive.get(id) ?? this.#loadSensitiveFields(id);
  }

  async #loadSensitiveFields(id: string): Promise<ReadonlyMap<string, 'mask' | 'hash' | 'encrypt'>> {
    const m = SCHEMA_ID.exec(id);
    const stored = m?.[1] && m[2] ? await this.repo.get(m[1], Number(m[2])) : undefined;
    const fields = new Map<string, 'mask' | 'hash' | 'encrypt'>();
    for (const [field, spec] of Object.entries(stored?.document.properties ?? {})) {
      const mode = spec['x-sensitive'];
      if (mode === 'mask' || mode === 'hash' || mode === 'encrypt') fields.set(field, mode);
    }
    if (stored) this.#sensitive.set(id, fields);
    return fields;
  }

  /** Validates `data` against `id` (`name@version`); compiles each version once, on first use. */
  validate(id: string, data: unknown): Validation | Promise<Validation> {
    const compiled = this.#compiled.get(id);
    return compiled ? check(compiled, data) : this.#loadAndValidate(id, data);
  }

  async #loadAndValidate(id: string, data: unknown): Promise<Validation> {
    const unknownUntil = this.#unknown.get(id);
    let compiled: CompiledSchema | undefined;
    if (unknownUntil === undefined || unknownUntil <= this.clock.now()) {
      const m = SCHEMA_ID.exec(id);
      const stored = m?.[1] && m[2] ? await this.repo.get(m[1], Number(m[2])) : undefined;
      if (stored) {
        compiled = this.#compiled.get(id) ?? this.#compile(stored.document);
        this.#compiled.set(id, compiled);
      } else this.#unknown.set(id, this.clock.now() + UNKNOWN_SCHEMA_RECHECK_MS);
    }
    if (!compiled) return { ok: false, reason: 'unknown_schema', problems: [{ path: '/schema', expected: 'a registered schema name@version', got: JSON.stringify(id).slice(0, 80) }] };
    return check(compiled, data);
  }
}

/** How long an id found missing is answered from memory (another node may register it meanwhile). */
const UNKNOWN_SCHEMA_RECHECK_MS = 5_000;

function check(compiled: CompiledSchema, data: unknown): Validation {
  const problems = compiled.validate(data);
  return problems.length === 0 ? { ok: true } : { ok: false, reason: 'invalid', problems };
}
