import type { SchemaService, Validation } from '../../schemas/index.js';
import type { Step, StepOutcome } from '../step.js';

/** The data must fit the schema the envelope names (synchronous once the schema is compiled: no promise per message). */
export function validate(schemas: SchemaService): Step {
  return {
    name: 'validate',
    run(ctx) {
      const e = ctx.envelope;
      if (!e) return undefined;
      const result = schemas.validate(e.schema, e.data);
      return result instanceof Promise ? result.then(outcome) : outcome(result);
    },
  };
}

const outcome = (result: Validation): StepOutcome => (result.ok ? undefined : { reject: result.reason === 'unknown_schema' ? 'unknown_schema' : 'schema_violation', problems: result.problems });
