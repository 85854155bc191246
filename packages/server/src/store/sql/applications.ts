import type { Application, ApplicationRepository, NatsCredentialRecord, SchemaGrant } from '../../applications/index.js';
import type { SqlExecutor } from '../sql-client.js';
import { fromJson, num, toJson } from './json.js';

interface ApplicationRow {
  principal_id: string;
  name: string;
  schemas: string;
  created_at: number;
}
interface CredentialRow {
  id: string;
  application_id: string;
  user_key: string;
  issued_at: number;
  expires_at: number;
  revoked_at: number | null;
}

const toApplication = (r: ApplicationRow): Application => ({
  id: r.principal_id,
  name: r.name,
  schemas: fromJson<SchemaGrant[]>(r.schemas) ?? [],
  createdAt: Number(r.created_at),
});
const toCredential = (r: CredentialRow): NatsCredentialRecord => ({
  id: r.id,
  applicationId: r.application_id,
  userKey: r.user_key,
  issuedAt: Number(r.issued_at),
  expiresAt: Number(r.expires_at),
  revokedAt: num(r.revoked_at),
});

export class SqlApplicationRepository implements ApplicationRepository {
  constructor(private readonly db: SqlExecutor) {}

  async insert(a: Application): Promise<void> {
    await this.db.run('INSERT INTO applications (principal_id, name, schemas, created_at) VALUES ($1, $2, $3, $4)', [a.id, a.name, toJson(a.schemas), a.createdAt]);
  }

  async get(id: string): Promise<Application | undefined> {
    const row = await this.db.get<ApplicationRow>('SELECT * FROM applications WHERE principal_id = $1', [id]);
    return row && toApplication(row);
  }

  async list(): Promise<Application[]> {
    return (await this.db.all<ApplicationRow>('SELECT * FROM applications ORDER BY created_at, principal_id')).map(toApplication);
  }

  async insertCredential(c: NatsCredentialRecord): Promise<void> {
    await this.db.run('INSERT INTO application_nats_credentials (id, application_id, user_key, issued_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)', [c.id, c.applicationId, c.userKey, c.issuedAt, c.expiresAt, c.revokedAt]);
  }

  async listCredentials(applicationId: string): Promise<NatsCredentialRecord[]> {
    return (await this.db.all<CredentialRow>('SELECT * FROM application_nats_credentials WHERE application_id = $1 ORDER BY issued_at, id', [applicationId])).map(toCredential);
  }

  async revokeCredentials(applicationId: string, at: number): Promise<NatsCredentialRecord[]> {
    const live = (await this.db.all<CredentialRow>('SELECT * FROM application_nats_credentials WHERE application_id = $1 AND revoked_at IS NULL AND expires_at > $2', [applicationId, at])).map(toCredential);
    for (const c of live) await this.db.run('UPDATE application_nats_credentials SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL', [c.id, at]);
    return live.map((c) => ({ ...c, revokedAt: at }));
  }

  async revokedUnexpired(now: number): Promise<NatsCredentialRecord[]> {
    return (await this.db.all<CredentialRow>('SELECT * FROM application_nats_credentials WHERE revoked_at IS NOT NULL AND expires_at > $1 ORDER BY id', [now])).map(toCredential);
  }
}
