import { readFileSync, statSync } from 'node:fs';
import { PlatformError } from '@bulwark/core';
import { type Permissions, type User, createUser, encodeAccount, encodeUser, fmtCreds, fromPublic, fromSeed } from '@nats-io/jwt';
import { accountClaims, serverConfigSnippet } from './operator.js';

/** What Bulwark nodes hold to act as the issuer of the Bulwark account's users (`nats-issuer.json`, mode 0600). */
export interface IssuerKeys {
  readonly version: 1;
  /** Public: the operator JWT and the system account's JWT, to rewrite the NATS config snippet. */
  readonly operatorJwt: string;
  readonly systemAccountJwt: string;
  /** The operator's signing key signs account JWTs (the Bulwark account's, with revocations). */
  readonly operator: { readonly name: string; readonly publicKey: string; readonly signingSeed: string };
  /** The system account's signing key signs the short-lived users that push account updates. */
  readonly system: { readonly name: string; readonly publicKey: string; readonly signingSeed: string };
  /** The Bulwark account's signing key signs every user: the nodes' and the applications'. */
  readonly account: { readonly name: string; readonly publicKey: string; readonly signingSeed: string };
}

export interface IssuedUser {
  /** The `.creds` file: user JWT and user seed. Shown once; Bulwark keeps only the public key. */
  readonly creds: string;
  readonly userKey: string;
  readonly jwt: string;
}

export interface UserRequest {
  readonly name: string;
  /** Absent: full rights on the account (Bulwark's own nodes). */
  readonly permissions?: Permissions;
  /** Absent: no expiry. */
  readonly expiresAtMs?: number;
  readonly tags?: readonly string[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const seedOf = (text: string, prefix: string, what: string) => {
  if (!text.startsWith(`S${prefix}`)) throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `${what} is not an nkey seed of the right kind`);
  return fromSeed(encoder.encode(text));
};

/** Signs the users of the Bulwark account and the account's own JWT. */
export class NatsIssuer {
  private constructor(readonly keys: IssuerKeys) {}

  static fromKeys(keys: IssuerKeys): NatsIssuer {
    seedOf(keys.operator.signingSeed, 'O', 'operator.signingSeed');
    seedOf(keys.system.signingSeed, 'A', 'system.signingSeed');
    seedOf(keys.account.signingSeed, 'A', 'account.signingSeed');
    for (const [what, key, prefix] of [
      ['operator', keys.operator.publicKey, 'O'],
      ['system', keys.system.publicKey, 'A'],
      ['account', keys.account.publicKey, 'A'],
    ] as const) {
      try {
        if (!key.startsWith(prefix)) throw new Error('wrong kind');
        fromPublic(key);
      } catch {
        throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `${what}.publicKey is not a NATS ${prefix === 'O' ? 'operator' : 'account'} public key`);
      }
    }
    return new NatsIssuer(keys);
  }

  /**
   * Reads `nats-issuer.json` (written by `bulwark nats init`). It holds signing seeds: a file
   * that group or others may read is refused, like an ssh private key.
   */
  static fromFile(path: string, setting = 'cluster.natsIssuerFile'): NatsIssuer {
    let text: string;
    try {
      if ((statSync(path).mode & 0o077) !== 0) {
        throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `${setting}: ${path} holds signing keys and must be readable by its owner only (chmod 600)`);
      }
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if (err instanceof PlatformError) throw err;
      throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `${setting}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
    let keys: IssuerKeys;
    try {
      keys = JSON.parse(text) as IssuerKeys;
    } catch (err) {
      throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `${setting}: ${path} is not JSON`, { cause: err });
    }
    if (keys?.version !== 1 || typeof keys.operatorJwt !== 'string' || !keys.operator || !keys.system || !keys.account) {
      throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `${setting}: ${path} is not a Bulwark NATS issuer file (bulwark nats init writes one)`);
    }
    return NatsIssuer.fromKeys(keys);
  }

  get accountPublicKey(): string {
    return this.keys.account.publicKey;
  }

  /** A user of the Bulwark account, signed by the account's signing key. */
  async user(request: UserRequest): Promise<IssuedUser> {
    const user = createUser();
    const claims: Partial<User> = {
      ...(request.permissions ? { pub: request.permissions.pub ?? {}, sub: request.permissions.sub ?? {}, ...(request.permissions.resp ? { resp: request.permissions.resp } : {}) } : {}),
      ...(request.tags ? { tags: [...request.tags] } : {}),
    };
    const signer = seedOf(this.keys.account.signingSeed, 'A', 'account.signingSeed');
    const jwt = await encodeUser(request.name, user, this.keys.account.publicKey, claims, {
      signer,
      ...(request.expiresAtMs !== undefined ? { exp: Math.floor(request.expiresAtMs / 1000) } : {}),
    });
    return { creds: decoder.decode(fmtCreds(jwt, user)), userKey: user.getPublicKey(), jwt };
  }

  /** Credentials for a Bulwark node: full rights on the Bulwark account, no expiry. */
  async nodeCreds(name: string): Promise<string> {
    return (await this.user({ name })).creds;
  }

  /** A short-lived user of the system account, to push account updates to the servers. */
  async systemCreds(nowMs: number, ttlMs = 60_000): Promise<string> {
    const user = createUser();
    const signer = seedOf(this.keys.system.signingSeed, 'A', 'system.signingSeed');
    const jwt = await encodeUser(
      'bulwark-account-push',
      user,
      this.keys.system.publicKey,
      {
        pub: { allow: ['$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE'] },
        sub: { allow: ['_INBOX.>'] },
      },
      { signer, exp: Math.floor((nowMs + ttlMs) / 1000) },
    );
    return decoder.decode(fmtCreds(jwt, user));
  }

  /**
   * The Bulwark account's JWT with `revocations` (user public key → unix seconds: every JWT
   * of that user issued at or before then is refused, and its connections closed).
   */
  async accountJwt(revocations: Readonly<Record<string, number>> = {}): Promise<string> {
    const signer = seedOf(this.keys.operator.signingSeed, 'O', 'operator.signingSeed');
    const signing = seedOf(this.keys.account.signingSeed, 'A', 'account.signingSeed').getPublicKey();
    return encodeAccount(this.keys.account.name, fromPublic(this.keys.account.publicKey), accountClaims('bulwark', signing, revocations), { signer });
  }

  /** The NATS config snippet with the current Bulwark account JWT (for `resolver_preload` after revocations). */
  async serverConfig(revocations: Readonly<Record<string, number>> = {}): Promise<string> {
    return serverConfigSnippet({ issuer: this.keys, bulwarkAccountJwt: await this.accountJwt(revocations) });
  }
}
