import { X509Certificate, createPublicKey } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { newKeyAndCsr } from './crypto.js';

/**
 * The device identity on disk, in the layout of `bulwark devices enroll --out DIR`:
 * device.key (PKCS#8 PEM, mode 0600), device.crt, ca.crt. A renewal writes device.next.key
 * before asking for a certificate and swaps both files in only when the new certificate
 * arrived, so a crash at any point leaves a working pair.
 */

export interface Identity {
  readonly keyPem: string;
  readonly certPem: string;
  readonly caPem: string;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

export const identityFiles = (dir: string) => ({
  key: join(dir, 'device.key'),
  cert: join(dir, 'device.crt'),
  ca: join(dir, 'ca.crt'),
  nextKey: join(dir, 'device.next.key'),
  nextCert: join(dir, 'device.next.crt'),
});

/** Writes a file atomically (temporary file, fsync, rename) with the given mode. */
export function writeFileDurable(path: string, data: string, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  // The rename is durable only once the directory entry is.
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/**
 * writeFileDurable off the event loop (the fsyncs in libuv's pool): for state that many
 * agents of one process write at once, where 10,000 synchronous fsyncs would stall every
 * device's connection for seconds. Callers serialise writes to one path.
 */
export async function writeFileDurableAsync(path: string, data: string, mode = 0o644): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const file = await open(tmp, 'w', mode);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export function describeCert(certPem: string): { serial: string; notBefore: number; notAfter: number; publicKeyDer: Buffer } {
  const c = new X509Certificate(certPem);
  return { serial: c.serialNumber.toLowerCase(), notBefore: Date.parse(c.validFrom), notAfter: Date.parse(c.validTo), publicKeyDer: c.publicKey.export({ type: 'spki', format: 'der' }) };
}

const sameKey = (keyPem: string, certPem: string) => createPublicKey(keyPem).export({ type: 'spki', format: 'der' }).equals(describeCert(certPem).publicKeyDer);

/** Finishes a renewal interrupted between its two renames; forgets one that never got its certificate. */
function recover(dir: string): void {
  const f = identityFiles(dir);
  if (existsSync(f.nextKey) && existsSync(f.nextCert)) {
    renameSync(f.nextKey, f.key);
    renameSync(f.nextCert, f.cert);
  } else if (existsSync(f.cert) && existsSync(f.nextKey) && !existsSync(f.key)) {
    renameSync(f.nextKey, f.key);
  }
}

export function loadIdentity(dir: string): Identity | undefined {
  recover(dir);
  const f = identityFiles(dir);
  if (!existsSync(f.cert) || !existsSync(f.key)) return undefined;
  const keyPem = readFileSync(f.key, 'utf8');
  const certPem = readFileSync(f.cert, 'utf8');
  if (!sameKey(keyPem, certPem)) {
    // device.key was replaced but device.crt not yet: the swap was cut in the middle.
    if (existsSync(f.nextCert)) renameSync(f.nextCert, f.cert);
    else throw new Error(`${f.key} does not match ${f.cert}`);
    return loadIdentity(dir);
  }
  const caPem = existsSync(f.ca) ? readFileSync(f.ca, 'utf8') : '';
  return { keyPem, certPem, caPem, ...describeCert(certPem) };
}

export class EnrollmentError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  constructor(status: number, code: string | undefined, message: string) {
    super(message);
    this.name = 'EnrollmentError';
    this.status = status;
    this.code = code;
  }
}

/** `POST {enrollUrl}/api/v1/enroll` with a claim token and a CSR; returns the certificate and CA chain. */
export async function enrollCsr(enrollUrl: string, token: string, csrPem: string): Promise<{ certificate: string; caChain: string }> {
  const res = await fetch(new URL('/api/v1/enroll', enrollUrl), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, csr: csrPem }) });
  const body = (await res.json().catch(() => ({}))) as { certificate?: string; caChain?: string; error?: { code?: string; message?: string } };
  if (res.status !== 201 || !body.certificate || !body.caChain) {
    throw new EnrollmentError(res.status, body.error?.code, `enrollment refused (HTTP ${res.status}): ${body.error?.code ?? ''} ${body.error?.message ?? ''}`.trim());
  }
  return { certificate: body.certificate, caChain: body.caChain };
}

/** Makes a key on the device, enrolls it with the claim token and stores key, certificate and CA chain. */
export async function enrollWithFiles(dir: string, deviceId: string, enrollUrl: string, token: string): Promise<Identity> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = identityFiles(dir);
  const { keyPem, csrPem } = await newKeyAndCsr(deviceId);
  writeFileDurable(f.nextKey, keyPem, 0o600);
  const issued = await enrollCsr(enrollUrl, token, csrPem);
  writeFileDurable(f.ca, issued.caChain);
  writeFileDurable(f.cert, issued.certificate);
  renameSync(f.nextKey, f.key);
  const id = loadIdentity(dir);
  if (!id) throw new Error('enrollment stored no identity');
  return id;
}

/** When a certificate should be renewed: after `fraction` of its lifetime. */
export const renewAt = (id: Pick<Identity, 'notBefore' | 'notAfter'>, fraction: number) => id.notBefore + fraction * (id.notAfter - id.notBefore);

/** Step 1 of a renewal: a new key, kept beside the current one until its certificate arrives. */
export async function prepareRenewal(dir: string, deviceId: string): Promise<string> {
  const { keyPem, csrPem } = await newKeyAndCsr(deviceId);
  writeFileDurable(identityFiles(dir).nextKey, keyPem, 0o600);
  return csrPem;
}

/** Step 2: the certificate for the new key arrived; swap both in. */
export function commitRenewal(dir: string, certPem: string, caPem: string | undefined): Identity {
  const f = identityFiles(dir);
  if (!existsSync(f.nextKey) || !sameKey(readFileSync(f.nextKey, 'utf8'), certPem)) throw new Error('the renewed certificate does not match the pending key');
  writeFileDurable(f.nextCert, certPem);
  if (caPem) writeFileDurable(f.ca, caPem);
  renameSync(f.nextKey, f.key);
  renameSync(f.nextCert, f.cert);
  rmSync(f.nextCert, { force: true });
  const id = loadIdentity(dir);
  if (!id) throw new Error('renewal stored no identity');
  return id;
}
