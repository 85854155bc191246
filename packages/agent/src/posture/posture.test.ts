import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, describe, it } from 'node:test';
import { DEVICE_MESSAGE_LIMITS, HealthReport, isMessage } from '@bulwark/protocol';
import type { AgentLogger } from '../logs.js';
import { LinuxPostureProbe, serialConsoles } from './linux-probe.js';
import { runProbe, withPosture } from './probe.js';
import { parseProcNet, procAddress } from './proc-net.js';
import { parseSshdConfig } from './sshd-config.js';
import { AgentPosture, SharedPostureProbe } from './agent-posture.js';

const HEAD = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const row = (n: number, local: string, remote: string, st: string) => `   ${n}: ${local} ${remote} ${st} 00000000:00000000 00:00000000 00000000     0        0 ${1000 + n} 1 0000000000000000 100 0 0 10 0`;
const ZERO6 = '0'.repeat(32);
const TCP =
  HEAD +
  [
    row(0, '00000000:15B3', '00000000:0000', '0A'), // 0.0.0.0:5555 listening
    row(1, '0100007F:0929', '00000000:0000', '0A'), // 127.0.0.1:2345 listening
    row(2, '0F02000A:0016', '0100000A:D431', '01'), // 10.0.2.15:22, an established connection
  ].join('\n');
const TCP6 =
  HEAD +
  [
    row(0, `${ZERO6}:0016`, `${ZERO6}:0000`, '0A'), // [::]:22
    row(1, '00000000000000000000000001000000:1F90', `${ZERO6}:0000`, '0a'), // [::1]:8080
    row(2, '0000000000000000FFFF00000100007F:0017', `${ZERO6}:0000`, '0A'), // [::ffff:127.0.0.1]:23
    row(3, 'B80D0120000000000000000001000000:01BB', `${ZERO6}:0000`, '0A'), // [2001:db8::1]:443
  ].join('\n');
const UDP =
  HEAD +
  [
    row(0, '00000000:0044', '00000000:0000', '07'), // 0.0.0.0:68 bound
    row(1, '0F02000A:A1B2', '08080808:0035', '01'), // connected to 8.8.8.8:53
  ].join('\n');

