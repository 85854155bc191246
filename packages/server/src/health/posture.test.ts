import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { HealthReport, isMessage } from '@bulwark/protocol';
import { deviceMetric, nextMessage, send } from '../testing/device-messages.js';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { startTestServer } from '../testing/harness.js';
import { evaluatePosture, mergePosture, worstOf } from './posture.js';

const report = (posture?: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ ts: Date.now(), boot: 'b1', uptimeS: 60, ...(posture ? { posture } : {}), ...extra });

describe('device posture', () => {
  it('judges each part of a posture into findings, failing on debug ports and unverified images', () => {
    const f = evaluatePosture({
      debugPorts: [{ proto: 'tcp', port: 23, address: '::', service: 'telnet' }],
      boot: { slot: 'b', verified: false, reason: 'image_hash_mismatch' },
      ssh: { enabled: true, passwordAuth: true, rootLogin: 'yes' },
      serialConsole: { enabled: true, consoles: ['ttyS0'] },
    });
    assert.deepEqual(
      f.map((x) => `${x.severity} ${x.kind}`),
      ['fail debug-port', 'fail boot-unverified', 'warn ssh-password', 'warn ssh-root-login', 'warn serial-console'],
    );
    assert.equal(f[0]?.detail, 'telnet listening on tcp [::]:23');
    assert.equal(worstOf(f), 'fail');
    const soft = evaluatePosture({ boot: { slot: 'a', verified: false, reason: 'no_manifest' }, ssh: { rootLogin: 'prohibit-password', passwordAuth: false } });
    assert.deepEqual(
      soft.map((x) => `${x.severity} ${x.kind}`),
      ['warn boot-unchecked'],
    );
    assert.deepEqual(
      evaluatePosture({ boot: { slot: 'b', verified: false, reason: 'manifest_missing' } }).map((x) => `${x.severity} ${x.kind}`),
      ['fail boot-unverified'],
      'an updated image whose manifest is gone fails',
    );
    assert.equal(worstOf(evaluatePosture({ debugPorts: [], boot: { slot: 'a', verified: true }, serialConsole: { enabled: false } })), 'ok');
  });

  it('refuses control characters in the boot reason and detail a device sends (they end up in tables and rendered reports)', () => {
    const with_ = (boot: Record<string, unknown>) => ({ ts: 1, boot: 'b', uptimeS: 1, posture: { boot: { slot: 'b', verified: false, reason: 'bad_signature', ...boot } } });
    assert.ok(isMessage(HealthReport, with_({ detail: 'the signature does not verify <under the root> | 2 of 3' })));
    for (const detail of ['line one\nline two', 'a\rb', 'tab\there', 'nul\u0000', 'del\u007F']) assert.equal(isMessage(HealthReport, with_({ detail })), false, JSON.stringify(detail));
    assert.equal(isMessage(HealthReport, with_({ reason: 'x\ny' })), false);
  });

  it('flags a listed socket on a known debug port even when the device did not classify it as one, once per socket', () => {
    const f = evaluatePosture({
      listening: [
        { proto: 'tcp', port: 5555, address: '0.0.0.0' },
        { proto: 'tcp', port: 23, address: '::' },
        { proto: 'tcp', port: 443, address: '::' },
      ],
      debugPorts: [{ proto: 'tcp', port: 23, address: '::', service: 'telnet' }],
    });
    assert.deepEqual(
      f.map((x) => `${x.severity} ${x.kind} ${x.detail}`),
      ['fail debug-port telnet listening on tcp [::]:23', 'fail debug-port adb listening on tcp 0.0.0.0:5555'],
    );
  });

  it('takes each part a report leaves out from the last posture, so a finding clears only when a report says that part is clean', () => {
    const last = {
      listening: [{ proto: 'tcp' as const, port: 5555, address: '0.0.0.0' }],
      listeningTotal: 1,
      debugPorts: [{ proto: 'tcp' as const, port: 5555, address: '0.0.0.0', service: 'adb' }],
      ssh: { passwordAuth: true },
      serialConsole: { enabled: true },
      boot: { slot: 'a' as const, verified: false, reason: 'image_hash_mismatch' },
    };
    assert.deepEqual(mergePosture(last, { boot: { slot: 'a', verified: true }, ssh: { passwordAuth: false } }), { ...last, boot: { slot: 'a', verified: true }, ssh: { passwordAuth: false } });
    assert.deepEqual(mergePosture(last, { debugPorts: [] }), { debugPorts: [], ssh: last.ssh, serialConsole: last.serialConsole, boot: last.boot }, 'the sockets are one part: a new reading replaces the list, the count and the debug ports together');
    assert.deepEqual(mergePosture(null, { ssh: { passwordAuth: false } }), { ssh: { passwordAuth: false } });
  });

  it('stores the newest posture a device reports with its findings, keeps it through reports without one, and refuses a bad one with its path', async (t) => {
    const clock = new ManualClock(Date.now());
    const s = await startTestServer(t, { clock, config: { health: { minIntervalMs: 1000 } } });
    const admin = await s.tokenFor(s.adminKey);
    const c = await connectDevice(s, await enrollDevice(s, admin, 'gw-9'));
    t.after(() => c.end(true));
    const view = async () => (await s.api('GET', '/api/v1/devices/gw-9/health', { token: admin })).body;
    assert.equal((await view()).posture, null, 'never reported');

    await send(c, 'devices/gw-9/health', report({ debugPorts: [{ proto: 'tcp', port: 5555, address: '0.0.0.0', service: 'adb' }], ssh: { passwordAuth: true }, boot: { slot: 'a', verified: true } }));
    let v = await view();
    assert.equal(v.posture.reportedAt, clock.now());
    assert.deepEqual(
      v.posture.findings.map((f: { kind: string; severity: string }) => `${f.severity} ${f.kind}`),
      ['fail debug-port', 'warn ssh-password'],
    );
    assert.deepEqual(v.latest.report.posture.debugPorts[0].port, 5555);

    clock.advance(1000);
    await send(c, 'devices/gw-9/health', report(undefined, { uptimeS: 120 }));
    v = await view();
    assert.equal(v.latest.report.uptimeS, 120);
    assert.equal(v.posture.findings.length, 2, 'a report without posture (an older agent, a probe that failed) leaves the last one');

    await c.subscribeAsync('devices/gw-9/errors', { qos: 1 });
    const notice = nextMessage(c, 'devices/gw-9/errors');
    clock.advance(1000);
    await send(c, 'devices/gw-9/health', report({ debugPorts: [{ proto: 'tcp', port: 70_000, address: '0.0.0.0', service: 'adb' }] }));
    const refused = await notice;
    assert.equal(refused.reason, 'invalid');
    assert.ok(
      refused.problems.some((p: string) => p.startsWith('/posture/debugPorts/0/port')),
      JSON.stringify(refused.problems),
    );
    assert.equal(await deviceMetric(s, 'health', 'invalid'), 1);

    clock.advance(1000);
    await send(c, 'devices/gw-9/health', report({ ssh: { passwordAuth: false }, boot: { slot: 'a', verified: true } }));
    v = await view();
    assert.deepEqual(
      v.posture.findings.map((f: { kind: string; severity: string }) => `${f.severity} ${f.kind}`),
      ['fail debug-port'],
      'a posture without the sockets (a failed read) keeps their last finding; the SSH one it reports clears',
    );
    assert.equal(v.posture.posture.debugPorts[0].port, 5555);

    clock.advance(1000);
    await send(c, 'devices/gw-9/health', report({ debugPorts: [], boot: { slot: 'b', verified: true } }));
    assert.deepEqual((await view()).posture.findings, [], 'fixed: a report that says the sockets are clean clears the finding');
    const metrics = (await s.api('GET', '/metrics')).text;
    assert.match(metrics, /bulwark_device_posture_findings_total\{kind="debug-port",severity="fail"\} 2/);
  });
});
