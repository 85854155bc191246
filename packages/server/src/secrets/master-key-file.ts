import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Logger, PlatformError } from '@bulwark/core';
import { KEY_BYTES, keyFingerprint } from './envelope.js';

/**
 * The master key on disk: 32 random bytes, base64, in a file only its owner can read.
 * Rotation writes the new key beside the old one (`<path>.next`) before the store is
 * re-wrapped, and renames it into place after; a crash in between leaves both keys on disk
 * and the next start finishes (or forgets) the rotation by looking at which key the stored
 * data keys name. No step can leave the store wrapped by a key that exists nowhere.
 */
export function parseMasterKey(text: string, origin: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (key.length !== KEY_BYTES) {
    throw new PlatformError('BULWARK_ERR_MASTER_KEY_INVALID', `${origin} must hold 32 bytes as base64 or 64 hex characters`);
  }
  return key;
}

export function newMasterKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** Writes a key file with mode 0600, flushed to disk. Refuses to replace an existing file. */
export function writeKeyFile(path: string, key: Buffer): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, `${key.toString('base64')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  syncDir(dirname(path));
}

export function readKeyFile(path: string): Buffer | undefined {
  if (!existsSync(path)) return undefined;
  return parseMasterKey(readFileSync(path, 'utf8'), path);
}

export const nextPath = (path: string) => `${path}.next`;

/** Makes the pending key the current one (atomic rename) and flushes the directory. */
export function promoteNextKey(path: string): void {
  renameSync(nextPath(path), path);
  syncDir(dirname(path));
}

export function discardNextKey(path: string): void {
  rmSync(nextPath(path), { force: true });
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The key file for a store whose data keys name the master keys `named` (empty: a new
 * store). Creates the file on first start; after an interrupted rotation, keeps the key the
 * store names and promotes or discards `<path>.next` accordingly.
 */
export function openKeyFile(path: string, named: ReadonlySet<string>, log: Logger): { key: Buffer; created: boolean } {
  const candidates = [readKeyFile(path), readKeyFile(nextPath(path))].filter((k): k is Buffer => k !== undefined);
  let created = false;
  if (candidates.length === 0) {
    const key = newMasterKey();
    writeKeyFile(path, key);
    created = true;
    log.info({ path }, 'created a new master key');
    candidates.push(key);
  }
  const current = candidates.find((c) => named.has(keyFingerprint(c))) ?? (named.size === 0 ? candidates[0] : undefined);
  if (!current) {
    throw new PlatformError('BULWARK_ERR_MASTER_KEY_INVALID', `the master key does not match the store: data keys are wrapped by ${[...named].join(', ')}, the key on hand is ${candidates.map(keyFingerprint).join(', ')}`);
  }
  finishInterruptedRotation(path, keyFingerprint(current), log);
  return { key: current, created };
}

function finishInterruptedRotation(path: string, inUseId: string, log: Logger): void {
  if (!existsSync(nextPath(path))) return;
  const pending = readKeyFile(nextPath(path));
  if (pending && keyFingerprint(pending) === inUseId) {
    promoteNextKey(path);
    log.warn({ masterKeyId: inUseId }, 'finished a master-key rotation that was interrupted after the store was re-wrapped');
  } else {
    discardNextKey(path);
    log.warn({}, 'discarded a master key from a rotation that was interrupted before the store was re-wrapped');
  }
}
