import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PlatformError } from '@bulwark/core';
import { writeSecretFile } from '../secret-file.js';

export const NODE_ID_FILE = 'node-id';
const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * This node's id: the configured one, else the one kept in the data directory, else a new
 * one (host name and a random suffix) written there so that it survives restarts.
 */
export function loadOrCreateNodeId(dataDir: string, configured?: string): string {
  if (configured !== undefined) return configured;
  const path = join(dataDir, NODE_ID_FILE);
  if (existsSync(path)) {
    const id = readFileSync(path, 'utf8').trim();
    if (!NODE_ID.test(id)) throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `${path} does not hold a node id (1-64 letters, digits, "-" or "_"); fix or delete it`);
    return id;
  }
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_-]/g, '-')
      .slice(0, 40) || 'node';
  const id = `${host}-${randomBytes(4).toString('hex')}`;
  writeSecretFile(path, `${id}\n`);
  return id;
}
