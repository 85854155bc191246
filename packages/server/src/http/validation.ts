import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/**
 * Two validators: bodies are checked strictly (no type coercion, unknown fields refused,
 * every problem reported), while path and query strings, which are always text, are
 * coerced to the declared number or boolean types.
 */
function makeAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    coerceTypes: coerce ? 'array' : false,
    removeAdditional: false,
    useDefaults: true,
    strict: false,
  });
  addFormats(ajv);
  return ajv;
}

export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const strict = makeAjv(false);
  const coercing = makeAjv(true);
  return ({ schema, httpPart }) => {
    if (httpPart !== 'body') return coercing.compile(schema as object) as ValidateFunction;
    const validate = strict.compile(schema as object);
    // A POST without a body is checked as an empty object: routes whose fields are all
    // optional accept it, routes with required fields say which one is missing.
    const check = Object.assign((data: unknown) => {
      const ok = validate(data === undefined || data === null ? {} : data);
      check.errors = validate.errors ?? null;
      return ok;
    }, { errors: null as ValidateFunction['errors'] | null });
    return check as ValidateFunction;
  };
}
