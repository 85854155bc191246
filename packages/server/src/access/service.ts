import { type Clock, type IdGen, PlatformError } from '@bulwark/core';
import type { EventBus } from '../bus/index.js';
import type { ApiKey, ApiKeyRecord, ApiKeyRepository, AuthContext, Principal, PrincipalKind, PrincipalRepository } from './access.js';
import { formatApiKey, hashSecret, newKeySecret, parseApiKey, verifySecret } from './key-secrets.js';
import { type Grant, ROLE_SCOPES, type Role, covers, effectiveScopes } from './scopes.js';
import { StreamTickets, type TicketBook } from './stream-tickets.js';
import type { TokenKeys } from './token-keys.js';
import { issueToken, verifyToken } from './tokens.js';

export interface AccessDeps {
  readonly principals: PrincipalRepository;
  readonly apiKeys: ApiKeyRepository;
  readonly clock: Clock;
  readonly ids: IdGen;
  /** HMAC key for access tokens, from the secret vault. */
  /** The token-signing keys (a ring that rotates; fixedTokenKey for tools that never do). */
  readonly tokenKeys: TokenKeys;
  readonly accessTokenTtlMs: number;
  /** How key secrets are hashed and checked; default scrypt (key-secrets.ts). */
  readonly secrets?: SecretHasher;
  /** Where `credentials.revoked` goes when a principal is disabled or a key revoked (every node hears it). */
  readonly events?: EventBus;
  /** Where stream tickets live; default this process (cluster mode shares them). */
  readonly tickets?: TicketBook;
}

export interface SecretHasher {
  hash(secret: string): Promise<string>;
  verify(secret: string, stored: string): Promise<boolean>;
}

const scryptSecrets: SecretHasher = { hash: hashSecret, verify: verifySecret };

export interface NewPrincipal {
  readonly kind: PrincipalKind;
  readonly name: string;
  readonly role?: Role;
  readonly scopes?: readonly Grant[];
  /** Limit to these device groups (checked to exist by the caller). */
  readonly deviceGroups?: readonly string[];
}

export interface NewKey {
  readonly name: string;
  readonly scopes?: readonly Grant[];
  readonly expiresAtMs?: number;
}

export interface IssuedToken {
  readonly accessToken: string;
  readonly expiresAt: number;
  readonly principal: Principal;
  readonly keyId: string;
}

const publicKey = ({ secretHash: _hash, ...key }: ApiKeyRecord): ApiKey => key;

/**
 * A credential whose secret or signature checked out but whose key is revoked or expired,
 * or whose principal is disabled. The caller sees the same 401 as for any bad credential;
 * the audit log names the principal (the credential proved who it was).
 */
export class RevokedCredentialError extends PlatformError {
  constructor(
    code: 'BULWARK_ERR_INVALID_CREDENTIALS' | 'BULWARK_ERR_TOKEN_INVALID',
    message: string,
    readonly principalId: string,
  ) {
    super(code, message);
  }
}

const isEnabledAdmin = (p: Principal) => p.kind === 'user' && p.role === 'admin' && p.disabledAt === null;

/** Users, service accounts, API keys and access tokens. */
export class AccessService {
  readonly #tickets: TicketBook;
  /**
   * Checked against when a key id is unknown, so that a wrong secret costs one scrypt
   * whether or not its key id exists (the id is no secret: it is in every token).
   */
  #decoyHash: Promise<string> | undefined;
  /** Enabling and disabling run one at a time: two admins disabling each other cannot both pass the last-admin check. */
  #standingChanges: Promise<unknown> = Promise.resolve();

  readonly #secrets: SecretHasher;

  constructor(private readonly deps: AccessDeps) {
    this.#tickets = deps.tickets ?? new StreamTickets(deps.clock);
    this.#secrets = deps.secrets ?? scryptSecrets;
  }

