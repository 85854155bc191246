import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SqliteClient } from '../store/sqlite/sqlite-client.js';
import { type TestServer, startTestServer } from '../testing/harness.js';
import { readings, setup } from '../testing/telemetry.js';

/** A badge reader's schema: the PIN and e-mail encrypted, the holder's name pseudonymised. */
const badge = {
  $id: 'badge@1',
  type: 'object',
  required: ['door'],
  properties: {
    door: { type: 'string', maxLength: 8 },
    pin: { type: 'string', pattern: '^[0-9]{4}$', 'x-sensitive': 'encrypt' },
    email: { type: 'string', 'x-sensitive': 'encrypt' },
    holder: { type: 'string', 'x-sensitive': 'hash' },
  },
};
const PIN = 'pin-8472-x9q';
const EMAIL = 'ana.secret@example.test';
const HOLDER = 'Ana Holder-Quist';
const SECRETS = [PIN, EMAIL, HOLDER];

interface Letter {
  id: string;
  reason: string;
  msgId: string | null;
  payload: string;
  protection: string;
  sealedFields: string[];
  revealed: boolean;
  problems: { path: string; got: string }[];
  decryptError?: string;
}

async function tokenWithRole(s: TestServer, admin: string, name: string, role: string): Promise<string> {
  const user = await s.api('POST', '/api/v1/users', { token: admin, body: { name, role } });
  assert.equal(user.status, 201, user.text);
  const key = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: `${name}-key`, principalId: user.body.id } });
  return s.tokenFor(key.body.key);
}

const letters = async (s: TestServer, token: string, query = ''): Promise<Letter[]> => {
  const res = await s.api('GET', `/api/v1/dead-letters?limit=100${query}`, { token });
  assert.equal(res.status, 200, res.text);
  return res.body as Letter[];
};

const byMsg = (list: Letter[], msgId: string | null): Letter => {
  const found = list.find((l) => l.msgId === msgId);
  assert.ok(found, `a dead letter for ${String(msgId)}`);
  return found;
};

function assertNoSecretIn(text: string, where: string, secrets: readonly string[] = SECRETS): void {
  for (const secret of secrets) assert.ok(!text.includes(secret), `${secret} is in ${where}`);
}

/** Fails if any secret is in the SQLite file or its WAL (read as bytes, after the server stopped). */
function assertNoSecretOnDisk(dataDir: string, secrets: readonly string[]): void {
  for (const file of ['bulwark.db', 'bulwark.db-wal']) {
    const path = join(dataDir, file);
    if (existsSync(path)) {
      const bytes = readFileSync(path);
      for (const secret of secrets) assert.ok(!bytes.includes(secret), `${secret} is in ${file}`);
    }
  }
}

const violation = JSON.stringify({ id: 'v-1', schema: 'badge@1', data: { door: 'front-door-A', pin: PIN, email: EMAIL, holder: HOLDER } });
const unknown = JSON.stringify({ id: 'u-1', schema: 'visitor@1', data: { pin: PIN, email: EMAIL } });
const malformed = `{"id":"m-1","schema":"badge@1","data":{"pin":"${PIN}","email":"${EMAIL}",}`;

