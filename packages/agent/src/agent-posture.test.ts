import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LinuxPostureProbe } from './posture/linux-probe.js';
import { agentConfig, agentDir, startAgent, startPlatform, until } from './testing/platform.js';

interface Finding {
  kind: string;
  severity: string;
  detail: string;
}
interface HealthView {
  latest: { report: { posture?: { debugPorts?: { port: number }[] } } } | null;
  posture: { findings: Finding[] } | null;
}
interface Check {
  id: string;
  status: string;
  evidence: string[];
}

describe('device posture, agent to checklist (real agent, real platform, real /proc)', () => {
  it('reports a debug port really listening on this machine; the platform stores it, shows the finding and fails the checklist naming the device; a failing probe costs only the posture', { skip: process.platform !== 'linux' }, async (t) => {
    const p = await startPlatform(t);
    // A real socket on a free port, named a debug port for this device; SSH and the command line from fixture files.
    const debug = createServer();
    await new Promise<void>((resolve) => debug.listen(0, '127.0.0.1', resolve));
    t.after(() => debug.close());
    const port = (debug.address() as { port: number }).port;
    const fixtures = agentDir(t, 'posture-fixtures');
    writeFileSync(join(fixtures, 'sshd_config'), '# hardened\nPasswordAuthentication no\nPermitRootLogin no\nMatch User field-service\n  PasswordAuthentication yes\n');
    writeFileSync(join(fixtures, 'cmdline'), 'root=/dev/mmcblk0p2 console=tty1 quiet\n');
    const probe = new LinuxPostureProbe({ debugPorts: { [port]: 'gdbserver' }, paths: { sshdConfig: join(fixtures, 'sshd_config'), cmdline: join(fixtures, 'cmdline') } });

    await startAgent(await agentConfig(t, p, 'posture-1', { health: { intervalMs: 60_000 } }), { posture: probe });
    const health = async () => (await p.s.api('GET', '/api/v1/devices/posture-1/health', { token: p.admin })).body as HealthView;
    await until('the posture stored', async () => (await health()).posture !== null, 10_000);
    const view = await health();
    assert.ok(
      view.latest?.report.posture?.debugPorts?.some((d) => d.port === port),
      JSON.stringify(view.latest),
    );
    assert.deepEqual(
      view.posture?.findings.map((f) => `${f.severity} ${f.kind}`),
      ['fail debug-port', 'warn ssh-password'],
    );
    assert.equal(view.posture?.findings[0]?.detail, `gdbserver listening on tcp 127.0.0.1:${port}`);

    const checklist = await p.s.api('GET', '/api/v1/security/checklist', { token: p.admin });
    assert.equal(checklist.status, 200, checklist.text);
    const check = (checklist.body as { checks: Check[] }).checks.find((c) => c.id === 'device-posture');
    assert.equal(check?.status, 'fail');
    assert.match(check?.evidence.join('\n') ?? '', new RegExp(`posture-1: FAIL gdbserver listening on tcp 127\\.0\\.0\\.1:${port}`));
    assert.equal(await p.metric(/bulwark_device_posture_findings_total\{kind="debug-port",severity="fail"\} (\d+)/), 1);

    // A probe that throws costs the posture, not the report (on the same platform: a second one would double the test's time).
    const logs: string[] = [];
    await startAgent(await agentConfig(t, p, 'posture-2', { logs: { level: 'warn' } }), { posture: { probe: () => Promise.reject(new Error('permission denied')) }, logSink: (l) => logs.push(l) });
    const other = async () => (await p.s.api('GET', '/api/v1/devices/posture-2/health', { token: p.admin })).body as HealthView;
    await until('a health report stored', async () => (await other()).latest !== null, 10_000);
    const without = await other();
    assert.equal(without.latest?.report.posture, undefined);
    assert.equal(without.posture, null);
    assert.ok(
      logs.some((l) => l.includes('posture probe failed') && l.includes('permission denied')),
      logs.join('\n'),
    );
  });
});
