import { PlatformError } from '@bulwark/core';
import { connect, credsAuthenticator } from '@nats-io/transport-node';
import type { EngineTls } from '../cluster/index.js';
import type { NatsIssuer } from './issuer.js';

export interface AccountPushTarget {
  /** Comma-separated nats:// or tls:// URLs, as the `bus` setting takes them. */
  readonly servers: string;
  readonly tls?: EngineTls;
}

/**
 * Sends a new Bulwark account JWT to the running NATS servers as a short-lived system-account
 * user (`$SYS.REQ.ACCOUNT.<account>.CLAIMS.UPDATE`, which nats-server 2.9 answers with the
 * MEMORY resolver too). A server applies it at once: revoked users are disconnected and
 * refused. Servers do not keep it: after a restart they load `resolver_preload` again, so
 * Bulwark pushes the current JWT after every reconnect. Resolves with the servers' answer.
 */
export async function pushAccountJwt(issuer: NatsIssuer, jwt: string, target: AccountPushTarget, nowMs: number): Promise<string> {
  const given = target.servers
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const secure = target.tls !== undefined || given.some((u) => u.startsWith('tls://'));
  const nc = await connect({
    servers: given.map((u) => u.replace(/^tls:\/\//, 'nats://').replace(/\/\/[^@/]*@/, '//')),
    name: 'bulwark account push',
    reconnect: false,
    timeout: 5_000,
    authenticator: credsAuthenticator(new TextEncoder().encode(await issuer.systemCreds(nowMs))),
    ...(secure ? { tls: { ...(target.tls?.ca ? { ca: target.tls.ca } : {}), ...(target.tls?.cert ? { cert: target.tls.cert } : {}), ...(target.tls?.key ? { key: target.tls.key } : {}) } } : {}),
  });
  try {
    const reply = await nc.request(`$SYS.REQ.ACCOUNT.${issuer.accountPublicKey}.CLAIMS.UPDATE`, jwt, { timeout: 5_000 });
    const answer = reply.json<{ data?: { code?: number; message?: string }; error?: { code?: number; description?: string } }>();
    if (answer.data?.code !== 200) {
      throw new PlatformError('BULWARK_ERR_BUS_UNAVAILABLE', `NATS refused the Bulwark account update: ${answer.error?.description ?? answer.data?.message ?? reply.string()}`);
    }
    return answer.data.message ?? 'jwt updated';
  } finally {
    await nc.close();
  }
}
