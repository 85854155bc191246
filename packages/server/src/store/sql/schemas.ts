import type { SchemaDocument, SchemaRepository, TelemetrySchema } from '../../schemas/index.js';
import type { SqlClient } from '../sql-client.js';

interface Row {
  name: string;
  version: number;
  document: string;
  created_at: number;
  created_by: string;
}

const toSchema = (r: Row): TelemetrySchema => ({
  name: r.name,
  version: Number(r.version),
  document: JSON.parse(r.document) as SchemaDocument,
  createdAt: Number(r.created_at),
  createdBy: r.created_by,
});

export class SqlSchemaRepository implements SchemaRepository {
  constructor(private readonly db: SqlClient) {}

  async insert(s: TelemetrySchema): Promise<void> {
    await this.db.run('INSERT INTO telemetry_schemas (name, version, document, created_at, created_by) VALUES ($1, $2, $3, $4, $5)', [s.name, s.version, JSON.stringify(s.document), s.createdAt, s.createdBy]);
  }

  async get(name: string, version: number): Promise<TelemetrySchema | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM telemetry_schemas WHERE name = $1 AND version = $2', [name, version]);
    return r && toSchema(r);
  }

  async latest(name: string): Promise<TelemetrySchema | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM telemetry_schemas WHERE name = $1 ORDER BY version DESC LIMIT 1', [name]);
    return r && toSchema(r);
  }

  async list(): Promise<TelemetrySchema[]> {
    return (await this.db.all<Row>('SELECT * FROM telemetry_schemas ORDER BY name, version')).map(toSchema);
  }
}