function fixtures(t: TestContext, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-posture-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

describe('posture probe: /proc/net', () => {
  it('reads addresses in the host byte order, IPv4 and IPv6 (canonical short form)', () => {
    assert.equal(procAddress('0100007F', true), '127.0.0.1');
    assert.equal(procAddress('7F000001', false), '127.0.0.1', 'a big-endian machine prints the bytes in order');
    assert.equal(procAddress(ZERO6, true), '::');
    assert.equal(procAddress('00000000000000000000000001000000', true), '::1');
    assert.equal(procAddress('B80D0120000000000000000001000000', true), '2001:db8::1');
    assert.equal(procAddress('0000000000000000FFFF00000100007F', true), '::ffff:7f00:1');
    for (const bad of ['', '0100007', 'G100007F', '0'.repeat(16)]) assert.equal(procAddress(bad, true), undefined, bad);
  });

  it('lists TCP sockets in LISTEN and unconnected UDP sockets only, skipping the header and broken lines', () => {
    assert.deepEqual(parseProcNet(TCP, 'tcp', true), [
      { proto: 'tcp', port: 5555, address: '0.0.0.0' },
      { proto: 'tcp', port: 2345, address: '127.0.0.1' },
    ]);
    assert.deepEqual(
      parseProcNet(TCP6, 'tcp', true).map((s) => `${s.address} ${s.port}`),
      [':: 22', '::1 8080', '::ffff:7f00:1 23', '2001:db8::1 443'],
    );
    assert.deepEqual(parseProcNet(UDP, 'udp', true), [{ proto: 'udp', port: 68, address: '0.0.0.0' }]);
    assert.deepEqual(parseProcNet(`${HEAD}   0: nonsense\n   1: 00000000:XYZ0 00000000:0000 0A\n\n`, 'tcp', true), []);
  });
});

describe('posture probe: sshd_config', () => {
  it('takes the first global value, reads Match blocks as weakening, skips comments, follows Include', async (t) => {
    const dir = fixtures(t, { 'sshd_config.d/10-root.conf': 'PermitRootLogin without-password\n', 'sshd_config.d/20-late.conf': 'PasswordAuthentication yes\n', 'sshd_config.d/readme.txt': 'PermitRootLogin yes\n' });
    const text = [
      '# PasswordAuthentication yes',
      '  passwordauthentication   no # hardened',
      'Include sshd_config.d/*.conf',
      'PasswordAuthentication yes',
      'Port 22',
      'Port=2222',
      'PermitRootLogin no',
      'Match User backup',
      '  PasswordAuthentication no',
      '  Port 9999',
    ].join('\n');
    const s = await parseSshdConfig(text, dir);
    assert.equal(s.passwordAuth, false, 'the first value wins; the later `yes` (included or not), the commented one and the Match block do not count');
    assert.equal(s.rootLogin, 'prohibit-password', 'the included file came first (without-password is prohibit-password); readme.txt is not included');
    assert.deepEqual(s.ports, [22, 2222]);
    const weak = await parseSshdConfig('PasswordAuthentication no\nPermitRootLogin no\nMatch Address 10.0.0.0/8\n\tPasswordAuthentication yes\n\tPermitRootLogin yes\n', dir);
    assert.deepEqual(weak, { passwordAuth: true, rootLogin: 'yes', ports: [22] }, 'a Match block that allows passwords or root allows them for someone');
    assert.deepEqual(await parseSshdConfig('', dir), { passwordAuth: true, rootLogin: 'prohibit-password', ports: [22] }, 'OpenSSH defaults');
  });

  it('names serial consoles of the kernel command line, not virtual terminals', () => {
    assert.deepEqual(serialConsoles('BOOT_IMAGE=/vmlinuz root=/dev/sda1 console=tty0 console=ttyS0,115200n8 console=ttyAMA0 quiet console=null'), ['ttyS0', 'ttyAMA0']);
    assert.deepEqual(serialConsoles('root=/dev/mmcblk0p2 console=tty1 quiet'), []);
  });
});

describe('LinuxPostureProbe', () => {
  it('reports debug ports, SSH settings and the serial console from fixture files', async (t) => {
    const dir = fixtures(t, { 'net/tcp': TCP, 'net/tcp6': TCP6, 'net/udp': UDP, sshd_config: 'PasswordAuthentication yes\nPermitRootLogin yes\n', cmdline: 'root=/dev/sda1 console=ttyS0,115200\n' });
    const paths = { procNet: join(dir, 'net'), sshdConfig: join(dir, 'sshd_config'), cmdline: join(dir, 'cmdline') };
    const p = await new LinuxPostureProbe({ paths, littleEndian: true }).probe();
    assert.deepEqual(
      p.debugPorts?.map((d) => `${d.service} ${d.proto}/${d.port} ${d.address}`),
      ['adb tcp/5555 0.0.0.0', 'gdbserver tcp/2345 127.0.0.1', 'telnet tcp/23 ::ffff:7f00:1'],
    );
    assert.deepEqual(p.ssh, { enabled: true, passwordAuth: true, rootLogin: 'yes' });
    assert.deepEqual(p.serialConsole, { enabled: true, consoles: ['ttyS0'] });
    assert.equal(p.listeningTotal, 7);
    assert.deepEqual(
      p.listening?.slice(0, 3).map((s) => s.port),
      [23, 2345, 5555],
      'debug ports listed first',
    );
    assert.ok(isMessage(HealthReport, { ts: 1, boot: 'b', uptimeS: 1, posture: p }));

    const strict = await new LinuxPostureProbe({ paths, littleEndian: true, sshAllowed: false }).probe();
    assert.ok(
      strict.debugPorts?.some((d) => d.service === 'ssh' && d.port === 22 && d.address === '::'),
      'SSH is a debug port where the policy says it is off',
    );
  });

  it('leaves out what it cannot read, and guesses nothing', async (t) => {
    const dir = fixtures(t, {});
    const p = await new LinuxPostureProbe({ paths: { procNet: join(dir, 'none'), sshdConfig: join(dir, 'none'), cmdline: join(dir, 'none') } }).probe();
    assert.deepEqual(p, {});
  });

  it('sees a real socket listening on this machine (the real /proc)', { skip: process.platform !== 'linux' }, async (t) => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => server.close());
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    t.after(() => udp.close());
    const tcpPort = (server.address() as { port: number }).port;
    const udpPort = udp.address().port;
    const dir = fixtures(t, { cmdline: 'console=tty0' });
    const p = await new LinuxPostureProbe({ debugPorts: { [tcpPort]: 'test-debug', [udpPort]: 'test-debug' }, paths: { sshdConfig: join(dir, 'none'), cmdline: join(dir, 'cmdline') } }).probe();
    assert.ok(
      p.debugPorts?.some((d) => d.proto === 'tcp' && d.port === tcpPort && d.address === '127.0.0.1'),
      JSON.stringify(p.debugPorts),
    );
    assert.ok(
      p.debugPorts?.some((d) => d.proto === 'udp' && d.port === udpPort && d.address === '127.0.0.1'),
      JSON.stringify(p.debugPorts),
    );
    assert.deepEqual(p.serialConsole, { enabled: false });
  });
});

