import Type, { type Static } from 'typebox';

export const ENVELOPE_LIMITS = {
  idMaxLength: 64,
  bootMaxLength: 32,
  schemaMaxLength: 80,
  /**
   * Deepest nesting of objects and arrays in any JSON message between device and cloud
   * (telemetry, desired and reported configuration, commands), the outermost value being
   * level 1 (see jsonTextDepth). Agents refuse deeper messages; the API refuses a desired
   * configuration that would make one.
   */
  maxDepth: 16,
} as const;

/**
 * The telemetry envelope every device sends (DESIGN.md §4), JSON or CBOR:
 * `{ "id", "seq", "ts", "mono", "boot", "schema", "data" }`. Other fields are allowed and ignored.
 */
export const TelemetryEnvelope = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: ENVELOPE_LIMITS.idMaxLength, description: 'Unique per device: a repeat is acknowledged and counted, never stored twice.' }),
    seq: Type.Optional(Type.Integer({ minimum: 0, description: 'Counter per boot: gaps are counted as lost messages.' })),
    ts: Type.Optional(Type.Integer({ minimum: 0, description: 'Device wall clock, ms since the epoch.' })),
    mono: Type.Optional(Type.Integer({ minimum: 0, description: 'Device monotonic clock, ms since boot.' })),
    boot: Type.Optional(Type.String({ minLength: 1, maxLength: ENVELOPE_LIMITS.bootMaxLength, description: 'Boot identifier: new on every reboot.' })),
    schema: Type.String({ maxLength: ENVELOPE_LIMITS.schemaMaxLength, description: '`name@version` of a registered telemetry schema; `data` is validated against it.' }),
    data: Type.Record(Type.String(), Type.Unknown(), { description: 'The reading, stored as sent.' }),
  },
  { description: 'One reading. JSON, or the same envelope in CBOR.' },
);
export type TelemetryEnvelope = Static<typeof TelemetryEnvelope>;
