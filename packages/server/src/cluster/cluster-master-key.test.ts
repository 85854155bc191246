import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import pino from 'pino';
import { keyFingerprint } from '../secrets/envelope.js';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { firmwareKit } from '../testing/firmware.js';
import { type TestServer, newAdminKey, startTestServer, tempDir } from '../testing/harness.js';
import { freshPgSchema, pgTestUrl } from '../testing/pg.js';
import { type RunningEngine, describeWith, startNats } from '../testing/services.js';
import { eventually } from '../testing/eventually.js';

/**
 * Rotating the master key of a live cluster: every node is given the new key as the next
 * key, the rotation runs once through any node, then every node is restarted with only the
 * new key. Real PostgreSQL, a real nats-server; the secrets are read back through the API.
 */
describeWith('cluster mode: the master key rotates with live nodes', ['nats-server'], () => {
  let nats: RunningEngine;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop());

  it('rotates through B while A serves; both restart with only the new key; a node with only the old key fails closed', async (t) => {
    const url = pgTestUrl(t);
    if (url === undefined) return;
    const running = new Set<TestServer>();
    const schema = await freshPgSchema(t, url, async () => {
      for (const s of [...running].reverse()) await s.server.stop();
    });
    const adminKey = newAdminKey();
    const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
    const [oldId, newId] = [keyFingerprint(oldKey), keyFingerprint(newKey)];
    const dataDirs = new Map<string, string>();
    const start = async (nodeId: string, keys: { current: Buffer; next?: Buffer }, extra: { config?: Record<string, unknown>; logger?: pino.Logger } = {}) => {
      const dataDir = dataDirs.get(nodeId) ?? tempDir(t);
      dataDirs.set(nodeId, dataDir);
      const env: Record<string, string> = { BULWARK_MASTER_KEY: keys.current.toString('hex'), ...(keys.next ? { BULWARK_MASTER_KEY_NEXT: keys.next.toString('base64') } : {}) };
      const s = await startTestServer(t, {
        config: { ...extra.config, store: url, bus: nats.url, nodeId },
        pgSchema: schema,
        adminKey,
        env,
        dataDir,
        keepRunning: true,
        ...(extra.logger ? { logger: extra.logger } : {}),
      });
      running.add(s);
      return s;
    };
    const stop = async (s: TestServer) => {
      await s.server.stop();
      running.delete(s);
    };

    // Step 1 of the procedure: every node holds the old key and the new one as the next key.
    let a = await start('node-a', { current: oldKey, next: newKey });
    let b = await start('node-b', { current: oldKey, next: newKey });
    let admin = await a.tokenFor(adminKey);
    const cluster = await b.api('GET', '/api/v1/cluster', { token: admin });
    assert.deepEqual(
      cluster.body.nodes.map((n: { id: string; masterKeyIds: string[] }) => [n.id, n.masterKeyIds]),
      [
        ['node-a', [oldId, newId]],
        ['node-b', [oldId, newId]],
      ],
    );

    // An encrypted telemetry field, read back through the API: the vault opens it on each read.
    assert.equal((await a.api('POST', '/api/v1/schemas', { token: admin, body: { $id: 'geo@1', type: 'object', properties: { lat_deg: { type: 'number', 'x-unit': 'deg', 'x-sensitive': 'encrypt' } } } })).status, 201);
    const device = await enrollDevice(a, admin, 'mk-1');
    const client = await connectDevice(a, device);
    t.after(() => client.end(true));
    const send = (id: string, lat: number) => client.publishAsync('devices/mk-1/telemetry', JSON.stringify({ id, schema: 'geo@1', data: { lat_deg: lat } }), { qos: 1 });
    const decrypted = async (s: TestServer) => {
      const res = await s.api('GET', '/api/v1/devices/mk-1/telemetry?decrypt=true', { token: admin });
      assert.equal(res.status, 200, res.text);
      return (res.body as { data: { lat_deg: number } }[]).map((r) => r.data.lat_deg).sort();
    };
    await send('r-before', 1.5);
    await eventually(
      () => decrypted(b),
      (lats) => lats.length === 1,
    );
    const stored = await b.api('GET', '/api/v1/devices/mk-1/telemetry', { token: admin });
    assert.match(String(stored.body[0]?.data.lat_deg), /^enc:/, 'stored sealed');

    // A live node that lacks the new key blocks the rotation; its root key set differs and it says so.
    const kit = firmwareKit(tempDir(t));
    const logs: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as { level: number; msg: string }) });
    const c = await start('node-c', { current: oldKey }, { config: { ota: { rootKeysFile: kit.rootFile } }, logger });
    assert.ok(
      logs.some((l) => /firmware root key set .* differs from other nodes/.test(l.msg)),
      JSON.stringify(logs),
    );
    const roots = (await a.api('GET', '/api/v1/cluster', { token: admin })).body.nodes as { id: string; firmwareRootId: string }[];
    assert.deepEqual(
      roots.map((n) => n.firmwareRootId === 'none'),
      [true, true, false],
      "node-c's root key set shows as different",
    );
    const refused = await b.api('POST', '/api/v1/system/master-key/rotate', { token: admin });
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.body.error.code, 'BULWARK_ERR_MASTER_KEY_NOT_HELD');
    assert.match(refused.body.error.message, /node-c/);
    assert.deepEqual((await a.api('GET', '/api/v1/system/master-key', { token: admin })).body.dataKeys, { [oldId]: 1 }, 'nothing changed');
    await stop(c);

    // Step 2: rotate once, through B; A keeps serving both old and new readings.
    const rotated = await b.api('POST', '/api/v1/system/master-key/rotate', { token: admin });
    assert.equal(rotated.status, 200, rotated.text);
    assert.deepEqual(rotated.body, { previousMasterKeyId: oldId, masterKeyId: newId, dataKeysRewrapped: 1, keySource: 'next' });
    const again = await a.api('POST', '/api/v1/system/master-key/rotate', { token: admin });
    assert.equal(again.body.dataKeysRewrapped, 0, 'a second rotation, through the other node, has nothing left to do');
    const status = (await a.api('GET', '/api/v1/system/master-key', { token: admin })).body;
    assert.deepEqual([status.dataKeys, status.masterKeyIds, status.nextMasterKeyId], [{ [newId]: 1 }, [oldId, newId], newId]);
    await send('r-after', 2.5);
    await eventually(
      () => decrypted(a),
      (lats) => lats.length === 2,
    );
    assert.deepEqual(await decrypted(a), [1.5, 2.5]);
    assert.deepEqual(await decrypted(b), [1.5, 2.5]);

    // Step 3: a rolling restart with only the new key.
    await stop(a);
    a = await start('node-a', { current: newKey });
    await stop(b);
    b = await start('node-b', { current: newKey });
    admin = await b.tokenFor(adminKey);
    assert.deepEqual(await decrypted(a), [1.5, 2.5]);
    assert.deepEqual(await decrypted(b), [1.5, 2.5]);
    assert.equal((await a.api('GET', '/readyz')).status, 200);
    assert.deepEqual((await b.api('GET', '/api/v1/system/master-key', { token: admin })).body.masterKeyIds, [newId]);

    // A node still holding only the old key does not start, and says which key it lacks.
    await assert.rejects(start('node-d', { current: oldKey }), (err: { code?: string; message: string }) => {
      assert.equal(err.code, 'BULWARK_ERR_MASTER_KEY_INVALID');
      assert.match(err.message, new RegExp(`wrapped by master key ${newId}, which this node does not hold \\(it holds ${oldId}\\)`));
      return true;
    });
  });
});
