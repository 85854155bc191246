import type { Clock } from '@bulwark/core';
import { MIGRATIONS, migrationSql } from './migrations.js';
import type { SqlClient } from './sql-client.js';

/** A lock number that only Bulwark's migrator takes on PostgreSQL. */
const PG_MIGRATION_LOCK = 7_311_001;

/**
 * Applies every migration not yet recorded. On PostgreSQL an advisory lock makes nodes that
 * start together take turns; SQLite's write lock does the same in embedded mode.
 */
export async function migrate(db: SqlClient, clock: Clock): Promise<number[]> {
  return db.transaction(async (tx) => {
    // Lock before anything else: nodes creating schema_migrations together collide in pg_type.
    if (db.engine === 'postgres') await tx.run(`SELECT pg_advisory_xact_lock(${PG_MIGRATION_LOCK})`);
    await tx.run('CREATE TABLE IF NOT EXISTS schema_migrations (id BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
    const done = new Set((await tx.all<{ id: number }>('SELECT id FROM schema_migrations')).map((r) => Number(r.id)));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.id)) continue;
      const script = migrationSql(m, db.engine);
      for (const statement of typeof script === 'string' ? splitStatements(script) : script) await tx.run(statement);
      await tx.run('INSERT INTO schema_migrations (id, name, applied_at) VALUES ($1, $2, $3)', [m.id, m.name, clock.now()]);
      applied.push(m.id);
    }
    return applied;
  });
}

/** Migration scripts hold plain DDL without semicolons inside literals, so a split on ';' is exact. */
function splitStatements(script: string): string[] {
  return script
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
