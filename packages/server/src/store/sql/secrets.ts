import type { DataKeyRecord, SealedSecret, SecretRepository } from '../../secrets/index.js';
import type { SqlClient } from '../sql-client.js';
import { num } from './json.js';

interface DataKeyRow {
  id: string;
  wrapped: string;
  master_key_id: string;
  created_at: number;
  retired_at: number | null;
}
interface SecretRow {
  name: string;
  data_key_id: string;
  sealed: string;
  updated_at: number;
}

export class SqlSecretRepository implements SecretRepository {
  constructor(private readonly db: SqlClient) {}

  async insertDataKey(k: DataKeyRecord): Promise<void> {
    await this.db.run('INSERT INTO data_keys (id, wrapped, master_key_id, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)', [k.id, k.wrapped, k.masterKeyId, k.createdAt, k.retiredAt]);
  }

  async listDataKeys(): Promise<DataKeyRecord[]> {
    const rows = await this.db.all<DataKeyRow>('SELECT * FROM data_keys ORDER BY created_at, id');
    return rows.map((r) => ({ id: r.id, wrapped: r.wrapped, masterKeyId: r.master_key_id, createdAt: Number(r.created_at), retiredAt: num(r.retired_at) }));
  }

  async rewrapDataKeys(rewrapped: readonly { id: string; wrapped: string; masterKeyId: string }[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const k of rewrapped) {
        const changed = await tx.run('UPDATE data_keys SET wrapped = $2, master_key_id = $3 WHERE id = $1', [k.id, k.wrapped, k.masterKeyId]);
        if (changed !== 1) throw new Error(`data key ${k.id} vanished during re-wrap`);
      }
    });
  }

  async putSecret(s: SealedSecret): Promise<void> {
    await this.db.run(
      `INSERT INTO secrets (name, data_key_id, sealed, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO UPDATE SET data_key_id = excluded.data_key_id, sealed = excluded.sealed, updated_at = excluded.updated_at`,
      [s.name, s.dataKeyId, s.sealed, s.updatedAt],
    );
  }

  async getSecret(name: string): Promise<SealedSecret | undefined> {
    const r = await this.db.get<SecretRow>('SELECT * FROM secrets WHERE name = $1', [name]);
    return r && { name: r.name, dataKeyId: r.data_key_id, sealed: r.sealed, updatedAt: Number(r.updated_at) };
  }

  async listSecretNames(): Promise<string[]> {
    return (await this.db.all<{ name: string }>('SELECT name FROM secrets ORDER BY name')).map((r) => r.name);
  }
}
