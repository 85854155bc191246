import type { SchemaProblem } from '../schemas/index.js';
import type { DeadLetterReason, IngestResult, MessageContext } from './ingest.js';

/** What a step decides: go on (nothing), refuse into the dead-letter store, or finish early. */
export type StepOutcome = undefined | { readonly reject: DeadLetterReason; readonly problems?: readonly SchemaProblem[] } | { readonly done: IngestResult };

/** One small named unit of the pipeline (CONVENTIONS.md §4). */
export interface Step {
  readonly name: string;
  run(ctx: MessageContext): StepOutcome | Promise<StepOutcome>;
}

export const reject = (reason: DeadLetterReason, path: string, expected: string, got: string): StepOutcome => ({ reject: reason, problems: [{ path, expected, got }] });
