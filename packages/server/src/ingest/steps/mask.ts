import { createHmac } from 'node:crypto';
import type { SchemaService } from '../../schemas/index.js';
import type { MessageContext, Sensitivity } from '../ingest.js';
import type { Step } from '../step.js';

export interface FieldProtection {
  /** HMAC key for pseudonyms: the same value always gives the same pseudonym, which reveals nothing without the key. */
  readonly pseudonymKey: Buffer;
  /** Envelope-encrypts a value for its place (device and field). */
  encrypt(plaintext: Buffer, context: string): string;
  /** Opens a value `encrypt` produced for the same place; throws if it was altered or sealed for another place. */
  decrypt(text: string, context: string): Promise<Buffer>;
}

/** The keyed pseudonym `hash` mode stores for a field's value (its JSON text). */
export const pseudonym = (key: Buffer, schemaId: string, field: string, raw: Buffer): string => `h:${createHmac('sha256', key).update(`${schemaId}/${field}:`).update(raw).digest('hex').slice(0, 32)}`;

/**
 * Protects the fields a schema marks `x-sensitive` before anything is stored or streamed:
 * `mask` replaces the value, `hash` keeps a keyed pseudonym (still joinable, not
 * reversible), `encrypt` keeps it under the platform's data keys (readable with the
 * telemetry:decrypt scope). Numbers marked sensitive leave the rollups as well.
 */
export function mask(schemas: SchemaService, protection: FieldProtection): Step {
  return {
    name: 'mask',
    run(ctx) {
      const record = ctx.record;
      if (!record) return undefined;
      const fields = schemas.sensitiveFields(record.schemaId);
      return fields instanceof Promise ? fields.then((f) => protect(ctx, f)) : protect(ctx, fields);
    },
  };

  function protect(ctx: MessageContext, fields: ReadonlyMap<string, Sensitivity>): undefined {
    const record = ctx.record;
    if (!record || fields.size === 0) return undefined;
    const data: Record<string, unknown> = { ...record.data };
    for (const [field, mode] of fields) {
      if (!Object.hasOwn(data, field)) continue;
      const raw = Buffer.from(JSON.stringify(data[field]));
      data[field] = mode === 'mask' ? '***' : mode === 'hash' ? pseudonym(protection.pseudonymKey, record.schemaId, field, raw) : protection.encrypt(raw, `${record.deviceId}/${field}`);
    }
    ctx.record = { ...record, data };
    return undefined;
  }
}
