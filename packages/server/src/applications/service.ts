import { type Clock, type IdGen, type Logger, PlatformError } from '@bulwark/core';
import type { AccessService } from '../access/index.js';
import { type ConsumerGrant, type NatsIssuer, type SchemaGrant, applicationNatsAccess } from '../nats-auth/index.js';
import type { Application, ApplicationRepository, NatsCredentialRecord } from './applications.js';

export const DEFAULT_NATS_CREDENTIAL_TTL_MS = 24 * 3_600_000;
export const MAX_NATS_CREDENTIAL_TTL_MS = 30 * 24 * 3_600_000;

/** Where the Bulwark account JWT goes when its revocations change: every NATS server. */
export interface AccountPublisher {
  publish(jwt: string): Promise<void>;
}

export interface ApplicationDeps {
  readonly repo: ApplicationRepository;
  readonly access: AccessService;
  readonly clock: Clock;
  readonly ids: IdGen;
  readonly log: Logger;
  /** Cluster mode in operator mode (cluster.natsIssuerFile): without it no NATS credential is issued. */
  readonly nats?: { readonly issuer: NatsIssuer; readonly publisher: AccountPublisher };
}

export interface IssuedNatsCredentials {
  readonly credential: NatsCredentialRecord;
  /** The `.creds` file text: shown once. */
  readonly creds: string;
  readonly inboxPrefix: string;
  readonly stream: string;
  readonly consumers: ConsumerGrant[];
}

/** Applications, their schema grants, and the NATS credentials they read the telemetry stream with. */
export class ApplicationService {
  constructor(private readonly deps: ApplicationDeps) {}

  get natsConfigured(): boolean {
    return this.deps.nats !== undefined;
  }

  /** Creates the application's service account (scope `schemas:read` only) and its schema grants. */
  async create(name: string, schemas: readonly SchemaGrant[]): Promise<Application> {
    if (schemas.length === 0) throw new PlatformError('BULWARK_ERR_BAD_REQUEST', 'an application reads at least one schema');
    const keys = schemas.map((s) => `${s.name}@${s.version ?? '*'}`);
    if (new Set(keys).size !== keys.length) throw new PlatformError('BULWARK_ERR_BAD_REQUEST', `a schema is granted twice: ${keys.join(', ')}`);
    const principal = await this.deps.access.createPrincipal({ kind: 'service', name, scopes: ['schemas:read'] });
    const app: Application = { id: principal.id, name, schemas: schemas.map((s) => ({ name: s.name, ...(s.version !== undefined ? { version: s.version } : {}) })), createdAt: this.deps.clock.now() };
    await this.deps.repo.insert(app);
    return app;
  }

  list(): Promise<Application[]> {
    return this.deps.repo.list();
  }

  async get(id: string): Promise<Application> {
    const app = await this.deps.repo.get(id);
    if (!app) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no application ${id}`);
    return app;
  }

  listCredentials(id: string): Promise<NatsCredentialRecord[]> {
    return this.deps.repo.listCredentials(id);
  }

  /**
   * A new NATS user for the application, valid `ttlMs`: it may create, read and acknowledge
   * only its own consumers, each filtered to one of its schemas (nats-auth/permissions.ts).
   * Credentials expire; the application asks for a new one before (re-issue is the rotation).
   */
  async issueNatsCredentials(id: string, ttlMs = DEFAULT_NATS_CREDENTIAL_TTL_MS): Promise<IssuedNatsCredentials> {
    const nats = this.#nats();
    const app = await this.get(id);
    const principal = await this.deps.access.getPrincipal(id);
    if (principal.disabledAt !== null) throw new PlatformError('BULWARK_ERR_CONFLICT', `application ${id} is disabled: enable its service account first`);
    if (ttlMs <= 0 || ttlMs > MAX_NATS_CREDENTIAL_TTL_MS) throw new PlatformError('BULWARK_ERR_BAD_REQUEST', `a NATS credential lives between 1 ms and ${MAX_NATS_CREDENTIAL_TTL_MS / 86_400_000} days`);
    const access = applicationNatsAccess(app.id, app.schemas);
    const now = this.deps.clock.now();
    const expiresAt = now + ttlMs;
    const user = await nats.issuer.user({ name: `${app.name} (${app.id})`, permissions: access.permissions, expiresAtMs: expiresAt, tags: [`application:${app.id}`] });
    const credential: NatsCredentialRecord = { id: this.deps.ids.next('ncr'), applicationId: app.id, userKey: user.userKey, issuedAt: now, expiresAt, revokedAt: null };
    await this.deps.repo.insertCredential(credential);
    return { credential, creds: user.creds, inboxPrefix: access.inboxPrefix, stream: 'BULWARK_TELEMETRY', consumers: access.consumers };
  }

  /**
   * Revokes every live NATS credential of the application: the Bulwark account JWT is signed
   * again with them in its revocation list and pushed to the NATS servers, which close their
   * connections and refuse them from then on. Returns the credentials revoked.
   */
  async revokeNatsCredentials(id: string): Promise<NatsCredentialRecord[]> {
    await this.get(id);
    const revoked = await this.deps.repo.revokeCredentials(id, this.deps.clock.now());
    if (revoked.length > 0 && this.deps.nats) await this.publishAccount();
    return revoked;
  }

  /** Revocations for the account JWT: each revoked, unexpired user key until its expiry. */
  async revocations(): Promise<Record<string, number>> {
    const list = await this.deps.repo.revokedUnexpired(this.deps.clock.now());
    return Object.fromEntries(list.map((c) => [c.userKey, Math.ceil(c.expiresAt / 1000)]));
  }

  /** Signs the Bulwark account JWT with the current revocations and pushes it (start, reconnect, revocation). */
  async publishAccount(): Promise<void> {
    const nats = this.#nats();
    await nats.publisher.publish(await nats.issuer.accountJwt(await this.revocations()));
  }

  /** A disabled service account loses its NATS access too (bus event `credentials.revoked`). */
  async principalDisabled(principalId: string): Promise<void> {
    if (!(await this.deps.repo.get(principalId))) return;
    const revoked = await this.revokeNatsCredentials(principalId);
    if (revoked.length > 0) this.deps.log.info({ application: principalId, credentials: revoked.length }, 'NATS credentials of a disabled application revoked');
  }

  #nats(): NonNullable<ApplicationDeps['nats']> {
    if (!this.deps.nats) {
      throw new PlatformError('BULWARK_ERR_CONFLICT', 'this deployment issues no NATS credentials: run NATS in operator mode (bulwark nats init) and give the nodes cluster.natsIssuerFile (docs/guides/cluster.md)');
    }
    return this.deps.nats;
  }
}