describe('posture in the health report', () => {
  const base: HealthReport = { ts: 1, boot: 'b', uptimeS: 1 };

  it('leaves the posture out, and says why, when the probe throws, hangs or answers outside the contract', async () => {
    const logged: Record<string, unknown>[] = [];
    const log = (msg: string, data: Record<string, unknown>) => logged.push({ msg, ...data });
    assert.equal(await runProbe({ probe: () => Promise.reject(new Error('EACCES')) }, log), undefined);
    assert.equal(await runProbe({ probe: () => new Promise(() => undefined) }, log, 20), undefined);
    assert.equal(await runProbe({ probe: async () => ({ listening: [{ proto: 'tcp', port: 99_999, address: '::' }] }) as never }, log), undefined);
    assert.match(String(logged[0]?.err), /EACCES/);
    assert.match(String(logged[1]?.err), /no answer in 20 ms/);
    assert.equal(logged[2]?.path, '/listening/0/port');
    assert.deepEqual(await runProbe({ probe: async () => ({ debugPorts: [] }) }, log), { debugPorts: [] });
  });

  it('cuts the listed sockets to stay within the report size bound, keeps the debug ports and the count', () => {
    const listening = Array.from({ length: 24 }, (_, i) => ({ proto: 'tcp' as const, port: 40_000 + i, address: `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.${i}` }));
    const debugPorts = Array.from({ length: 16 }, (_, i) => ({ proto: 'tcp' as const, port: 3000 + i, address: `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.${i}`, service: 's'.repeat(32) }));
    const full: HealthReport = { ...base, restartReason: 'r'.repeat(256), firmware: { version: 'v'.repeat(64), securityVersion: 1 }, cpuLoad1: 0.25, memUsedBytes: 1e9, memTotalBytes: 2e9, diskFreeBytes: 1e10 };
    const r = withPosture(full, { listening, listeningTotal: 300, debugPorts }, { slot: 'a', verified: false, reason: 'image_hash_mismatch', detail: 'd'.repeat(256) });
    assert.ok(Buffer.byteLength(JSON.stringify(r)) <= DEVICE_MESSAGE_LIMITS.healthMaxBytes);
    assert.ok((r.posture?.listening?.length ?? 0) < 24);
    assert.equal(r.posture?.debugPorts?.length, 16);
    assert.equal(r.posture?.listeningTotal, 300);
    assert.ok(isMessage(HealthReport, r));
    assert.deepEqual(withPosture(base, undefined, undefined), base, 'no posture at all: the report as before');
  });

  it('sends the report without boot when the boot check is not done in time, and the next report carries it', { timeout: 3000 }, async () => {
    const logged: string[] = [];
    const log: AgentLogger = { log: (_l, msg) => logged.push(msg), debug: () => undefined, info: () => undefined, warn: (msg) => logged.push(msg), error: (msg) => logged.push(msg) };
    const posture = new AgentPosture({ probe: async () => ({ debugPorts: [] }) }, log, 20);
    let done: (b: { slot: 'a'; verified: true }) => void = () => undefined;
    posture.checkBoot(
      () =>
        new Promise((resolve) => {
          done = resolve;
        }),
    );
    assert.deepEqual(await posture.add(base), { ...base, posture: { debugPorts: [] } }, 'a stalled flash read costs the boot part, never the report');
    assert.match(logged.join('\n'), /boot check.*20 ms/);
    done({ slot: 'a', verified: true });
    assert.deepEqual(await posture.add(base), { ...base, posture: { debugPorts: [], boot: { slot: 'a', verified: true } } });
  });

  it('shares one probe run between the agents of a process for a while', async () => {
    let runs = 0;
    let now = 0;
    const shared = new SharedPostureProbe({ probe: async () => ({ listeningTotal: ++runs }) }, 1000, () => now);
    assert.deepEqual(await Promise.all([shared.probe(), shared.probe()]), [{ listeningTotal: 1 }, { listeningTotal: 1 }]);
    now = 1000;
    assert.deepEqual(await shared.probe(), { listeningTotal: 2 });
  });
});
