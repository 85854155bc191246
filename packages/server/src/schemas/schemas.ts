/**
 * Versioned telemetry schemas: JSON Schema documents whose `$id` is `name@version`, with
 * an explicit unit (`x-unit`) on every numeric field. Devices name the schema of each
 * envelope; the pipeline validates the `data` against it.
 */
export interface TelemetrySchema {
  readonly name: string;
  readonly version: number;
  readonly document: SchemaDocument;
  readonly createdAt: number;
  readonly createdBy: string;
}

export interface SchemaDocument {
  readonly $id: string;
  readonly type: 'object';
  readonly properties: Readonly<Record<string, FieldSchema>>;
  readonly required?: readonly string[];
  readonly [keyword: string]: unknown;
}

export interface FieldSchema {
  readonly type?: string | readonly string[];
  readonly 'x-unit'?: string;
  readonly [keyword: string]: unknown;
}

/** One reason a value does not fit its schema, precise enough to fix the device. */
export interface SchemaProblem {
  /** JSON pointer into `data`, e.g. `/temp_c`. */
  readonly path: string;
  readonly expected: string;
  readonly got: string;
}

export interface SchemaRepository {
  insert(schema: TelemetrySchema): Promise<void>;
  get(name: string, version: number): Promise<TelemetrySchema | undefined>;
  /** The highest version of a name. */
  latest(name: string): Promise<TelemetrySchema | undefined>;
  list(): Promise<TelemetrySchema[]>;
}
