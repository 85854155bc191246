import type { FirmwareImageRepository } from '../../ota/index.js';
import type { SqlClient } from '../sql-client.js';

/**
 * Firmware images in PostgreSQL (cluster mode): one row per fixed-size chunk, keyed by
 * (artifact, index), removed with their artifact (ON DELETE CASCADE). Written in one
 * transaction, so a reader sees a whole image or none; read one chunk per query, so neither
 * side ever holds more than a chunk in memory.
 */
export class SqlFirmwareImageRepository implements FirmwareImageRepository {
  constructor(private readonly db: SqlClient) {}

  put(artifactId: string, chunks: AsyncIterable<Buffer>): Promise<number> {
    return this.db.transaction(async (tx) => {
      // Two nodes storing the same image take turns on the artifact's row; a dropped artifact fails the insert (foreign key).
      await tx.run('SELECT id FROM firmware_artifacts WHERE id = $1 FOR UPDATE', [artifactId]);
      await tx.run('DELETE FROM firmware_image_chunks WHERE artifact_id = $1', [artifactId]);
      let idx = 0;
      for await (const chunk of chunks) {
        await tx.run('INSERT INTO firmware_image_chunks (artifact_id, idx, data) VALUES ($1, $2, $3)', [artifactId, idx, chunk]);
        idx += 1;
      }
      return idx;
    });
  }

  async *chunks(artifactId: string): AsyncIterable<Buffer> {
    for (let idx = 0; ; idx += 1) {
      const row = await this.db.get<{ data: Buffer }>('SELECT data FROM firmware_image_chunks WHERE artifact_id = $1 AND idx = $2', [artifactId, idx]);
      if (!row) return;
      yield row.data;
    }
  }

  async stored(artifactIds: readonly string[]): Promise<Set<string>> {
    if (artifactIds.length === 0) return new Set();
    const marks = artifactIds.map((_, i) => `$${i + 1}`).join(', ');
    const rows = await this.db.all<{ artifact_id: string }>(`SELECT DISTINCT artifact_id FROM firmware_image_chunks WHERE idx = 0 AND artifact_id IN (${marks})`, artifactIds);
    return new Set(rows.map((r) => r.artifact_id));
  }

  async delete(artifactId: string): Promise<void> {
    await this.db.run('DELETE FROM firmware_image_chunks WHERE artifact_id = $1', [artifactId]);
  }
}
