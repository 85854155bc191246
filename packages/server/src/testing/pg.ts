import { randomBytes } from 'node:crypto';
import { type TestContext, describe, it } from 'node:test';
import pg from 'pg';

/**
 * Test-only helpers for suites that need a real PostgreSQL. The server comes from
 * BULWARK_TEST_PG_URL. Without it a developer's run skips these suites (and says so on
 * stderr); a CI run (CI=true) fails instead, so a missing database is never a silent pass.
 */

export const PG_URL_VARIABLE = 'BULWARK_TEST_PG_URL';
export const PG_URL_EXAMPLE = 'postgres://root@127.0.0.1:5432/test';

export type PgAvailability = { readonly kind: 'ready'; readonly url: string } | { readonly kind: 'skip'; readonly reason: string } | { readonly kind: 'fail'; readonly reason: string };

/** Decides, from an environment, whether PostgreSQL suites run, are skipped or must fail. */
export function pgAvailability(env: Readonly<Record<string, string | undefined>> = process.env): PgAvailability {
  const url = env[PG_URL_VARIABLE]?.trim();
  if (url) return { kind: 'ready', url };
  if (env.CI === 'true') {
    return {
      kind: 'fail',
      reason: `${PG_URL_VARIABLE} is not set but CI=true: the PostgreSQL suites must run in CI (set ${PG_URL_VARIABLE}=${PG_URL_EXAMPLE})`,
    };
  }
  return { kind: 'skip', reason: `PostgreSQL suites SKIPPED: set ${PG_URL_VARIABLE}=${PG_URL_EXAMPLE} to run them` };
}

let skipNoticePrinted = false;

function noteSkip(reason: string): void {
  if (skipNoticePrinted) return;
  skipNoticePrinted = true;
  process.stderr.write(`${reason}\n`);
}

/**
 * Declares a suite that needs PostgreSQL. `body` receives the server URL; it is not called
 * when the suite is skipped, and in CI without a URL the suite holds one failing test.
 */
export function describePg(name: string, body: (url: string) => void): void {
  const availability = pgAvailability();
  switch (availability.kind) {
    case 'ready':
      describe(name, () => body(availability.url));
      return;
    case 'skip':
      noteSkip(availability.reason);
      describe(name, { skip: availability.reason }, () => undefined);
      return;
    case 'fail':
      describe(name, () => {
        it(`needs PostgreSQL (${PG_URL_VARIABLE})`, () => {
          throw new Error(availability.reason);
        });
      });
  }
}

/**
 * For a single test: the PostgreSQL URL, or undefined after marking the test skipped.
 * Throws in CI when no URL is set.
 */
export function pgTestUrl(t: TestContext): string | undefined {
  const availability = pgAvailability();
  if (availability.kind === 'ready') return availability.url;
  if (availability.kind === 'fail') throw new Error(availability.reason);
  noteSkip(availability.reason);
  t.skip(availability.reason);
  return undefined;
}

function requirePgUrl(): string {
  const availability = pgAvailability();
  if (availability.kind !== 'ready') throw new Error(availability.reason);
  return availability.url;
}

/** Runs `fn` on one short-lived connection and always closes it. */
export async function withPgConnection<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Schemas older than this were left by a run that was killed before its clean-up ran. */
const STALE_SCHEMA_MS = 3_600_000;
const DEADLOCK_DETECTED = '40P01';
let staleSwept = false;

/** Drops `t_<base36 ms>_<hex>` schemas created more than an hour ago; once per process. */
async function sweepStaleSchemas(client: pg.Client): Promise<void> {
  if (staleSwept) return;
  staleSwept = true;
  const { rows } = await client.query<{ nspname: string }>("SELECT nspname FROM pg_namespace WHERE nspname ~ '^t_[0-9a-z]+_[0-9a-f]{12}$'");
  for (const { nspname } of rows) {
    const createdMs = parseInt(nspname.split('_')[1] ?? '', 36);
    // Best effort: another test process may be sweeping the same schema.
    if (Date.now() - createdMs > STALE_SCHEMA_MS) await client.query(`DROP SCHEMA IF EXISTS ${nspname} CASCADE`).catch(() => undefined);
  }
}

/**
 * Creates an empty schema with a unique name (`t_<base36 ms>_<12 hex>`) for one test and
 * drops it, with everything in it, when the test ends. Returns the schema name.
 */
export async function freshPgSchema(t: TestContext, url: string = requirePgUrl(), beforeDrop?: () => Promise<void>): Promise<string> {
  const schema = `t_${Date.now().toString(36)}_${randomBytes(6).toString('hex')}`;
  await withPgConnection(url, async (c) => {
    await sweepStaleSchemas(c);
    await c.query(`CREATE SCHEMA ${schema}`);
  });
  // Pools left open on the schema are idle by then and hold no locks; a leaked transaction
  // would, and the lock timeout turns that hang into a failed clean-up.
  // A deadlock with a straggling transaction is retried (PostgreSQL aborts one side at once).
  t.after(async () => {
    // What still uses the schema (servers started after it was made) stops first.
    await beforeDrop?.();
    await withPgConnection(url, async (c) => {
      await c.query("SET lock_timeout = '10s'");
      for (let attempt = 1; ; attempt += 1) {
        try {
          await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          return;
        } catch (err) {
          if ((err as { code?: string }).code !== DEADLOCK_DETECTED || attempt === 3) throw err;
        }
      }
    });
  });
  return schema;
}
