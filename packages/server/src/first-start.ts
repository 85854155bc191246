import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PlatformError } from '@bulwark/core';

/** The file in the data directory that receives the admin key generated on the first start. */
export const ADMIN_KEY_FILE = 'admin.key';

/**
 * Writes an admin key to `<dataDir>/admin.key` so that it never passes through standard
 * output (and from there into log files). The file is born 0600: a temporary file is
 * created exclusively with that mode (`wx` refuses an existing file or a symlink), written,
 * flushed, and renamed into place, then the directory is flushed; a crash leaves either no
 * file or the whole key, never a partial one or a wider mode. Returns the path.
 */
export function writeAdminKeyFile(dataDir: string, keyText: string): string {
  const path = join(dataDir, ADMIN_KEY_FILE);
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fd = openSync(temp, 'wx', 0o600);
    try {
      writeSync(fd, `${keyText}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  const dir = openSync(dataDir, 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
  return path;
}

/**
 * The first start's admin key to its file. The admin user already exists when this runs, so
 * a failure here (a full disk) is explained with the way back: break-glass recovery.
 */
export function saveAdminKey(dataDir: string, keyText: string): string {
  try {
    return writeAdminKeyFile(dataDir, keyText);
  } catch (err) {
    throw new PlatformError('BULWARK_ERR_INTERNAL',
      `the admin user was created but its key could not be written to ${join(dataDir, ADMIN_KEY_FILE)} (${(err as Error).message}); `
      + `fix the cause, then run "bulwark users recover --data ${dataDir}" for a new admin key`, { cause: err });
  }
}
