import assert from 'node:assert/strict';
import { it } from 'node:test';
import { type TestServer, newAdminKey, startTestServer } from './testing/harness.js';
import { describePg, freshPgSchema } from './testing/pg.js';

/**
 * The whole server on PostgreSQL, end to end over HTTP: state written by one server is all
 * there for the next one started on the same schema and data directory (same master key).
 */
describePg('server on PostgreSQL', (url) => {
  it('keeps users, keys, secrets and the audit chain across a restart', async (t) => {
    const stops: (() => Promise<void>)[] = [];
    // Registered first so that it runs first: servers stop before their schema is dropped.
    t.after(async () => {
      for (const stop of stops) await stop();
    });
    const pgSchema = await freshPgSchema(t, url);
    const firstAdminKey = newAdminKey();
    /** Starts a server the test stops itself; whatever is still running is stopped at the end. */
    const start = async (options: { dataDir?: string; adminKey: string }): Promise<TestServer & { stop(): Promise<void> }> => {
      const s = await startTestServer(t, { config: { store: url }, pgSchema, keepRunning: true, ...options });
      let stopped: Promise<void> | undefined;
      const stop = () => (stopped ??= s.server.stop());
      stops.push(stop);
      return { ...s, stop };
    };

    // First start: a new installation on an empty schema.
    const one = await start({ adminKey: firstAdminKey });
    assert.equal(one.server.store.engine, 'postgres');
    assert.equal(one.server.firstStart.adminKey, firstAdminKey);
    assert.equal((await one.api('GET', '/readyz')).status, 200);
    const adminToken = await one.tokenFor(firstAdminKey);

    const created = await one.api('POST', '/api/v1/users', { token: adminToken, body: { name: 'olivia', role: 'operator' } });
    assert.equal(created.status, 201, created.text);
    const userId = created.body.id as string;
    const keyRes = await one.api('POST', '/api/v1/keys', { token: adminToken, body: { name: 'laptop', principalId: userId } });
    assert.equal(keyRes.status, 201, keyRes.text);
    const userKey = keyRes.body.key as string;
    const userToken = await one.tokenFor(userKey);
    const me = await one.api('GET', '/api/v1/auth/whoami', { token: userToken });
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.principal.name, 'olivia');
    const refused = await one.api('POST', '/api/v1/users', { token: userToken, body: { name: 'mallory', role: 'admin' } });
    assert.equal(refused.status, 403, 'an operator cannot create users');

    const firstReport = await one.api('POST', '/api/v1/audit/verify', { token: adminToken });
    assert.equal(firstReport.status, 200, firstReport.text);
    assert.equal(firstReport.body.ok, true, firstReport.body.message);
    const actions = (await one.api('GET', '/api/v1/audit?limit=1000', { token: adminToken })).body.map((e: { action: string }) => e.action);
    for (const action of ['platform.bootstrap', 'auth.token', 'user.create', 'key.create']) assert.ok(actions.includes(action), `audit has ${action}`);
    const seqBeforeRestart = firstReport.body.headSeq as number;
    assert.ok(seqBeforeRestart >= 6, `expected several audit entries, head is at ${seqBeforeRestart}`);

    await one.stop();
    assert.equal((await fetch(`${one.url}/healthz`).catch(() => undefined))?.status, undefined, 'the first server is down');

    // Second start: same schema, same data directory (master key file), a different bootstrap key offered.
    const secondOffer = newAdminKey();
    const two = await start({ dataDir: one.dataDir, adminKey: secondOffer });
    assert.equal(two.server.firstStart.adminKey, undefined, 'no second admin key');
    assert.equal(two.server.firstStart.masterKeyCreatedAt, undefined, 'the master key file is reused');
    const offered = await two.api('POST', '/api/v1/auth/token', { body: { key: secondOffer } });
    assert.equal(offered.status, 401, 'the bootstrap key offered on a later start is ignored');

    // The token signed before the restart still verifies: the signing key came back from the vault.
    assert.equal((await two.api('GET', '/api/v1/auth/whoami', { token: userToken })).status, 200);
    const adminAgain = await two.tokenFor(firstAdminKey);
    const users = await two.api('GET', '/api/v1/users', { token: adminAgain });
    assert.deepEqual(users.body.map((u: { name: string }) => u.name).sort(), ['admin', 'olivia']);
    const keys = await two.api('GET', `/api/v1/keys?principalId=${userId}`, { token: adminAgain });
    assert.deepEqual(
      keys.body.map((k: { name: string; revokedAt: unknown }) => [k.name, k.revokedAt]),
      [['laptop', null]],
    );
    const userAgain = await two.tokenFor(userKey);
    assert.equal((await two.api('GET', '/api/v1/auth/whoami', { token: userAgain })).body.principal.id, userId);

    const secondReport = await two.api('POST', '/api/v1/audit/verify', { token: adminAgain });
    assert.equal(secondReport.body.ok, true, secondReport.body.message);
    assert.ok(secondReport.body.headSeq > seqBeforeRestart, 'the chain continues where it stopped');
    assert.equal(secondReport.body.entriesChecked, secondReport.body.headSeq);
    const bootstraps = await two.api('GET', '/api/v1/audit?action=platform.bootstrap', { token: adminAgain });
    assert.equal(bootstraps.body.length, 1, 'the platform was bootstrapped once');

    // Revocation on the second server is durable too.
    const keyId = keys.body[0].id as string;
    assert.equal((await two.api('POST', `/api/v1/keys/${keyId}/revoke`, { token: adminAgain })).status, 200);
    assert.equal((await two.api('POST', '/api/v1/auth/token', { body: { key: userKey } })).status, 401);
  });
});