  async createPrincipal(input: NewPrincipal): Promise<Principal> {
    const { kind, name } = input;
    if (kind === 'user' && (input.role === undefined || input.scopes !== undefined)) {
      throw new PlatformError('BULWARK_ERR_BAD_REQUEST', 'a user has a role (admin, operator or viewer) and no explicit scopes');
    }
    if (kind === 'service' && (input.role !== undefined || input.scopes === undefined || input.scopes.length === 0)) {
      throw new PlatformError('BULWARK_ERR_BAD_REQUEST', 'a service account has explicit scopes and no role');
    }
    if (await this.deps.principals.getByName(name)) {
      throw new PlatformError('BULWARK_ERR_CONFLICT', `a user or service account named "${name}" already exists`);
    }
    const principal: Principal = {
      id: this.deps.ids.next(kind === 'user' ? 'usr' : 'svc'),
      kind,
      name,
      role: input.role ?? null,
      scopes: input.role ? [...ROLE_SCOPES[input.role]] : [...new Set(input.scopes)],
      deviceGroups: input.deviceGroups ? [...new Set(input.deviceGroups)] : null,
      createdAt: this.deps.clock.now(),
      disabledAt: null,
    };
    await this.deps.principals.insert(principal);
    return principal;
  }

  /** Limits a principal to device groups (null: the whole fleet again); applies to tokens already issued. */
  /**
   * Limits a principal to device groups (null: the whole fleet). Serialised with disabling, so
   * two calls cannot together limit every admin: the last enabled admin with the whole fleet
   * stays so (BULWARK_ERR_LAST_ADMIN), or nobody could manage the fleet's groups any more.
   */
  async setDeviceGroups(id: string, groups: readonly string[] | null): Promise<Principal> {
    const change = this.#standingChanges.then(() => this.#setDeviceGroups(id, groups));
    this.#standingChanges = change.catch(() => undefined);
    return change;
  }

