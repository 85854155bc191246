import type { ApiKeyRecord, ApiKeyRepository, Principal, PrincipalRepository, Grant, Role } from '../../access/index.js';
import type { SqlExecutor } from '../sql-client.js';
import { fromJson, num, toJson } from './json.js';

interface PrincipalRow {
  id: string;
  kind: 'user' | 'service';
  name: string;
  role: string | null;
  scopes: string;
  device_groups: string | null;
  created_at: number;
  disabled_at: number | null;
}

const toPrincipal = (r: PrincipalRow): Principal => ({
  id: r.id,
  kind: r.kind,
  name: r.name,
  role: r.role as Role | null,
  scopes: fromJson<Grant[]>(r.scopes) ?? [],
  deviceGroups: fromJson<string[]>(r.device_groups),
  createdAt: Number(r.created_at),
  disabledAt: num(r.disabled_at),
});

export class SqlPrincipalRepository implements PrincipalRepository {
  constructor(private readonly db: SqlExecutor) {}

  async insert(p: Principal): Promise<void> {
    await this.db.run('INSERT INTO principals (id, kind, name, role, scopes, device_groups, created_at, disabled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
      p.id,
      p.kind,
      p.name,
      p.role,
      toJson(p.scopes),
      p.deviceGroups === null ? null : toJson(p.deviceGroups),
      p.createdAt,
      p.disabledAt,
    ]);
  }

  async get(id: string): Promise<Principal | undefined> {
    const row = await this.db.get<PrincipalRow>('SELECT * FROM principals WHERE id = $1', [id]);
    return row && toPrincipal(row);
  }

  async getByName(name: string): Promise<Principal | undefined> {
    const row = await this.db.get<PrincipalRow>('SELECT * FROM principals WHERE name = $1', [name]);
    return row && toPrincipal(row);
  }

  async list(): Promise<Principal[]> {
    return (await this.db.all<PrincipalRow>('SELECT * FROM principals ORDER BY created_at, id')).map(toPrincipal);
  }

  async count(): Promise<number> {
    const row = await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM principals');
    return Number(row?.n ?? 0);
  }

  async setDisabled(id: string, disabledAt: number | null): Promise<boolean> {
    return (await this.db.run('UPDATE principals SET disabled_at = $2 WHERE id = $1', [id, disabledAt])) === 1;
  }

  async setDeviceGroups(id: string, groups: readonly string[] | null): Promise<boolean> {
    return (await this.db.run('UPDATE principals SET device_groups = $2 WHERE id = $1', [id, groups === null ? null : toJson(groups)])) === 1;
  }
}

interface ApiKeyRow {
  id: string;
  principal_id: string;
  name: string;
  secret_hash: string;
  scopes: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

const toKey = (r: ApiKeyRow): ApiKeyRecord => ({
  id: r.id,
  principalId: r.principal_id,
  name: r.name,
  secretHash: r.secret_hash,
  scopes: fromJson<Grant[]>(r.scopes),
  createdAt: Number(r.created_at),
  expiresAt: num(r.expires_at),
  revokedAt: num(r.revoked_at),
  lastUsedAt: num(r.last_used_at),
});

export class SqlApiKeyRepository implements ApiKeyRepository {
  constructor(private readonly db: SqlExecutor) {}

  async insert(k: ApiKeyRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO api_keys (id, principal_id, name, secret_hash, scopes, created_at, expires_at, revoked_at, last_used_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [k.id, k.principalId, k.name, k.secretHash, k.scopes === null ? null : toJson(k.scopes), k.createdAt, k.expiresAt, k.revokedAt, k.lastUsedAt],
    );
  }

  async get(id: string): Promise<ApiKeyRecord | undefined> {
    const row = await this.db.get<ApiKeyRow>('SELECT * FROM api_keys WHERE id = $1', [id]);
    return row && toKey(row);
  }

  async listByPrincipal(principalId: string): Promise<ApiKeyRecord[]> {
    return (await this.db.all<ApiKeyRow>('SELECT * FROM api_keys WHERE principal_id = $1 ORDER BY created_at, id', [principalId])).map(toKey);
  }

  async list(): Promise<ApiKeyRecord[]> {
    return (await this.db.all<ApiKeyRow>('SELECT * FROM api_keys ORDER BY created_at, id')).map(toKey);
  }

  async revoke(id: string, at: number): Promise<boolean> {
    return (await this.db.run('UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL', [id, at])) === 1;
  }

  async touch(id: string, at: number): Promise<void> {
    await this.db.run('UPDATE api_keys SET last_used_at = $2 WHERE id = $1', [id, at]);
  }
}
