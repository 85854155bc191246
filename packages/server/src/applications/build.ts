import { readFileSync } from 'node:fs';
import { type Clock, type IdGen, type Logger, PlatformError } from '@bulwark/core';
import type { AccessService } from '../access/index.js';
import type { EventBus } from '../bus/index.js';
import type { EngineTls, NatsLink } from '../cluster/index.js';
import { NatsIssuer, pushAccountJwt } from '../nats-auth/index.js';
import type { ApplicationRepository } from './applications.js';
import { ApplicationService } from './service.js';

/** The `.creds` text a node logs in to NATS with (`cluster.natsCredsFile`), if set. */
export function readNatsCreds(cluster: { readonly natsCredsFile?: string }): string | undefined {
  if (cluster.natsCredsFile === undefined) return undefined;
  try {
    return readFileSync(cluster.natsCredsFile, 'utf8');
  } catch (err) {
    throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `cluster.natsCredsFile: cannot read ${cluster.natsCredsFile}: ${(err as Error).message}`, { cause: err });
  }
}

export interface ApplicationsWiring {
  readonly repo: ApplicationRepository;
  readonly access: AccessService;
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly ids: IdGen;
  readonly log: Logger;
  readonly cluster: { readonly natsIssuerFile?: string };
  /** Cluster mode: the bus URLs, TLS and link the node uses (the account JWT is pushed there). */
  readonly nats?: { readonly servers: string; readonly tls?: EngineTls; readonly link: NatsLink };
}

/**
 * The applications context as a node runs it: with `cluster.natsIssuerFile` in cluster mode it
 * issues NATS credentials, and pushes the Bulwark account JWT (with the revocations) when it
 * starts, after every reconnect to NATS (a restarted NATS server knows only its config file)
 * and on every revocation. A disabled service account's NATS credentials are revoked.
 */
export function buildApplications(w: ApplicationsWiring): { readonly service: ApplicationService; start(): Promise<void>; stop(): void } {
  if (w.cluster.natsIssuerFile !== undefined && w.nats === undefined) {
    throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', 'cluster.natsIssuerFile needs cluster mode (a nats:// bus)');
  }
  const issuer = w.cluster.natsIssuerFile === undefined ? undefined : NatsIssuer.fromFile(w.cluster.natsIssuerFile);
  const target = w.nats;
  const service = new ApplicationService({
    repo: w.repo,
    access: w.access,
    clock: w.clock,
    ids: w.ids,
    log: w.log,
    ...(issuer && target
      ? {
          nats: { issuer, publisher: { publish: async (jwt: string) => void (await pushAccountJwt(issuer, jwt, { servers: target.servers, ...(target.tls ? { tls: target.tls } : {}) }, w.clock.now())) } },
        }
      : {}),
  });
  const unsubscribe: (() => void)[] = [];
  const republish = () => void service.publishAccount().catch((err: unknown) => w.log.warn({ err: String(err) }, 'the Bulwark account JWT could not be pushed to NATS; revoked application credentials may connect until it is'));
  return {
    service,
    async start() {
      unsubscribe.push(
        w.bus.subscribe('credentials.revoked', (e) => {
          if (e.reason === 'principal_disabled') void service.principalDisabled(e.principalId).catch((err: unknown) => w.log.error({ err: String(err), application: e.principalId }, 'revoking the NATS credentials of a disabled application failed'));
        }),
      );
      if (!service.natsConfigured || !target) return;
      await service.publishAccount();
      unsubscribe.push(target.link.onReconnect(republish));
    },
    stop() {
      for (const u of unsubscribe.splice(0)) u();
    },
  };
}
