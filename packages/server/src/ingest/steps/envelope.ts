import { ENVELOPE_LIMITS, type TelemetryEnvelope } from '@bulwark/protocol';
import { reject, type Step } from '../step.js';

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const show = (v: unknown) => (JSON.stringify(v) ?? String(v)).slice(0, 64);

/** The same checks as the list below, without building it: the path of every valid message. */
function wellFormed(b: Record<string, unknown>): boolean {
  const { id, schema, data, boot } = b;
  return typeof id === 'string' && id.length > 0 && id.length <= ENVELOPE_LIMITS.idMaxLength
    && typeof schema === 'string' && schema.length <= ENVELOPE_LIMITS.schemaMaxLength
    && typeof data === 'object' && data !== null && !Array.isArray(data)
    && (b.seq === undefined || isInt(b.seq)) && (b.ts === undefined || isInt(b.ts)) && (b.mono === undefined || isInt(b.mono))
    && (boot === undefined || (typeof boot === 'string' && boot.length > 0 && boot.length <= ENVELOPE_LIMITS.bootMaxLength));
}

/** The envelope's own fields have the types and sizes of the device contract. */
export const envelope: Step = {
  name: 'envelope',
  run(ctx) {
    const b = ctx.body as Record<string, unknown> | null;
    if (b === null || typeof b !== 'object' || Array.isArray(b)) return reject('bad_envelope', '/', 'an object envelope', show(b));
    if (wellFormed(b)) {
      ctx.envelope = b as unknown as TelemetryEnvelope;
      return undefined;
    }
    // Only a refused envelope pays for listing every problem.
    const checks: [string, boolean, string][] = [
      ['id', typeof b.id === 'string' && b.id.length > 0 && b.id.length <= ENVELOPE_LIMITS.idMaxLength, `a string of 1-${ENVELOPE_LIMITS.idMaxLength} characters`],
      ['schema', typeof b.schema === 'string' && b.schema.length <= ENVELOPE_LIMITS.schemaMaxLength, 'a schema name@version'],
      ['data', typeof b.data === 'object' && b.data !== null && !Array.isArray(b.data), 'an object'],
      ['seq', b.seq === undefined || isInt(b.seq), 'a non-negative integer'],
      ['ts', b.ts === undefined || isInt(b.ts), 'milliseconds since the epoch'],
      ['mono', b.mono === undefined || isInt(b.mono), 'milliseconds since boot'],
      ['boot', b.boot === undefined || (typeof b.boot === 'string' && b.boot.length > 0 && b.boot.length <= ENVELOPE_LIMITS.bootMaxLength), `a string of 1-${ENVELOPE_LIMITS.bootMaxLength} characters`],
    ];
    const problems = checks.filter(([, ok]) => !ok).map(([field, , expected]) => ({ path: `/${field}`, expected, got: b[field] === undefined ? 'nothing' : show(b[field]) }));
    if (problems.length > 0) return { reject: 'bad_envelope', problems };
    ctx.envelope = b as unknown as TelemetryEnvelope;
    return undefined;
  },
};
