import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';

/**
 * Test-only: a private Mosquitto with a TLS listener that requires client certificates,
 * on a free port (never 1883), with a CA and certificates made by openssl.
 */
const openssl = (cwd: string, ...args: string[]) => execFileSync('openssl', args, { cwd, stdio: 'pipe' });

export function makeCa(dir: string): void {
  openssl(dir, 'ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', 'ca.key');
  openssl(dir, 'req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=Interop Test CA', '-days', '2', '-out', 'ca.crt');
}

/** Issues `name.key` / `name.crt` signed by the CA in `dir`. */
export function issue(dir: string, name: string, cn: string, san?: string): void {
  openssl(dir, 'ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', `${name}.key`);
  openssl(dir, 'req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, san ? `subjectAltName=${san}\n` : 'extendedKeyUsage=clientAuth\n');
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', ext, '-out', `${name}.crt`);
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function startMosquitto(dir: string): Promise<{ port: number; child: ChildProcess; stop: () => Promise<void> }> {
  makeCa(dir);
  issue(dir, 'server', 'localhost', 'DNS:localhost,IP:127.0.0.1');
  const port = await freePort();
  writeFileSync(
    join(dir, 'mosquitto.conf'),
    [
      // Run as the current user: Mosquitto started as root would drop to `mosquitto`, who cannot read the test directory.
      `user ${userInfo().username}`,
      `listener ${port} 127.0.0.1`,
      'persistence false',
      'allow_anonymous false',
      'require_certificate true',
      'use_identity_as_username true',
      `cafile ${join(dir, 'ca.crt')}`,
      `certfile ${join(dir, 'server.crt')}`,
      `keyfile ${join(dir, 'server.key')}`,
      'tls_version tlsv1.2',
      '',
    ].join('\n'),
  );
  const child = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`mosquitto did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