describe('dead letters with sensitive fields', () => {
  it('shows a viewer, and an admin who does not ask for decryption, no PIN, e-mail or name, and keeps none of them in the database file', async (t) => {
    const { s, admin, client } = await setup(t);
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: badge })).status, 201);
    for (const payload of [violation, unknown, malformed]) await client.publishAsync('devices/sensor-1/telemetry', payload, { qos: 1 });
    const viewer = await tokenWithRole(s, admin, 'vic', 'viewer');

    const seen = await s.api('GET', '/api/v1/dead-letters?limit=100', { token: viewer });
    assert.equal(seen.status, 200, seen.text);
    assertNoSecretIn(seen.text, 'the dead letters a viewer reads');
    const list = seen.body as Letter[];
    assert.deepEqual(list.map((l) => l.reason).sort(), ['malformed_json', 'schema_violation', 'unknown_schema']);

    const refused = byMsg(list, 'v-1');
    assert.deepEqual([refused.protection, [...refused.sealedFields].sort(), refused.revealed], ['fields', ['email', 'holder', 'pin'], false]);
    assert.deepEqual(JSON.parse(refused.payload).data, { door: 'front-door-A', pin: '***', email: '***', holder: '***' }, 'only the sensitive fields are masked');
    assert.deepEqual(
      refused.problems.map((p) => [p.path, p.got]).sort(),
      [
        ['/door', '"front-door-A"'],
        ['/pin', '***'],
      ],
      "a problem quoting a sensitive field's value is masked too",
    );

    const noSchema = byMsg(list, 'u-1');
    assert.deepEqual([noSchema.protection, noSchema.payload, noSchema.sealedFields], ['whole', '***', []], 'no usable schema: the whole payload is sealed');
    assert.ok(noSchema.problems.every((p) => p.got === '***'));
    assert.deepEqual([byMsg(list, null).protection, byMsg(list, null).payload], ['whole', '***'], 'malformed JSON is sealed whole');

    const one = await s.api('GET', `/api/v1/dead-letters/${refused.id}`, { token: viewer });
    assert.deepEqual(one.body, refused);
    assert.deepEqual(await letters(s, admin), list, 'an admin who does not ask for decryption sees the same masked letters');

    await s.server.stop();
    assertNoSecretOnDisk(s.dataDir, SECRETS);
  });

  it('shows dead letters in clear only with decrypt=true and telemetry:decrypt, audits that read, and refuses a viewer', async (t) => {
    const { s, admin, client } = await setup(t);
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: badge })).status, 201);
    for (const payload of [violation, unknown, malformed]) await client.publishAsync('devices/sensor-1/telemetry', payload, { qos: 1 });
    const viewer = await tokenWithRole(s, admin, 'vic', 'viewer');
    const operator = await tokenWithRole(s, admin, 'opal', 'operator');

    for (const [who, token] of [
      ['viewer', viewer],
      ['operator', operator],
    ] as const) {
      const denied = await s.api('GET', '/api/v1/dead-letters?decrypt=true', { token });
      assert.equal(denied.status, 403, `${who}: ${denied.text}`);
      assert.equal(denied.body.error.code, 'BULWARK_ERR_FORBIDDEN');
      assertNoSecretIn(denied.text, `the refusal to a ${who}`);
    }
    const one = (await letters(s, viewer))[0] as Letter;
    assert.equal((await s.api('GET', `/api/v1/dead-letters/${one.id}?decrypt=true`, { token: viewer })).status, 403);

    const clear = await letters(s, admin, '&decrypt=true');
    const refused = byMsg(clear, 'v-1');
    assert.equal(refused.revealed, true);
    const data = JSON.parse(refused.payload).data;
    assert.deepEqual([data.door, data.pin, data.email], ['front-door-A', PIN, EMAIL], 'encrypted fields are shown in clear');
    assert.match(data.holder, /^h:[0-9a-f]{32}$/, 'a hashed field shows its pseudonym, as in a stored reading');
    assert.equal(refused.problems.find((p) => p.path === '/pin')?.got, JSON.stringify(PIN));
    assert.equal(byMsg(clear, 'u-1').payload, unknown, 'a letter sealed whole is shown exactly as received');
    assert.deepEqual(
      byMsg(clear, 'u-1').problems.map((p) => p.got),
      ['"visitor@1"'],
    );
    assert.equal(byMsg(clear, null).payload, malformed);

    // The pseudonym is the one the reading would have had.
    await client.publishAsync('devices/sensor-1/telemetry', JSON.stringify({ id: 'ok-1', schema: 'badge@1', data: { door: 'A', holder: HOLDER } }), { qos: 1 });
    assert.equal((await readings(s, admin)).find((r) => r.msgId === 'ok-1')?.data.holder, data.holder);

    const single = await s.api('GET', `/api/v1/dead-letters/${refused.id}?decrypt=true`, { token: admin });
    assert.deepEqual(single.body, refused);

    const audit = await s.api('GET', '/api/v1/audit?action=dead-letter.decrypt', { token: admin });
    const entries = audit.body as { target: string | null; result: string; details: { deadLetters?: number; ids?: string[] } }[];
    const ok = entries.filter((e) => e.result === 'ok');
    assert.equal(ok.length, 2, 'the list and the single letter read in clear, one entry each');
    assert.ok(ok.some((e) => e.target === refused.id && e.details.deadLetters === 1));
    assert.ok(
      ok.some(
        (e) =>
          e.details.deadLetters === 3 &&
          [...(e.details.ids ?? [])].sort().join() ===
            clear
              .map((l) => l.id)
              .sort()
              .join(),
      ),
    );
    const denials = await s.api('GET', '/api/v1/audit?result=denied', { token: admin });
    assert.ok((denials.body as { details: { route?: string } }[]).filter((e) => e.details.route?.startsWith('/api/v1/dead-letters')).length >= 3, 'each refusal is audited');
  });

  it('replays a reading refused for its schema once the schema exists, stored with its sensitive fields protected; a violation replays into an equally protected letter', async (t) => {
    const { s, admin, client } = await setup(t);
    const early = JSON.stringify({ id: 'r-1', schema: 'badge@1', data: { door: 'A', pin: '1234', email: EMAIL, holder: HOLDER } });
    await client.publishAsync('devices/sensor-1/telemetry', early, { qos: 1 });
    const [first] = await letters(s, admin, '&reason=unknown_schema');
    assert.ok(first);
    assert.equal(first.protection, 'whole');

    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: badge })).status, 201);
    const replayed = await s.api('POST', `/api/v1/dead-letters/${first.id}/replay`, { token: admin });
    assert.deepEqual(replayed.body, { status: 'stored' });
    const [stored] = (await readings(s, admin)).filter((r) => r.msgId === 'r-1');
    assert.equal(stored?.data.door, 'A');
    assert.match(String(stored?.data.pin), /^enc:/, 'the replayed reading is protected like any reading');
    assert.match(String(stored?.data.holder), /^h:/);
    const plain = await s.api('GET', '/api/v1/devices/sensor-1/telemetry?decrypt=true', { token: admin });
    assert.deepEqual([plain.body[0].data.pin, plain.body[0].data.email], ['1234', EMAIL]);
    assert.equal((await s.api('POST', `/api/v1/dead-letters/${first.id}/replay`, { token: admin })).body.status, 'duplicate');

    await client.publishAsync('devices/sensor-1/telemetry', violation, { qos: 1 });
    const [bad] = await letters(s, admin, '&reason=schema_violation');
    assert.ok(bad);
    const again = await s.api('POST', `/api/v1/dead-letters/${bad.id}/replay`, { token: admin });
    assert.equal(again.body.status, 'dead_lettered');
    assert.notEqual(again.body.deadLetterId, bad.id);
    const second = (await s.api('GET', `/api/v1/dead-letters/${again.body.deadLetterId}?decrypt=true`, { token: admin })).body as Letter;
    const firstClear = (await s.api('GET', `/api/v1/dead-letters/${bad.id}?decrypt=true`, { token: admin })).body as Letter;
    assert.deepEqual(JSON.parse(second.payload), JSON.parse(firstClear.payload), 'the replay sent the same reading');
    assert.deepEqual([second.protection, JSON.parse(second.payload).data.pin], ['fields', PIN]);
    assertNoSecretIn(JSON.stringify(await letters(s, admin)), 'the masked list after the replays');
  });

  it('seals at start the letters an older version stored in clear, and reports a letter that does not decrypt without failing the list', async (t) => {
    const first = await setup(t);
    assert.equal((await first.s.api('POST', '/api/v1/schemas', { token: first.admin, body: badge })).status, 201);
    await first.client.publishAsync('devices/sensor-1/telemetry', violation, { qos: 1 });
    const [tampered] = await letters(first.s, first.admin);
    assert.ok(tampered);
    await first.s.server.stop();

    const legacyEmail = 'legacy.person@example.test';
    const legacyPayload = JSON.stringify({ id: 'old-1', schema: 'badge@1', data: { door: 'B', pin: '5521', email: legacyEmail } });
    const db = await SqliteClient.open(join(first.s.dataDir, 'bulwark.db'));
    try {
      // A letter as an older version stored it (no protection column value), and a sealed field moved to another field: it no longer opens.
      await db.run(
        `INSERT INTO dead_letters (id, device_id, transport, topic, received_at, reason, problems, schema_id, msg_id, payload, replayed_at, replay_result)
        VALUES ('dl_legacy', 'sensor-1', 'mqtt', 'devices/sensor-1/telemetry', $1, 'unknown_schema', $2, 'badge@1', 'old-1', $3, NULL, NULL)`,
        [Date.now() - 60_000, JSON.stringify([{ path: '/schema', expected: 'a registered schema', got: legacyEmail }]), legacyPayload],
      );
      const row = await db.get<{ payload: string }>('SELECT payload FROM dead_letters WHERE id = $1', [tampered.id]);
      const body = JSON.parse(row?.payload ?? '{}');
      body.data.pin = body.data.email;
      await db.run('UPDATE dead_letters SET payload = $2 WHERE id = $1', [tampered.id, JSON.stringify(body)]);
    } finally {
      await db.close();
    }

    const s = await startTestServer(t, { dataDir: first.s.dataDir, adminKey: first.s.adminKey });
    const admin = await s.tokenFor(s.adminKey);
    const masked = await letters(s, admin);
    assert.deepEqual([byMsg(masked, 'old-1').protection, byMsg(masked, 'old-1').payload], ['whole', '***'], 'the clear letter was sealed whole at start');

    const clear = await letters(s, admin, '&decrypt=true');
    assert.equal(byMsg(clear, 'old-1').payload, legacyPayload);
    assert.equal(byMsg(clear, 'old-1').problems[0]?.got, legacyEmail);
    const broken = byMsg(clear, 'v-1');
    assert.match(broken.decryptError ?? '', /BULWARK_ERR_SECRET_CORRUPT/);
    assert.deepEqual([broken.revealed, JSON.parse(broken.payload).data.pin], [false, '***'], 'shown masked, with the reason');
    const single = await s.api('GET', `/api/v1/dead-letters/${tampered.id}?decrypt=true`, { token: admin });
    assert.equal(single.status, 200);
    assert.match(single.body.decryptError, /SECRET_CORRUPT/);
    const audit = await s.api('GET', '/api/v1/audit?action=dead-letter.decrypt', { token: admin });
    assert.ok(
      (audit.body as { details: { undecryptable?: string[] } }[]).some((e) => e.details.undecryptable?.includes(tampered.id)),
      'the audit entry names the letter that did not decrypt',
    );

    const cannot = await s.api('POST', `/api/v1/dead-letters/${tampered.id}/replay`, { token: admin });
    assert.equal(cannot.status, 409, cannot.text);
    assert.equal(cannot.body.error.code, 'BULWARK_ERR_CONFLICT');
    assert.deepEqual((await s.api('POST', `/api/v1/dead-letters/dl_legacy/replay`, { token: admin })).body, { status: 'stored' }, 'a sealed legacy letter still replays');
    const [replayed] = (await readings(s, admin)).filter((r) => r.msgId === 'old-1');
    assert.match(String(replayed?.data.email), /^enc:/, 'and is stored protected');

    await s.server.stop();
    assertNoSecretOnDisk(s.dataDir, [legacyEmail, PIN, EMAIL, HOLDER]);
  });
});
