import { join } from 'node:path';
import { PlatformError } from '@bulwark/core';
import { writeSecretFile } from './secret-file.js';

/** The file in the data directory that receives the admin key generated on the first start. */
export const ADMIN_KEY_FILE = 'admin.key';

/** Writes an admin key to `<dataDir>/admin.key` (0600, see writeSecretFile), so that it never passes through standard output into log files. Returns the path. */
export function writeAdminKeyFile(dataDir: string, keyText: string): string {
  const path = join(dataDir, ADMIN_KEY_FILE);
  writeSecretFile(path, `${keyText}\n`);
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
    throw new PlatformError(
      'BULWARK_ERR_INTERNAL',
      `the admin user was created but its key could not be written to ${join(dataDir, ADMIN_KEY_FILE)} (${(err as Error).message}); ` + `fix the cause, then run "bulwark users recover --data ${dataDir}" for a new admin key`,
      { cause: err },
    );
  }
}
