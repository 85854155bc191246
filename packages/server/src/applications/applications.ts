import type { SchemaGrant } from '../nats-auth/index.js';

export type { SchemaGrant } from '../nats-auth/index.js';

/**
 * An application: a service account that reads the telemetry stream over NATS, limited to
 * the schemas it is granted. Its id is its service account's id; the service account holds
 * only `schemas:read` on the HTTP API (telemetry:read is not limited to schemas, so an
 * application never holds it through this route).
 */
export interface Application {
  readonly id: string;
  readonly name: string;
  readonly schemas: SchemaGrant[];
  readonly createdAt: number;
}

/** A NATS credential issued to an application: only its public key is kept, never its seed. */
export interface NatsCredentialRecord {
  readonly id: string;
  readonly applicationId: string;
  /** The NATS user's public key (U…), the key revocations name. */
  readonly userKey: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly revokedAt: number | null;
}

export interface ApplicationRepository {
  insert(a: Application): Promise<void>;
  get(id: string): Promise<Application | undefined>;
  list(): Promise<Application[]>;
  insertCredential(c: NatsCredentialRecord): Promise<void>;
  listCredentials(applicationId: string): Promise<NatsCredentialRecord[]>;
  /** Marks every credential of the application that is neither revoked nor expired; returns them. */
  revokeCredentials(applicationId: string, at: number): Promise<NatsCredentialRecord[]>;
  /** Revoked credentials that have not expired yet: the account JWT's revocation list. */
  revokedUnexpired(now: number): Promise<NatsCredentialRecord[]>;
}
