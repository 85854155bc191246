import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { type Clock, PlatformError, randomIds, systemClock } from '@bulwark/core';
import { AccessService, type Principal, fixedTokenKey } from './access/index.js';
import { AuditService } from './audit/index.js';
import type { ServerConfig } from './config/index.js';
import { writeSecretFile } from './secret-file.js';
import { openStore, parseStoreUrl } from './store/index.js';

export interface RecoveryOptions {
  /** The admin user to re-enable (created with the admin role when missing). */
  readonly name: string;
  /** Where to write the new key; default: a new file in the data directory. */
  readonly keyFile?: string;
  readonly clock?: Clock;
  /** PostgreSQL schema (tests isolate themselves this way). */
  readonly pgSchema?: string;
}

export interface RecoveryReport {
  readonly principal: Principal;
  readonly keyId: string;
  readonly keyFile: string;
  readonly created: boolean;
  readonly reenabled: boolean;
}

/**
 * Break-glass recovery of the admin, run on the server's machine against the store itself
 * (`bulwark users recover`): whoever can read the data directory or connect to the database
 * holds everything already, so that access is the proof. It re-enables (or creates) the
 * admin user, writes a new admin key to a 0600 file and records `user.recover` by
 * `system:break-glass` in the audit chain. It works while a server is running on the store.
 */
export async function recoverAdmin(config: ServerConfig, options: RecoveryOptions): Promise<RecoveryReport> {
  const clock = options.clock ?? systemClock;
  const dataDir = resolve(config.dataDir);
  const target = parseStoreUrl(config.store, dataDir);
  if (target.engine === 'sqlite' && !existsSync(target.location)) {
    throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no Bulwark store at ${target.location}: name the data directory the server runs with (--data DIR), or its --store URL`);
  }
  const keyFile = resolve(options.keyFile ?? join(dataDir, `admin-recovery-${new Date(clock.now()).toISOString().replace(/[:.]/g, '-')}.key`));
  if (existsSync(keyFile)) throw new PlatformError('BULWARK_ERR_CONFLICT', `${keyFile} already exists; it is never overwritten`);
  const store = await openStore(options.pgSchema === undefined ? target : { ...target, schema: options.pgSchema }, clock);
  try {
    // No token is issued here: the signing key is never needed, so the vault stays closed.
    const access = new AccessService({ principals: store.principals, apiKeys: store.apiKeys, clock, ids: randomIds, tokenKeys: fixedTokenKey(randomBytes(32)), accessTokenTtlMs: 60_000 });
    const recovered = await access.recoverAdmin(options.name);
    try {
      writeSecretFile(keyFile, `${recovered.keyText}\n`);
    } catch (err) {
      await access.revokeKey(recovered.keyId).catch(() => undefined);
      throw err;
    }
    let operator = 'unknown';
    try {
      operator = userInfo().username;
    } catch {
      // No passwd entry for this uid (containers): the audit entry says unknown.
    }
    await new AuditService(store.audit, clock).record({
      actor: 'system:break-glass',
      action: 'user.recover',
      target: recovered.principal.id,
      result: 'ok',
      requestId: null,
      source: hostname(),
      details: { name: options.name, keyId: recovered.keyId, created: recovered.created, reenabled: recovered.reenabled, osUser: operator },
    });
    return { principal: recovered.principal, keyId: recovered.keyId, keyFile, created: recovered.created, reenabled: recovered.reenabled };
  } finally {
    await store.close();
  }
}
