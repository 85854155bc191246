import type { SchemaService } from '../../schemas/index.js';
import type { Step } from '../step.js';

/** The data must fit the schema the envelope names. */
export function validate(schemas: SchemaService): Step {
  return {
    name: 'validate',
    async run(ctx) {
      const e = ctx.envelope;
      if (!e) return undefined;
      const result = await schemas.validate(e.schema, e.data);
      if (result.ok) return undefined;
      return { reject: result.reason === 'unknown_schema' ? 'unknown_schema' : 'schema_violation', problems: result.problems };
    },
  };
}