  async #setDeviceGroups(id: string, groups: readonly string[] | null): Promise<Principal> {
    const target = await this.getPrincipal(id);
    if (groups !== null && isEnabledAdmin(target) && target.deviceGroups === null) {
      const wholeFleetAdmins = (await this.deps.principals.list()).filter((p) => isEnabledAdmin(p) && p.deviceGroups === null);
      if (wholeFleetAdmins.length <= 1) {
        throw new PlatformError('BULWARK_ERR_LAST_ADMIN', `${target.name} is the last enabled admin with the whole fleet; give another admin the whole fleet first`);
      }
    }
    if (!(await this.deps.principals.setDeviceGroups(id, groups === null ? null : [...new Set(groups)]))) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no user or service account ${id}`);
    return this.getPrincipal(id);
  }

  listPrincipals(): Promise<Principal[]> {
    return this.deps.principals.list();
  }

  async getPrincipal(id: string): Promise<Principal> {
    const p = await this.deps.principals.get(id);
    if (!p) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no user or service account ${id}`);
    return p;
  }

  /**
   * Refuses a caller acting on another principal (disabling, enabling, keys for it) unless
   * the caller holds every scope that principal holds: `users:write` alone cannot lock out,
   * re-enable or mint keys for an admin.
   */
  assertMayActOn(caller: AuthContext, target: Principal, what: string): void {
    if (caller.principal.id === target.id || covers(caller.scopes, target.scopes)) return;
    throw new PlatformError('BULWARK_ERR_FORBIDDEN', `you cannot ${what} ${target.kind === 'user' ? 'a user' : 'a service account'} holding scopes you do not hold yourself`, {
      details: { reason: 'target_outranks_caller' },
    });
  }

  async setDisabled(id: string, disabled: boolean): Promise<Principal> {
    const change = this.#standingChanges.then(() => this.#setDisabled(id, disabled));
    this.#standingChanges = change.catch(() => undefined);
    return change;
  }

  async #setDisabled(id: string, disabled: boolean): Promise<Principal> {
    const target = await this.getPrincipal(id);
    if (disabled && isEnabledAdmin(target)) {
      const admins = (await this.deps.principals.list()).filter(isEnabledAdmin);
      if (admins.length <= 1) {
        throw new PlatformError('BULWARK_ERR_LAST_ADMIN', `${target.name} is the last enabled admin; create or enable another admin first`);
      }
    }
    await this.deps.principals.setDisabled(id, disabled ? this.deps.clock.now() : null);
    if (disabled) await this.deps.events?.publish({ type: 'credentials.revoked', principalId: id, keyId: null, reason: 'principal_disabled' });
    return this.getPrincipal(id);
  }

  /** Creates a key and returns its text, which is never shown again. */
  async createKey(principalId: string, input: NewKey, presetSecret?: { keyId: string; secret: string }): Promise<{ key: ApiKey; text: string }> {
    const principal = await this.getPrincipal(principalId);
    if (input.scopes) {
      const beyond = input.scopes.filter((s) => effectiveScopes(principal.scopes, [s]).length === 0);
      if (beyond.length > 0) {
        throw new PlatformError('BULWARK_ERR_BAD_REQUEST', `a key cannot hold scopes its principal lacks: ${beyond.join(', ')}`);
      }
    }
    if (input.expiresAtMs !== undefined && input.expiresAtMs <= this.deps.clock.now()) {
      throw new PlatformError('BULWARK_ERR_BAD_REQUEST', 'the key would already be expired');
    }
    const keyId = presetSecret?.keyId ?? this.deps.ids.next('key');
    const secret = presetSecret?.secret ?? newKeySecret();
    const record: ApiKeyRecord = {
      id: keyId,
      principalId,
      name: input.name,
      secretHash: await this.#secrets.hash(secret),
      scopes: input.scopes ? [...new Set(input.scopes)] : null,
      createdAt: this.deps.clock.now(),
      expiresAt: input.expiresAtMs ?? null,
      revokedAt: null,
      lastUsedAt: null,
    };
    if (await this.deps.apiKeys.get(keyId)) throw new PlatformError('BULWARK_ERR_CONFLICT', `key ${keyId} already exists`);
    await this.deps.apiKeys.insert(record);
    return { key: publicKey(record), text: formatApiKey(keyId, secret) };
  }

  async listKeys(principalId?: string): Promise<ApiKey[]> {
    const records = principalId ? await this.deps.apiKeys.listByPrincipal(principalId) : await this.deps.apiKeys.list();
    return records.map(publicKey);
  }

  async getKey(id: string): Promise<ApiKey> {
    const k = await this.deps.apiKeys.get(id);
    if (!k) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no API key ${id}`);
    return publicKey(k);
  }

  async revokeKey(id: string): Promise<ApiKey> {
    const key = await this.getKey(id);
    if (key.revokedAt !== null) throw new PlatformError('BULWARK_ERR_CONFLICT', `key ${id} is already revoked`);
    await this.deps.apiKeys.revoke(id, this.deps.clock.now());
    await this.deps.events?.publish({ type: 'credentials.revoked', principalId: key.principalId, keyId: id, reason: 'key_revoked' });
    return this.getKey(id);
  }

  /** The key id named in a key's text, without checking anything; for lock-out accounting. */
  keyIdOf(text: string): string | undefined {
    return parseApiKey(text)?.keyId;
  }

  /** Exchanges an API key for a short-lived access token. Every failure looks the same to the caller. */
  async exchange(text: string): Promise<IssuedToken> {
    const invalid = () => new PlatformError('BULWARK_ERR_INVALID_CREDENTIALS', 'the API key is not valid');
    const parsed = parseApiKey(text);
    if (!parsed) throw invalid();
    const record = await this.deps.apiKeys.get(parsed.keyId);
    if (!record) {
      await this.#secrets.verify(parsed.secret, await this.#decoy());
      throw invalid();
    }
    if (!(await this.#secrets.verify(parsed.secret, record.secretHash))) throw invalid();
    const now = this.deps.clock.now();
    const principal = await this.deps.principals.get(record.principalId);
    if (!principal) throw invalid();
    if (!this.#usable(record, principal, now)) throw new RevokedCredentialError('BULWARK_ERR_INVALID_CREDENTIALS', 'the API key is not valid', principal.id);
    await this.deps.apiKeys.touch(record.id, now);
    const expiresAt = now + this.deps.accessTokenTtlMs;
    const signing = await this.deps.tokenKeys.signing();
    const accessToken = issueToken(signing.key, {
      v: 1,
      sub: principal.id,
      kid: record.id,
      scp: effectiveScopes(principal.scopes, record.scopes),
      iat: now,
      exp: expiresAt,
      tk: signing.id,
    });
    return { accessToken, expiresAt, principal, keyId: record.id };
  }

  /** Verifies an access token and re-checks that its key and principal are still in good standing. */
  async authenticate(token: string): Promise<AuthContext> {
    const now = this.deps.clock.now();
    const claims = await verifyToken((id) => this.deps.tokenKeys.verifying(id), token, now);
    const [record, principal] = await Promise.all([this.deps.apiKeys.get(claims.kid), this.deps.principals.get(claims.sub)]);
    if (!record || !principal || record.principalId !== principal.id) {
      throw new PlatformError('BULWARK_ERR_TOKEN_INVALID', 'the key or principal behind this token is no longer valid');
    }
    if (!this.#usable(record, principal, now)) {
      throw new RevokedCredentialError('BULWARK_ERR_TOKEN_INVALID', 'the key or principal behind this token is no longer valid', principal.id);
    }
    // Scopes are re-derived, so a principal's narrowed rights apply to tokens already issued.
    return { principal, keyId: record.id, scopes: effectiveScopes(principal.scopes, record.scopes).filter((s) => claims.scp.includes(s)), tokenExpiresAt: claims.exp };
  }

  /** A single-use ticket that opens one live stream as the holder of this (verified) access token. */
  async issueStreamTicket(accessToken: string): Promise<{ ticket: string; expiresAt: number }> {
    await this.authenticate(accessToken);
    return this.#tickets.issue(accessToken);
  }

  /** Spends a stream ticket on `route` and authenticates as the token it was issued for. */
  async redeemStreamTicket(ticket: string, route: string | undefined): Promise<AuthContext> {
    return this.authenticate(await this.#tickets.redeem(ticket, route));
  }

  /** Whether the key and principal behind an authenticated caller are still in good standing (live streams re-check this). */
  async stillValid(auth: AuthContext): Promise<boolean> {
    const [record, principal] = await Promise.all([this.deps.apiKeys.get(auth.keyId), this.deps.principals.get(auth.principal.id)]);
    return record !== undefined && principal !== undefined && this.#usable(record, principal, this.deps.clock.now());
  }

  #decoy(): Promise<string> {
    this.#decoyHash ??= this.#secrets.hash(newKeySecret());
    return this.#decoyHash;
  }

  #usable(key: ApiKeyRecord, principal: Principal, now: number): boolean {
    return key.revokedAt === null && (key.expiresAt === null || key.expiresAt > now) && principal.disabledAt === null;
  }

  /**
   * Break-glass, for the operator on the server's machine only (never reachable over the
   * API): makes sure the admin user `name` exists and is enabled, and gives it a new key.
   */
  async recoverAdmin(name: string): Promise<{ principal: Principal; keyText: string; keyId: string; created: boolean; reenabled: boolean }> {
    let principal = await this.deps.principals.getByName(name);
    const created = principal === undefined;
    if (principal === undefined) principal = await this.createPrincipal({ kind: 'user', name, role: 'admin' });
    if (principal.kind !== 'user' || principal.role !== 'admin') {
      throw new PlatformError('BULWARK_ERR_BAD_REQUEST', `${name} is not an admin user; name an admin user, or a new name to create one`);
    }
    const reenabled = principal.disabledAt !== null;
    if (reenabled) await this.deps.principals.setDisabled(principal.id, null);
    const stamp = new Date(this.deps.clock.now()).toISOString().replace(/[:.]/g, '-');
    const { key, text } = await this.createKey(principal.id, { name: `break-glass-${stamp}` });
    return { principal: await this.getPrincipal(principal.id), keyText: text, keyId: key.id, created, reenabled };
  }

  /**
   * On a store with no principals, creates the `admin` user and its first key. With a preset
   * key text (BULWARK_BOOTSTRAP_ADMIN_KEY) that text becomes the key. Returns undefined when
   * the store already has principals: an existing installation is never touched.
   */
  async bootstrap(presetKeyText?: string): Promise<{ principal: Principal; keyText: string } | undefined> {
    if ((await this.deps.principals.count()) > 0) return undefined;
    let preset: { keyId: string; secret: string } | undefined;
    if (presetKeyText !== undefined) {
      preset = parseApiKey(presetKeyText);
      if (!preset) {
        throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', 'BULWARK_BOOTSTRAP_ADMIN_KEY must look like bwk.<id>.<secret>: id of 4-64 characters a-z, 0-9 or _, secret of 32-128 base64url characters');
      }
    }
    const principal = await this.createPrincipal({ kind: 'user', name: 'admin', role: 'admin' });
    const { text } = await this.createKey(principal.id, { name: 'bootstrap' }, preset);
    return { principal, keyText: text };
  }
}
