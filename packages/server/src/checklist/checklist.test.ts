import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { send } from '../testing/device-messages.js';
import { closed, connectDevice, enrollDevice } from '../testing/devices.js';
import { eventually } from '../testing/eventually.js';
import { type TestServer, startTestServer } from '../testing/harness.js';

interface Check {
  id: string;
  status: 'pass' | 'warn' | 'fail';
  evidence: string[];
  remediation: string;
  etsi: string[];
}
interface Report {
  checks: Check[];
  summary: { pass: number; warn: number; fail: number };
}

const DAY = 86_400_000;

async function checklist(s: TestServer, token: string): Promise<Report> {
  const res = await s.api('GET', '/api/v1/security/checklist', { token });
  assert.equal(res.status, 200, res.text);
  return res.body as Report;
}

/** A device connects over mutual TLS and sends one health report carrying `posture`. */
async function reportPosture(t: Parameters<typeof startTestServer>[0], s: TestServer, d: Awaited<ReturnType<typeof enrollDevice>>, posture: Record<string, unknown>): Promise<void> {
  const c = await connectDevice(s, d);
  t.after(() => c.end(true));
  await send(c, `devices/${d.id}/health`, { ts: Date.now(), boot: 'b1', uptimeS: 60, posture });
}

const notPassing = (r: Report) => Object.fromEntries(r.checks.filter((c) => c.status !== 'pass').map((c) => [c.id, c.status]));

