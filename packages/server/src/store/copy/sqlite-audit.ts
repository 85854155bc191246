import { type Clock, systemClock } from '@bulwark/core';
import { AuditService, type VerifyReport } from '../../audit/index.js';
import { SqlAuditRepository } from '../sql/audit.js';
import { SqliteClient } from '../sqlite/sqlite-client.js';

/**
 * The platform's own audit-chain verification over a SQLite file (a backup, or a restored
 * store), without migrating it: the file is left as it was made.
 */
export async function verifySqliteAudit(file: string, clock: Clock = systemClock): Promise<VerifyReport> {
  const db = await SqliteClient.open(file);
  try {
    return await new AuditService(new SqlAuditRepository(db), clock).verify();
  } finally {
    await db.close();
  }
}
