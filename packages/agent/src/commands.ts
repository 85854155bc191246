import type { ValidateFunction } from 'ajv';
import type { CommandRequest, CommandResult } from '@bulwark/protocol';
import { type JsonSchema, checkAgainst, checkCommand, type Validator } from './validator.js';

export interface CommandContext {
  readonly id: string;
  readonly name: string;
  readonly issuedAt: number;
}

export type CommandHandler<P = Record<string, unknown>> = (params: P, ctx: CommandContext) => unknown;

export interface CommandCounters {
  received: number;
  executed: number;
  succeeded: number;
  failed: number;
  duplicates: number;
  rejected: Record<string, number>;
}

/**
 * Routes `devices/{id}/commands/{name}` to the handler registered for `name`, after
 * `checkCommand` and the handler's parameter schema. A refused command never reaches a
 * handler; a handler that throws gives `failed`. The last `rememberIds` results are kept by
 * command id, so a repeated command gets the same answer and never runs twice.
 */
export class CommandRouter {
  readonly #validator: Validator;
  readonly #handlers = new Map<string, { validate: ValidateFunction; handler: CommandHandler<never> }>();
  readonly #results = new Map<string, CommandResult | 'running'>();
  readonly #remember: number;
  /** Platform time when the agent is synced, undefined otherwise (expiry is checked only then). */
  readonly #platformNow: () => number | undefined;
  readonly #wallNow: () => number;
  readonly counters: CommandCounters = { received: 0, executed: 0, succeeded: 0, failed: 0, duplicates: 0, rejected: {} };

  constructor(validator: Validator, options: { rememberIds: number; platformNow: () => number | undefined; wallNow: () => number }) {
    this.#validator = validator;
    this.#remember = options.rememberIds;
    this.#platformNow = options.platformNow;
    this.#wallNow = options.wallNow;
  }

  on<P>(name: string, schema: JsonSchema, handler: CommandHandler<P>): void {
    if (this.#handlers.has(name)) throw new Error(`a handler for "${name}" is already registered`);
    this.#handlers.set(name, { validate: this.#validator.compile(schema), handler: handler });
  }

  /** Checks and runs one command; resolves with the result to publish. */
  async handle(name: string, payload: Buffer): Promise<CommandResult> {
    this.counters.received += 1;
    const checked = checkCommand(name, payload);
    if (!checked.ok) return this.#reject(checked.id, checked.reason, checked.detail);
    const req = checked.value;
    const seen = this.#results.get(req.id);
    if (seen !== undefined) {
      this.counters.duplicates += 1;
      return seen === 'running' ? { id: req.id, status: 'accepted', ts: this.#wallNow() } : seen;
    }
    const result = await this.#run(name, req);
    this.#store(req.id, result);
    return result;
  }

  async #run(name: string, req: CommandRequest): Promise<CommandResult> {
    const entry = this.#handlers.get(name);
    if (!entry) return this.#reject(req.id, 'unknown_command', `no handler for "${name}"`);
    const now = this.#platformNow();
    if (req.expiresAt !== undefined && now !== undefined && now > req.expiresAt) {
      return this.#reject(req.id, 'expired', `expired ${now - req.expiresAt} ms ago`);
    }
    const refusal = checkAgainst(entry.validate, req.params, 'params_invalid', req.id);
    if (refusal) return this.#reject(req.id, refusal.reason, refusal.detail);
    this.#store(req.id, 'running');
    this.counters.executed += 1;
    try {
      const output = await (entry.handler as CommandHandler)(req.params, { id: req.id, name, issuedAt: req.issuedAt });
      this.counters.succeeded += 1;
      return output === undefined ? { id: req.id, status: 'succeeded', ts: this.#wallNow() } : { id: req.id, status: 'succeeded', output, ts: this.#wallNow() };
    } catch (err) {
      this.counters.failed += 1;
      return { id: req.id, status: 'failed', reason: 'handler_error', detail: String((err as Error)?.message ?? err).slice(0, 1000), ts: this.#wallNow() };
    }
  }

  #reject(id: string | null, reason: string, detail: string): CommandResult {
    this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1;
    const result: CommandResult = { id, status: 'rejected', reason, detail, ts: this.#wallNow() };
    if (id !== null) this.#store(id, result);
    return result;
  }

  #store(id: string, result: CommandResult | 'running'): void {
    this.#results.delete(id);
    this.#results.set(id, result);
    if (this.#results.size > this.#remember) {
      const oldest = this.#results.keys().next().value;
      if (oldest !== undefined) this.#results.delete(oldest);
    }
  }
}
