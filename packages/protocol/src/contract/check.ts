import type { Static, TSchema } from 'typebox';
import { Value } from 'typebox/value';

/** Whether `value` is a `schema` message (extra fields only where the schema allows them). */
export function isMessage<S extends TSchema>(schema: S, value: unknown): value is Static<S> {
  return Value.Check(schema, value);
}

/** The `schema` message in a UTF-8 JSON payload; undefined when the payload is not JSON or not that message. */
export function parseMessage<S extends TSchema>(schema: S, payload: Uint8Array | string): Static<S> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : new TextDecoder().decode(payload));
  } catch {
    return undefined;
  }
  return isMessage(schema, value) ? value : undefined;
}

/** The first reason `value` is not a `schema` message, with the JSON path of the field (`/posture/listening/1/port`); undefined when it is one. */
export function messageProblem(schema: TSchema, value: unknown): { readonly path: string; readonly message: string } | undefined {
  const first = Value.Errors(schema, value)[0];
  return first ? { path: first.instancePath || '/', message: first.message } : undefined;
}
