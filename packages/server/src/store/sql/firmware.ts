import type { FirmwareManifest } from '@bulwark/protocol';
import type { FirmwareArtifact, FirmwareRepository } from '../../ota/index.js';
import type { SqlClient } from '../sql-client.js';
import { fromJson, num, toJson } from './json.js';

interface ArtifactRow {
  id: string;
  name: string;
  version: string;
  security_version: number;
  model: string;
  hardware_revisions: string;
  size: number;
  sha256: string;
  expires_at: number;
  state: string;
  manifest: string;
  uploaded_by: string;
  created_at: number;
  published_at: number | null;
}

const toArtifact = (r: ArtifactRow): FirmwareArtifact => ({
  id: r.id,
  name: r.name,
  version: r.version,
  securityVersion: Number(r.security_version),
  model: r.model,
  hardwareRevisions: fromJson<string[]>(r.hardware_revisions) ?? [],
  size: Number(r.size),
  sha256: r.sha256,
  expiresAt: Number(r.expires_at),
  state: r.state as FirmwareArtifact['state'],
  manifest: fromJson<FirmwareManifest>(r.manifest) as FirmwareManifest,
  uploadedBy: r.uploaded_by,
  createdAt: Number(r.created_at),
  publishedAt: num(r.published_at),
});

/** Firmware artifacts: the verified manifest beside the columns rollouts and downloads look up. */
export class SqlFirmwareRepository implements FirmwareRepository {
  constructor(private readonly db: SqlClient) {}

  async insert(a: FirmwareArtifact): Promise<boolean> {
    const changed = await this.db.run(
      `INSERT INTO firmware_artifacts (id, name, version, security_version, model, hardware_revisions, size, sha256, expires_at, state, manifest, uploaded_by, created_at, published_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (name, version) DO NOTHING`,
      [a.id, a.name, a.version, a.securityVersion, a.model, toJson(a.hardwareRevisions), a.size, a.sha256, a.expiresAt, a.state, toJson(a.manifest), a.uploadedBy, a.createdAt, a.publishedAt],
    );
    return changed === 1;
  }

  async get(id: string): Promise<FirmwareArtifact | undefined> {
    const row = await this.db.get<ArtifactRow>('SELECT * FROM firmware_artifacts WHERE id = $1', [id]);
    return row && toArtifact(row);
  }

  async findBySha256(sha256: string): Promise<FirmwareArtifact | undefined> {
    const row = await this.db.get<ArtifactRow>('SELECT * FROM firmware_artifacts WHERE sha256 = $1 ORDER BY created_at LIMIT 1', [sha256]);
    return row && toArtifact(row);
  }

  async markPublished(id: string, at: number): Promise<boolean> {
    return (await this.db.run("UPDATE firmware_artifacts SET state = 'published', published_at = $2 WHERE id = $1 AND state = 'awaiting_image'", [id, at])) === 1;
  }

  async delete(id: string): Promise<void> {
    await this.db.run("DELETE FROM firmware_artifacts WHERE id = $1 AND state = 'awaiting_image'", [id]);
  }

  async list(limit: number): Promise<FirmwareArtifact[]> {
    return (await this.db.all<ArtifactRow>('SELECT * FROM firmware_artifacts ORDER BY created_at DESC, id DESC LIMIT $1', [limit])).map(toArtifact);
  }
}