describe('the security checklist (bulwark audit)', () => {
  it('passes every check on a clean deployment, each with its evidence and ETSI provision', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    await reportPosture(t, s, await enrollDevice(s, admin, 'clean-1'), {
      listening: [{ proto: 'tcp', port: 8443, address: '0.0.0.0' }],
      listeningTotal: 1,
      debugPorts: [],
      ssh: { enabled: false, passwordAuth: false, rootLogin: 'no' },
      serialConsole: { enabled: false },
      boot: { slot: 'a', verified: true },
    });
    const good = await s.api('POST', '/api/v1/schemas', { token: admin, body: { $id: 'clean@1', type: 'object', 'x-retention-days': 90, properties: { temp_c: { type: 'number', 'x-unit': 'degC' } } } });
    assert.equal(good.status, 201, good.text);
    const report = await checklist(s, admin);
    assert.deepEqual(
      notPassing(report),
      {},
      JSON.stringify(
        report.checks.filter((c) => c.status !== 'pass'),
        null,
        1,
      ),
    );
    assert.equal(report.summary.pass, report.checks.length);
    assert.ok(report.checks.length >= 13);
    for (const c of report.checks) {
      assert.ok(c.evidence.length > 0, `${c.id} shows what it looked at`);
      assert.ok(c.etsi.every((e) => /^5\.\d+(-\d+)?$/.test(e)) && c.etsi.length > 0, `${c.id} names its ETSI EN 303 645 provision`);
    }
  });

  it('reports every planted problem of a misconfigured deployment, and nothing else', async (t) => {
    const s = await startTestServer(t, { config: { ota: { minSecurityVersion: 5 } } });
    const admin = await s.tokenFor(s.adminKey);
    // Planted: a certificate about to expire, a device below the security floor, a schema without its own retention, a broad service account, a device reporting an open debug port.
    const expiring = await enrollDevice(s, admin, 'expiring-1');
    await enrollDevice(s, admin, 'old-firmware-1');
    await reportPosture(t, s, await enrollDevice(s, admin, 'fine-1'), { debugPorts: [], boot: { slot: 'b', verified: true } });
    await reportPosture(t, s, await enrollDevice(s, admin, 'debug-port-1'), { debugPorts: [{ proto: 'tcp', port: 5555, address: '0.0.0.0', service: 'adb' }], boot: { slot: 'a', verified: true } });
    const db = new Database(join(s.dataDir, 'bulwark.db'));
    try {
      db.prepare('UPDATE device_certificates SET not_after = ? WHERE device_id = ?').run(Date.now() + 5 * DAY, 'expiring-1');
      db.prepare('UPDATE devices SET security_version = ? WHERE id = ?').run(3, 'old-firmware-1');
      db.prepare('UPDATE devices SET security_version = ? WHERE id = ?').run(7, 'fine-1');
    } finally {
      db.close();
    }
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: { $id: 'no-retention@1', type: 'object', properties: { temp_c: { type: 'number', 'x-unit': 'degC' } } } })).status, 201);
    const bot = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'too-broad-bot', kind: 'service', scopes: ['devices:read', 'users:write'] } });
    assert.equal(bot.status, 201, bot.text);
    assert.equal((await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'narrow-bot', kind: 'service', scopes: ['telemetry:read'] } })).status, 201);

    const report = await checklist(s, admin);
    assert.deepEqual(notPassing(report), {
      'certificates-expiring': 'fail',
      'security-floor': 'fail',
      'schema-retention': 'warn',
      'broad-service-accounts': 'fail',
      'device-posture': 'fail',
    });
    const by = (id: string) => report.checks.find((c) => c.id === id) as Check;
    assert.match(by('certificates-expiring').evidence.join('\n'), new RegExp(`expiring-1: certificate ${expiring.serial ?? '\\w+'}`));
    assert.match(by('security-floor').evidence.join('\n'), /old-firmware-1: security version 3/);
    assert.doesNotMatch(by('security-floor').evidence.join('\n'), /fine-1/);
    assert.match(by('schema-retention').evidence.join('\n'), /no-retention@1 sets no x-retention-days/);
    assert.match(by('broad-service-accounts').evidence.join('\n'), /too-broad-bot .* holds users:write/);
    assert.doesNotMatch(by('broad-service-accounts').evidence.join('\n'), /narrow-bot/);
    assert.match(by('device-posture').evidence.join('\n'), /debug-port-1: FAIL adb listening on tcp 0\.0\.0\.0:5555/);
    assert.doesNotMatch(by('device-posture').evidence.join('\n'), /fine-1/);
    assert.deepEqual(by('device-posture').etsi, ['5.6-1', '5.6-4', '5.7-1']);
    for (const c of report.checks.filter((x) => x.status !== 'pass')) assert.ok(c.remediation.length > 20, `${c.id} says what to do`);
  });

  it('flags one certificate used from two addresses that keep taking the session from each other, not a device that roams', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const cloned = await enrollDevice(s, admin, 'cloned-1');
    const roaming = await enrollDevice(s, admin, 'roaming-1');
    // Real mutual-TLS sessions from different loopback addresses: the clone pushes the original off, and back, three times.
    const from = async (d: typeof cloned, localAddress: string) => {
      const client = await connectDevice(s, d, { reconnectPeriod: 0, localAddress } as Parameters<typeof connectDevice>[2]);
      t.after(() => client.end(true));
      return client;
    };
    /** Connects, and waits until the platform has recorded this connect (the next one then takes this session over). */
    const connectNumber = async (d: typeof cloned, address: string, n: number) => {
      const client = await from(d, address);
      await eventually(
        async () => (await s.api('GET', `/api/v1/devices/${d.id}`, { token: admin })).body as { connectivity: { connectCount: number } },
        (x) => x.connectivity.connectCount >= n,
      );
      void closed(client);
    };
    let n = 0;
    for (const address of ['127.0.0.1', '127.0.0.2', '127.0.0.1', '127.0.0.2']) await connectNumber(cloned, address, (n += 1));
    n = 0;
    for (const address of ['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']) await connectNumber(roaming, address, (n += 1));
    const report = await eventually(
      async () => checklist(s, admin),
      (r) => r.checks.some((c) => c.id === 'cloned-identity' && c.status === 'warn'),
    );
    const check = report.checks.find((c) => c.id === 'cloned-identity') as Check;
    assert.deepEqual(check.evidence, ['cloned-1: 3 takeovers in 24 h between 127.0.0.1, 127.0.0.2']);
    assert.deepEqual(notPassing(report), { 'cloned-identity': 'warn' }, 'the roaming device is not flagged');
  });

  it('needs audit:read', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const viewer = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'device-reader', kind: 'service', scopes: ['devices:read'] } });
    assert.equal(viewer.status, 201, viewer.text);
    const key = await s.api('POST', '/api/v1/keys', { token: admin, body: { principalId: (viewer.body as { id: string }).id, name: 'k' } });
    assert.equal(key.status, 201, key.text);
    const token = await s.tokenFor((key.body as { key: string }).key);
    assert.equal((await s.api('GET', '/api/v1/security/checklist', { token })).status, 403);
  });
});
