import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, randomIds } from '@bulwark/core';
import type { ApiKeyRecord, Principal } from './access.js';
import { fixedTokenKey } from './token-keys.js';
import { AccessService } from './service.js';
import { startTestServer } from '../testing/harness.js';

describe('authentication and authorisation over HTTP', () => {
  it('refuses an expired token, and accepts a fresh one from the same key', async (t) => {
    const clock = new ManualClock(Date.UTC(2026, 10, 26));
    const s = await startTestServer(t, { clock, config: { auth: { accessTokenTtlMs: 60_000 } } });
    const token = await s.tokenFor(s.adminKey);
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token })).status, 200);
    clock.advance(59_999);
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token })).status, 200);
    clock.advance(1);
    const expired = await s.api('GET', '/api/v1/auth/whoami', { token });
    assert.equal(expired.status, 401);
    assert.equal(expired.body.error.code, 'BULWARK_ERR_TOKEN_EXPIRED');
    assert.equal(expired.headers.get('www-authenticate'), 'Bearer');
    const fresh = await s.tokenFor(s.adminKey);
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token: fresh })).status, 200);
  });

  it('rate limits per principal with 429 and Retry-After, and counts the refusals', async (t) => {
    const clock = new ManualClock();
    const s = await startTestServer(t, { clock, config: { rateLimit: { perPrincipalPerMinute: 5 } } });
    const token = await s.tokenFor(s.adminKey);
    for (let i = 0; i < 5; i += 1) assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token })).status, 200);
    const limited = await s.api('GET', '/api/v1/auth/whoami', { token });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, 'BULWARK_ERR_RATE_LIMITED');
    assert.equal(limited.headers.get('retry-after'), '60');
    clock.advance(30_000);
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token })).headers.get('retry-after'), '30');
    clock.advance(30_000);
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token })).status, 200, 'a new window starts');
    assert.match((await s.api('GET', '/metrics')).text, /bulwark_rate_limited_total\{per="principal"\} 2/);
    const refused = await s.server.audit.list({ limit: 10, result: 'denied' });
    assert.equal(refused.length, 0, 'a 429 is counted, not written to the audit chain');
  });

  it('rate limits per address before authentication', async (t) => {
    const s = await startTestServer(t, { config: { rateLimit: { perAddressPerMinute: 3 } } });
    for (let i = 0; i < 3; i += 1) assert.equal((await s.api('GET', '/healthz')).status, 200);
    const limited = await s.api('GET', '/healthz');
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
  });

  it('locks out an address after repeated failed authentication, then lets it back in', async (t) => {
    const clock = new ManualClock();
    const s = await startTestServer(t, { clock, config: { auth: { lockoutThreshold: 3, lockoutWindowMs: 60_000, lockoutMs: 120_000 } } });
    const wrong = `${s.adminKey.slice(0, -4)}AAAA`;
    for (let i = 0; i < 3; i += 1) {
      const res = await s.api('POST', '/api/v1/auth/token', { body: { key: wrong } });
      assert.equal(res.status, 401);
      assert.equal(res.body.error.code, 'BULWARK_ERR_INVALID_CREDENTIALS');
    }
    const locked = await s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey } });
    assert.equal(locked.status, 429, 'even the right key is refused while locked');
    assert.equal(locked.body.error.code, 'BULWARK_ERR_AUTH_LOCKED');
    assert.equal(locked.headers.get('retry-after'), '120');
    clock.advance(120_000);
    assert.equal((await s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey } })).status, 200);
    const metrics = await s.api('GET', '/metrics');
    assert.match(metrics.text, /bulwark_auth_lockouts_total\{kind="address"\} 1/);
    assert.match(metrics.text, /bulwark_auth_failures_total\{reason="invalid_key"\} 3/);
  });

  it('cannot be raced: concurrent wrong guesses past the threshold are refused before they are checked', async (t) => {
    const s = await startTestServer(t, { config: { auth: { lockoutThreshold: 3 } } });
    const wrong = `${s.adminKey.slice(0, -4)}AAAA`;
    const answers = await Promise.all(Array.from({ length: 40 }, () => s.api('POST', '/api/v1/auth/token', { body: { key: wrong } })));
    const codes = answers.map((a) => `${a.status} ${a.body?.error?.code}`);
    assert.equal(codes.filter((x) => x === '401 BULWARK_ERR_INVALID_CREDENTIALS').length, 3, codes.join(','));
    assert.equal(codes.filter((x) => x === '429 BULWARK_ERR_RATE_LIMITED' || x === '429 BULWARK_ERR_AUTH_LOCKED').length, 37, codes.join(','));
    const metrics = (await s.api('GET', '/metrics')).text;
    assert.match(metrics, /bulwark_auth_failures_total\{reason="invalid_key"\} 3\n/, 'three guesses reached the secret check, no more');
    assert.match(metrics, /bulwark_auth_lockouts_total\{kind="address"\} 1\n/);
    const locked = await s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey } });
    assert.equal(locked.body.error.code, 'BULWARK_ERR_AUTH_LOCKED', 'three failures lock the address');
  });

  it('never locks out a client that exchanges a good key many times in parallel: the excess waits a moment (429 RATE_LIMITED)', async (t) => {
    const s = await startTestServer(t, { config: { auth: { keyLockoutThreshold: 3, lockoutThreshold: 5 } } });
    const n = 40;
    const answers = await Promise.all(Array.from({ length: n }, () => s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey } })));
    const ok = answers.filter((a) => a.status === 200);
    const waiting = answers.filter((a) => a.status === 429 && a.body.error.code === 'BULWARK_ERR_RATE_LIMITED');
    assert.equal(ok.length + waiting.length, n, answers.map((a) => `${a.status} ${a.body?.error?.code ?? ''}`).join(','));
    assert.ok(ok.length >= 1 && waiting.length >= 1, `${ok.length} tokens, ${waiting.length} asked to wait`);
    for (const w of waiting) {
      assert.equal(w.headers.get('retry-after'), '1');
      assert.match(w.body.error.message, /too many authentication attempts under way from this address/);
    }
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token: ok[0]?.body.accessToken })).status, 200);
    assert.equal((await s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey } })).status, 200, 'the key works right after');
    // Nothing is left counted as under way: as many parallel exchanges as the key threshold all pass.
    const again = await Promise.all(Array.from({ length: 3 }, () => s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey } })));
    assert.deepEqual(
      again.map((a) => a.status),
      [200, 200, 200],
    );
    const metrics = (await s.api('GET', '/metrics')).text;
    assert.match(metrics, new RegExp(`bulwark_auth_failures_total\\{reason="attempts_in_flight"\\} ${waiting.length}\\n`));
    assert.match(metrics, new RegExp(`bulwark_rate_limited_total\\{per="exchange"\\} ${waiting.length}\\n`));
    assert.doesNotMatch(metrics, /bulwark_auth_lockouts_total\{/);
    assert.doesNotMatch(metrics, /reason="invalid_key"/);
  });

  it('locks a key for an address after that many wrong secrets sent in parallel, and checks no more than that many', async (t) => {
    const s = await startTestServer(t, { config: { http: { port: 0, trustedProxies: '127.0.0.1' }, auth: { keyLockoutThreshold: 3, lockoutThreshold: 10, lockoutMs: 60_000 } } });
    const from = (address: string) => ({ 'x-forwarded-for': address });
    const wrong = `${s.adminKey.slice(0, -4)}AAAA`;
    const answers = await Promise.all(Array.from({ length: 30 }, () => s.api('POST', '/api/v1/auth/token', { body: { key: wrong }, headers: from('203.0.113.9') })));
    const codes = answers.map((a) => `${a.status} ${a.body?.error?.code}`);
    assert.equal(codes.filter((x) => x === '401 BULWARK_ERR_INVALID_CREDENTIALS').length, 3, codes.join(','));
    assert.equal(codes.filter((x) => x === '429 BULWARK_ERR_RATE_LIMITED' || x === '429 BULWARK_ERR_AUTH_LOCKED').length, 27, codes.join(','));
    const metrics = (await s.api('GET', '/metrics')).text;
    assert.match(metrics, /bulwark_auth_failures_total\{reason="invalid_key"\} 3\n/, 'three guesses reached the secret check, no more');
    assert.match(metrics, /bulwark_auth_lockouts_total\{kind="address_key"\} 1\n/);
    assert.doesNotMatch(metrics, /bulwark_auth_lockouts_total\{kind="address"\}/, 'three failures do not lock the address (threshold 10)');
    const locked = await s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey }, headers: from('203.0.113.9') });
    assert.equal(locked.status, 429);
    assert.equal(locked.body.error.code, 'BULWARK_ERR_AUTH_LOCKED');
    assert.equal(locked.body.error.message, 'too many failed authentication attempts; locked out for now');
    assert.equal(locked.headers.get('retry-after'), '60');
    assert.equal((await s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey }, headers: from('203.0.113.10') })).status, 200, 'from elsewhere it works');
  });

  it('never locks a key out for everyone: wrong secrets for its id from other addresses leave its owner in', async (t) => {
    const s = await startTestServer(t, { config: { http: { port: 0, trustedProxies: '127.0.0.1' } } });
    const keyId = s.adminKey.split('.')[1];
    const wrong = `${s.adminKey.slice(0, -4)}AAAA`;
    for (let i = 0; i < 10; i += 1) {
      const res = await s.api('POST', '/api/v1/auth/token', { body: { key: wrong }, headers: { 'x-forwarded-for': `198.51.100.${i + 1}` } });
      assert.equal(res.status, 401, `attempt ${i}: ${res.text}`);
    }
    const owner = await s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey }, headers: { 'x-forwarded-for': '198.51.100.77' } });
    assert.equal(owner.status, 200, `the real key, from its own address, is not locked: ${owner.text}`);
    assert.ok(keyId && owner.text.length > 0);
  });

  it('locks a key id tried from one address for that address only, and that address after more failures', async (t) => {
    const clock = new ManualClock();
    const s = await startTestServer(t, { clock, config: { http: { port: 0, trustedProxies: '127.0.0.1' }, auth: { keyLockoutThreshold: 2, lockoutThreshold: 5, lockoutMs: 60_000 } } });
    const from = (address: string) => ({ 'x-forwarded-for': address });
    const wrong = `${s.adminKey.slice(0, -4)}AAAA`;
    for (let i = 0; i < 2; i += 1) assert.equal((await s.api('POST', '/api/v1/auth/token', { body: { key: wrong }, headers: from('203.0.113.1') })).status, 401);
    const pair = await s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey }, headers: from('203.0.113.1') });
    assert.equal(pair.status, 429, 'that key, from that address, is locked');
    assert.equal(pair.body.error.code, 'BULWARK_ERR_AUTH_LOCKED');
    assert.equal((await s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey }, headers: from('203.0.113.2') })).status, 200, 'from elsewhere it works');
    // Other key ids from the same address still count towards the address's own lock.
    const other = (n: number) => `bwk.key_nobody_${n}.${'A'.repeat(43)}`;
    // The refused attempt above was no failure: 2 + 3 failures make the address's five.
    for (let i = 0; i < 3; i += 1) assert.equal((await s.api('POST', '/api/v1/auth/token', { body: { key: other(i) }, headers: from('203.0.113.1') })).status, 401);
    const address = await s.api('POST', '/api/v1/auth/token', { body: { key: other(9) }, headers: from('203.0.113.1') });
    assert.equal(address.status, 429, 'the address is locked after lockoutThreshold failures');
    assert.equal(address.body.error.code, 'BULWARK_ERR_AUTH_LOCKED');
    const metrics = (await s.api('GET', '/metrics')).text;
    assert.match(metrics, /bulwark_auth_lockouts_total\{kind="address_key"\} 1/);
    assert.match(metrics, /bulwark_auth_lockouts_total\{kind="address"\} 1/);
    clock.advance(60_000);
    assert.equal((await s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey }, headers: from('203.0.113.1') })).status, 200);
  });

  it('checks a wrong secret for an unknown key id as hard as for a known one', async () => {
    let checks = 0;
    const secrets = {
      hash: async (secret: string) => `plain$${secret}`,
      verify: async (secret: string, stored: string) => {
        checks += 1;
        return stored === `plain$${secret}`;
      },
    };
    const principals = new Map<string, Principal>();
    const keys = new Map<string, ApiKeyRecord>();
    const access = new AccessService({
      principals: {
        insert: async (p) => void principals.set(p.id, p),
        get: async (id) => principals.get(id),
        getByName: async (n) => [...principals.values()].find((p) => p.name === n),
        list: async () => [...principals.values()],
        count: async () => principals.size,
        setDisabled: async () => true,
        setDeviceGroups: async () => true,
      },
      apiKeys: { insert: async (k) => void keys.set(k.id, k), get: async (id) => keys.get(id), listByPrincipal: async () => [], list: async () => [], revoke: async () => true, touch: async () => undefined },
      clock: new ManualClock(),
      ids: randomIds,
      tokenKeys: fixedTokenKey(Buffer.alloc(32, 1)),
      accessTokenTtlMs: 60_000,
      secrets,
    });
    const boot = await access.bootstrap();
    assert.ok(boot);
    const known = `${boot.keyText.slice(0, -4)}AAAA`;
    const unknown = `bwk.key_unknown.${'A'.repeat(43)}`;
    for (const text of [known, unknown]) {
      checks = 0;
      await assert.rejects(access.exchange(text), { code: 'BULWARK_ERR_INVALID_CREDENTIALS' });
      assert.equal(checks, 1, `one secret check for ${text === known ? 'a known' : 'an unknown'} key id`);
    }
  });

  it('ends a token at once when its key is revoked or its principal disabled', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const op = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'op1', role: 'operator' } });
    const k1 = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'a', principalId: op.body.id } });
    const k2 = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'b', principalId: op.body.id } });
    const t1 = await s.tokenFor(k1.body.key);
    const t2 = await s.tokenFor(k2.body.key);
    assert.equal((await s.api('POST', `/api/v1/keys/${k1.body.apiKey.id}/revoke`, { token: admin })).status, 200);
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token: t1 })).body.error.code, 'BULWARK_ERR_TOKEN_INVALID');
    assert.equal((await s.api('POST', '/api/v1/auth/token', { body: { key: k1.body.key } })).status, 401);
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token: t2 })).status, 200);
    assert.equal((await s.api('POST', `/api/v1/users/${op.body.id}/disable`, { token: admin })).status, 200);
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token: t2 })).status, 401);
    assert.equal((await s.api('POST', `/api/v1/users/${op.body.id}/enable`, { token: admin })).status, 200);
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token: t2 })).status, 200);
    const again = await s.api('POST', `/api/v1/keys/${k1.body.apiKey.id}/revoke`, { token: admin });
    assert.equal(again.status, 409);
  });

  it('audits calls made with a revoked key or a disabled principal under that principal, as revoked', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const op = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'op2', role: 'operator' } });
    const k = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'a', principalId: op.body.id } });
    const token = await s.tokenFor(k.body.key);
    assert.equal((await s.api('POST', `/api/v1/keys/${k.body.apiKey.id}/revoke`, { token: admin })).status, 200);
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token })).status, 401);
    assert.equal((await s.api('POST', '/api/v1/auth/token', { body: { key: k.body.key } })).status, 401);
    assert.equal((await s.api('POST', '/api/v1/auth/token', { body: { key: `${k.body.key.slice(0, -4)}AAAA` } })).status, 401);
    const revoked = await s.server.audit.list({ limit: 10, result: 'revoked' });
    assert.deepEqual(revoked.map((e) => [e.actor, e.action]).sort(), [
      [op.body.id, 'auth.token'],
      [op.body.id, 'http.refused'],
    ]);
    const guessed = await s.server.audit.list({ limit: 10, action: 'auth.token', result: 'denied' });
    assert.equal(guessed[0]?.actor, 'anonymous', 'a wrong secret proves nothing about whose key it is');
    const listed = await s.api('GET', '/api/v1/audit?result=revoked', { token: admin });
    assert.equal(listed.status, 200);
    assert.equal(listed.body.length, 2);
  });

  it('scopes service accounts and narrowed keys to exactly what they hold', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const svc = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'auditor-bot', kind: 'service', scopes: ['audit:read'] } });
    assert.equal(svc.status, 201, svc.text);
    assert.deepEqual(svc.body.scopes, ['audit:read']);
    const key = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'bot', principalId: svc.body.id } });
    const bot = await s.tokenFor(key.body.key);
    assert.equal((await s.api('GET', '/api/v1/audit', { token: bot })).status, 200);
    assert.equal((await s.api('GET', '/api/v1/users', { token: bot })).status, 403);
    const beyond = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'x', principalId: svc.body.id, scopes: ['users:write'] } });
    assert.equal(beyond.status, 400, 'a key cannot hold more than its principal');
    const narrow = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'ro', scopes: ['audit:read'] } });
    const ro = await s.tokenFor(narrow.body.key);
    assert.equal((await s.api('GET', '/api/v1/audit', { token: ro })).status, 200);
    assert.equal((await s.api('POST', '/api/v1/users', { token: ro, body: { name: 'nope', role: 'viewer' } })).status, 403);
    const dup = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'auditor-bot', role: 'viewer' } });
    assert.equal(dup.status, 409);
    const badUser = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'half', kind: 'service', role: 'viewer' } });
    assert.equal(badUser.status, 400);
  });

  it('never lets a caller hand out scopes it does not hold', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const svc = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'key-minter', kind: 'service', scopes: ['keys:self', 'keys:write', 'users:read', 'users:write'] } });
    const minter = await s.tokenFor((await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'm', principalId: svc.body.id } })).body.key);
    const me = await s.api('GET', '/api/v1/auth/whoami', { token: admin });
    const adminKey = await s.api('POST', '/api/v1/keys', { token: minter, body: { name: 'escalate', principalId: me.body.principal.id } });
    assert.equal(adminKey.status, 403, 'a key for the admin would carry *');
    const narrow = await s.api('POST', '/api/v1/keys', { token: minter, body: { name: 'ok', principalId: me.body.principal.id, scopes: ['users:read'] } });
    assert.equal(narrow.status, 403, "nor a key narrowed to the caller's own scopes: the admin outranks the caller");
    assert.equal((await s.api('POST', '/api/v1/users', { token: minter, body: { name: 'root2', kind: 'service', scopes: ['*'] } })).status, 403);
    assert.equal((await s.api('POST', '/api/v1/users', { token: minter, body: { name: 'boss', role: 'admin' } })).status, 403);
    assert.equal((await s.api('POST', '/api/v1/users', { token: minter, body: { name: 'reader', kind: 'service', scopes: ['users:read'] } })).status, 201);
    const peer = await s.api('POST', '/api/v1/users', { token: minter, body: { name: 'peer', kind: 'service', scopes: ['users:read'] } });
    assert.equal((await s.api('POST', '/api/v1/keys', { token: minter, body: { name: 'ok', principalId: peer.body.id } })).status, 201, "a key for a principal within the caller's own scopes is fine");
    const audit = await s.api('GET', '/api/v1/audit?action=key.create&limit=5', { token: admin });
    assert.equal(audit.body[0]?.details?.principalId, peer.body.id, 'the audit entry says whose key was made');
  });

  it('stores key secrets only as scrypt hashes and shows the key text once', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const created = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'mine' } });
    const secret = String(created.body.key).split('.')[2];
    const stored = await s.server.store.apiKeys.get(created.body.apiKey.id);
    assert.ok(stored?.secretHash.startsWith('scrypt$'));
    assert.ok(secret && stored && !stored.secretHash.includes(secret));
    const listed = await s.api('GET', '/api/v1/keys', { token: admin });
    assert.ok(!listed.text.includes(secret) && !listed.text.includes('scrypt'));
  });
});
