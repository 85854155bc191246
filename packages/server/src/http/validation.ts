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

/**
 * Each route's validators are compiled on its first request, not at start: a server has some
 * 400 schemas, and compiling them all took most of a second of every start (every test's too)
 * for routes a process may never serve.
 */
export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const strict = makeAjv(false);
  const coercing = makeAjv(true);
  return ({ schema, httpPart }) => {
    const body = httpPart === 'body';
    let validate: ValidateFunction | undefined;
    const check = Object.assign(
      (data: unknown) => {
        validate ??= (body ? strict : coercing).compile(schema as object);
        // A POST without a body is checked as an empty object: routes whose fields are all
        // optional accept it, routes with required fields say which one is missing.
        const ok = validate(body && (data === undefined || data === null) ? {} : data);
        check.errors = validate.errors ?? null;
        return ok;
      },
      { errors: null as ValidateFunction['errors'] | null },
    );
    return check as ValidateFunction;
  };
}
