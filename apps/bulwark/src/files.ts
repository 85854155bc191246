import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, EXIT } from './errors.js';

/** Files the device commands write: private keys 0600, certificates and CRLs 0644. */

/** The files of one device identity in a directory, as `devices enroll` and `certs rotate` write them. */
export const identityFiles = (dir: string) => ({ key: join(dir, 'device.key'), cert: join(dir, 'device.crt'), ca: join(dir, 'ca.crt') });

/** Creates the directory (0700 when new) and refuses to overwrite a device key already in it. */
export function prepareNewIdentityDir(dir: string, force: boolean): void {
  const files = identityFiles(dir);
  if (!force && existsSync(files.key)) {
    throw new CliError('BULWARK_CLI_USAGE', `${files.key} already exists: choose another --out directory, or pass --force to replace that identity`, EXIT.usage);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Writes a private key: the file is created 0600 and never exists with wider rights. */
export function writeKeyFile(path: string, pem: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, pem, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new CliError('BULWARK_CLI_FILE', `cannot write ${path}: ${(err as Error).message}`);
  }
}

/** Writes a public file (certificate, CA chain, CRL). */
export function writePublicFile(path: string, text: string): void {
  try {
    writeFileSync(path, text.endsWith('\n') ? text : `${text}\n`, { mode: 0o644 });
  } catch (err) {
    throw new CliError('BULWARK_CLI_FILE', `cannot write ${path}: ${(err as Error).message}`);
  }
}
