import { ENVELOPE_LIMITS, type TelemetryEnvelope } from '@bulwark/protocol';
import { reject, type Step } from '../step.js';

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const show = (v: unknown) => (JSON.stringify(v) ?? String(v)).slice(0, 64);

const isText = (v: unknown, min: number, max: number): boolean => typeof v === 'string' && v.length >= min && v.length <= max;

/** Each envelope field, its check and what it should be: one table, made once, for the valid path and the refusal alike. */
const FIELDS: readonly { readonly field: string; readonly ok: (v: unknown) => boolean; readonly expected: string }[] = [
  { field: 'id', ok: (v) => isText(v, 1, ENVELOPE_LIMITS.idMaxLength), expected: `a string of 1-${ENVELOPE_LIMITS.idMaxLength} characters` },
  { field: 'schema', ok: (v) => isText(v, 0, ENVELOPE_LIMITS.schemaMaxLength), expected: 'a schema name@version' },
  { field: 'data', ok: (v) => typeof v === 'object' && v !== null && !Array.isArray(v), expected: 'an object' },
  { field: 'seq', ok: (v) => v === undefined || isInt(v), expected: 'a non-negative integer' },
  { field: 'ts', ok: (v) => v === undefined || isInt(v), expected: 'milliseconds since the epoch' },
  { field: 'mono', ok: (v) => v === undefined || isInt(v), expected: 'milliseconds since boot' },
  { field: 'boot', ok: (v) => v === undefined || isText(v, 1, ENVELOPE_LIMITS.bootMaxLength), expected: `a string of 1-${ENVELOPE_LIMITS.bootMaxLength} characters` },
];

/** The envelope's own fields have the types and sizes of the device contract. */
export const envelope: Step = {
  name: 'envelope',
  run(ctx) {
    const b = ctx.body as Record<string, unknown> | null;
    if (b === null || typeof b !== 'object' || Array.isArray(b)) return reject('bad_envelope', '/', 'an object envelope', show(b));
    // Only a refused envelope pays for listing its problems.
    if (FIELDS.every((f) => f.ok(b[f.field]))) {
      ctx.envelope = b as unknown as TelemetryEnvelope;
      return undefined;
    }
    const problems = FIELDS.filter((f) => !f.ok(b[f.field])).map(({ field, expected }) => ({ path: `/${field}`, expected, got: b[field] === undefined ? 'nothing' : show(b[field]) }));
    return { reject: 'bad_envelope', problems };
  },
};
