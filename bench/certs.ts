import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pool } from './proc.js';

/** A throw-away PKI made with the openssl command line, for the pass-through brokers. */

const run = promisify(execFile);

export interface Credentials {
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
}

export interface Pki {
  readonly dir: string;
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** Client certificates (P-256), one per load device. */
  readonly clients: readonly Credentials[];
  /** A separate certificate for the live subscriber. */
  readonly subscriber: Credentials;
}

const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
const serial = () => `0x${Math.floor(Math.random() * 2 ** 48).toString(16)}${Date.now().toString(16)}`;

async function leaf(dir: string, name: string, ext: string): Promise<{ keyFile: string; certFile: string }> {
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.pem`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, ext);
  await run('openssl', ['req', ...P256, '-keyout', keyFile, '-out', csrFile, '-subj', `/CN=${name}`]);
  await run('openssl', ['x509', '-req', '-in', csrFile, '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-set_serial', serial(), '-days', '2', '-sha256', '-out', certFile, '-extfile', extFile]);
  return { keyFile, certFile };
}

/** Makes a CA, a server certificate for 127.0.0.1/localhost and `clients` client certificates, in `dir`. */
export async function makePki(dir: string, clients: number): Promise<Pki> {
  await run('openssl', ['req', '-x509', ...P256, '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-days', '2', '-subj', '/CN=bench-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const server = await leaf(dir, 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n');
  const ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
  const clientExt = 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n';
  const names = [...Array.from({ length: clients }, (_, i) => deviceId(i)), 'bench-subscriber'];
  const made = await pool(names, 8, async (name) => {
    const { keyFile, certFile } = await leaf(dir, name, clientExt);
    return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), ca };
  });
  // Mosquitto started as root drops to the mosquitto user, which must be able to read these (a throw-away temp dir).
  chmodSync(dir, 0o755);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
  return { dir, caFile: join(dir, 'ca.pem'), serverCertFile: server.certFile, serverKeyFile: server.keyFile, clients: made.slice(0, clients), subscriber: made[clients] as Credentials };
}

/** The id of load device `i` (the same names on every broker). */
export const deviceId = (i: number): string => `bench-d${String(i).padStart(4, '0')}`;
/** The id of idle session `i`. */
export const sessionId = (i: number): string => `bench-s${String(i).padStart(5, '0')}`;
