import type { Grant, Role } from './scopes.js';

export type PrincipalKind = 'user' | 'service';

/** A person (user) or a machine (service account) that calls the API. */
export interface Principal {
  readonly id: string;
  readonly kind: PrincipalKind;
  readonly name: string;
  /** Users have a role; service accounts have explicit scopes instead. */
  readonly role: Role | null;
  readonly scopes: Grant[];
  /**
   * Device groups this principal is limited to: it reaches only the devices in at least one of
   * them (reads, writes, streams, exports), and routes that reach the whole fleet refuse it.
   * null: the whole fleet.
   */
  readonly deviceGroups: string[] | null;
  readonly createdAt: number;
  readonly disabledAt: number | null;
}

/** An API key as stored: the secret only as a scrypt hash. */
export interface ApiKeyRecord {
  readonly id: string;
  readonly principalId: string;
  readonly name: string;
  readonly secretHash: string;
  /** Narrows the principal's scopes; null means "all of the principal's". */
  readonly scopes: Grant[] | null;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
  readonly lastUsedAt: number | null;
}

export type ApiKey = Omit<ApiKeyRecord, 'secretHash'>;

/** Who is calling, as established from a verified access token. */
export interface AuthContext {
  readonly principal: Principal;
  readonly keyId: string;
  readonly scopes: Grant[];
  readonly tokenExpiresAt: number;
}

export interface PrincipalRepository {
  insert(p: Principal): Promise<void>;
  get(id: string): Promise<Principal | undefined>;
  getByName(name: string): Promise<Principal | undefined>;
  list(): Promise<Principal[]>;
  count(): Promise<number>;
  setDisabled(id: string, disabledAt: number | null): Promise<boolean>;
  setDeviceGroups(id: string, groups: readonly string[] | null): Promise<boolean>;
}

export interface ApiKeyRepository {
  insert(k: ApiKeyRecord): Promise<void>;
  get(id: string): Promise<ApiKeyRecord | undefined>;
  listByPrincipal(principalId: string): Promise<ApiKeyRecord[]>;
  list(): Promise<ApiKeyRecord[]>;
  revoke(id: string, at: number): Promise<boolean>;
  touch(id: string, at: number): Promise<void>;
}
