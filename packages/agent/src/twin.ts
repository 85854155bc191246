import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ValidateFunction } from 'ajv';
import type { TwinReported } from '@bulwark/protocol';
import { writeFileDurable } from './identity.js';
import { type JsonSchema, checkAgainst, checkDesired, type Validator } from './validator.js';

export type ConfigHandler<C = Record<string, unknown>> = (config: C, version: number) => unknown;

export interface TwinState {
  readonly version: number;
  readonly config: Readonly<Record<string, unknown>>;
}

/** What to do with a desired document: report it, or only count it (stale, unreadable). */
export type TwinOutcome = { readonly kind: 'report'; readonly report: TwinReported } | { readonly kind: 'ignored'; readonly reason: 'stale' } | { readonly kind: 'unreadable'; readonly reason: string; readonly detail: string };

/**
 * Desired configuration from `devices/{id}/twin/desired`: shape check, version check
 * (versions at or below the applied one are ignored), the agent's config schema, then the
 * application's handler. The answer for twin/reported says applied or rejected, with the
 * configuration in effect either way. The applied state is persisted by the caller.
 */
export class Twin {
  #state: TwinState;
  #validate: ValidateFunction | undefined;
  #handler: ConfigHandler<never> | undefined;
  readonly #validator: Validator;
  readonly #wallNow: () => number;
  readonly counters = { received: 0, applied: 0, stale: 0, rejected: {} as Record<string, number> };

  constructor(validator: Validator, initial: TwinState, wallNow: () => number) {
    this.#validator = validator;
    this.#state = initial;
    this.#wallNow = wallNow;
  }

  get state(): TwinState {
    return this.#state;
  }

  setHandler<C>(schema: JsonSchema, handler: ConfigHandler<C>): void {
    this.#validate = this.#validator.compile(schema);
    this.#handler = handler;
  }

  async handle(payload: Buffer): Promise<TwinOutcome> {
    this.counters.received += 1;
    const checked = checkDesired(payload);
    if (!checked.ok) {
      this.#count(checked.reason);
      return { kind: 'unreadable', reason: checked.reason, detail: checked.detail };
    }
    const desired = checked.value;
    if (desired.version <= this.#state.version) {
      this.counters.stale += 1;
      return { kind: 'ignored', reason: 'stale' };
    }
    if (!this.#validate || !this.#handler) return this.#rejected(desired.version, 'no_config_handler', 'this device takes no remote configuration');
    const refusal = checkAgainst(this.#validate, desired.config, 'config_invalid');
    if (refusal) return this.#rejected(desired.version, refusal.reason, refusal.detail);
    try {
      await (this.#handler as ConfigHandler)(desired.config, desired.version);
    } catch (err) {
      return this.#rejected(desired.version, 'apply_failed', String((err as Error)?.message ?? err).slice(0, 1000));
    }
    this.#state = { version: desired.version, config: desired.config };
    this.counters.applied += 1;
    return { kind: 'report', report: { version: desired.version, status: 'applied', config: desired.config, ts: this.#wallNow() } };
  }

  /** The report for the state in effect (sent again after each reconnect). */
  current(): TwinReported {
    return { version: this.#state.version, status: 'applied', config: this.#state.config, ts: this.#wallNow() };
  }

  #rejected(version: number, reason: string, detail: string): TwinOutcome {
    this.#count(reason);
    return { kind: 'report', report: { version, status: 'rejected', config: this.#state.config, reason, detail, ts: this.#wallNow() } };
  }

  #count(reason: string): void {
    this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1;
  }
}

const TWIN_FILE = 'twin.json';

/** The configuration last applied, from the agent's data directory (version 0 and empty when none or unreadable). */
export function loadTwinState(dataDir: string): TwinState {
  const f = join(dataDir, TWIN_FILE);
  try {
    return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as TwinState) : { version: 0, config: {} };
  } catch {
    return { version: 0, config: {} };
  }
}

/** Persists the applied configuration before it is reported, so a restart keeps running it. */
export function saveTwinState(dataDir: string, state: TwinState): void {
  writeFileDurable(join(dataDir, TWIN_FILE), JSON.stringify(state));
}
