/**
 * The telemetry envelope every device sends (DESIGN.md §4), JSON or CBOR:
 * `{ "id", "seq", "ts", "mono", "boot", "schema", "data" }`.
 */
export interface TelemetryEnvelope {
  /** Unique per device; a repeat is acknowledged and counted, never stored twice. */
  readonly id: string;
  /** Counter per boot; gaps are counted as lost messages. */
  readonly seq?: number;
  /** Device wall clock, milliseconds since the epoch. */
  readonly ts?: number;
  /** Device monotonic clock, milliseconds since boot. */
  readonly mono?: number;
  /** Boot identifier: changes on every reboot. */
  readonly boot?: string;
  /** `name@version` of a registered telemetry schema. */
  readonly schema: string;
  readonly data: Readonly<Record<string, unknown>>;
}

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
