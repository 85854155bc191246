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

export type PgAvailability =
  | { readonly kind: 'ready'; readonly url: string }
  | { readonly kind: 'skip'; readonly reason: string }
  | { readonly kind: 'fail'; readonly reason: string };

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

/**
 * Creates an empty schema with a unique name (`t_<12 hex>`) for one test and drops it,
 * with everything in it, when the test ends. Returns the schema name.
 */
export async function freshPgSchema(t: TestContext, url: string = requirePgUrl()): Promise<string> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  await withPgConnection(url, (c) => c.query(`CREATE SCHEMA ${schema}`));
  t.after(() => withPgConnection(url, (c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)));
  return schema;
}
