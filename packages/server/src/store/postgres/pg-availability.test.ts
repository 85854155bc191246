import assert from 'node:assert/strict';
import { it } from 'node:test';
import { PG_URL_VARIABLE, pgAvailability } from '../../testing/pg.js';

// The rule that keeps a CI run from passing without PostgreSQL; needs no database itself.

it('runs the PostgreSQL suites when the URL is set, in CI or not', () => {
  const url = 'postgres://root@127.0.0.1:5432/test';
  assert.deepEqual(pgAvailability({ [PG_URL_VARIABLE]: url }), { kind: 'ready', url });
  assert.deepEqual(pgAvailability({ [PG_URL_VARIABLE]: ` ${url} `, CI: 'true' }), { kind: 'ready', url });
});

it('skips them, naming the variable, on a developer machine without the URL', () => {
  for (const env of [{}, { [PG_URL_VARIABLE]: '' }, { CI: 'false' }]) {
    const got = pgAvailability(env);
    assert.equal(got.kind, 'skip');
    assert.match(got.kind === 'skip' ? got.reason : '', /^PostgreSQL suites SKIPPED: set BULWARK_TEST_PG_URL=postgres:\/\//);
  }
});

it('fails them in CI without the URL, never skips', () => {
  for (const env of [{ CI: 'true' }, { CI: 'true', [PG_URL_VARIABLE]: '  ' }]) {
    const got = pgAvailability(env);
    assert.equal(got.kind, 'fail');
    assert.match(got.kind === 'fail' ? got.reason : '', /BULWARK_TEST_PG_URL is not set but CI=true/);
  }
});
