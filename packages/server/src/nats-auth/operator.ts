import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PlatformError } from '@bulwark/core';
import { type Account, createAccount, createOperator, encodeAccount, encodeOperator } from '@nats-io/jwt';
import { type IssuerKeys, NatsIssuer } from './issuer.js';

/**
 * Bulwark's own NATS operator (operator/JWT mode): an operator, a system account and the
 * Bulwark account, each account with a signing key. Bulwark nodes hold the signing keys
 * (`nats-issuer.json`) and mint user JWTs with them; the operator's identity seed is written
 * once and is needed only to change the operator itself. The account identity seeds are not
 * kept: every account JWT is signed by the operator's signing key and every user JWT by an
 * account signing key. See docs/decisions/0020-nats-operator-mode.md.
 */

const decoder = new TextDecoder();
const seedText = (seed: Uint8Array) => decoder.decode(seed);

/** No limit on anything; JetStream with no limit (the stream's own limits apply). */
const OPEN_LIMITS = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
const JETSTREAM_LIMITS = { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };

/** The claims of an account JWT: the Bulwark account's carry the user revocations. */
export function accountClaims(kind: 'bulwark' | 'system', signingKey: string, revocations: Readonly<Record<string, number>> = {}): Partial<Account> {
  return {
    signing_keys: [signingKey],
    limits: kind === 'bulwark' ? { ...OPEN_LIMITS, ...JETSTREAM_LIMITS } : OPEN_LIMITS,
    ...(kind === 'bulwark' && Object.keys(revocations).length > 0 ? { revocations: { ...revocations } } : {}),
  };
}

export interface OperatorSetup {
  /** The operator's identity seed: keep it offline; it is needed only to re-issue the operator JWT. */
  readonly operatorSeed: string;
  readonly operatorJwt: string;
  readonly issuer: IssuerKeys;
  readonly systemAccountJwt: string;
  readonly bulwarkAccountJwt: string;
}

/** Makes a new operator, system account and Bulwark account. */
export async function createOperatorSetup(names: { operator?: string; account?: string } = {}): Promise<OperatorSetup> {
  const operator = createOperator();
  const operatorSigning = createOperator();
  const system = createAccount();
  const systemSigning = createAccount();
  const bulwark = createAccount();
  const bulwarkSigning = createAccount();
  const operatorName = names.operator ?? 'bulwark';
  const accountName = names.account ?? 'BULWARK';
  const operatorJwt = await encodeOperator(operatorName, operator, {
    signing_keys: [operatorSigning.getPublicKey()],
    system_account: system.getPublicKey(),
  });
  const systemAccountJwt = await encodeAccount('SYS', system, accountClaims('system', systemSigning.getPublicKey()), { signer: operatorSigning });
  const bulwarkAccountJwt = await encodeAccount(accountName, bulwark, accountClaims('bulwark', bulwarkSigning.getPublicKey()), { signer: operatorSigning });
  const issuer: IssuerKeys = {
    version: 1,
    operatorJwt,
    systemAccountJwt,
    operator: { name: operatorName, publicKey: operator.getPublicKey(), signingSeed: seedText(operatorSigning.getSeed()) },
    system: { name: 'SYS', publicKey: system.getPublicKey(), signingSeed: seedText(systemSigning.getSeed()) },
    account: { name: accountName, publicKey: bulwark.getPublicKey(), signingSeed: seedText(bulwarkSigning.getSeed()) },
  };
  return { operatorSeed: seedText(operator.getSeed()), operatorJwt, issuer, systemAccountJwt, bulwarkAccountJwt };
}

/**
 * The part of a nats-server configuration that puts it in operator mode with Bulwark's
 * accounts: every NATS server of the deployment includes the same file.
 */
export function serverConfigSnippet(setup: { readonly issuer: IssuerKeys; readonly bulwarkAccountJwt: string }): string {
  return [
    "# Bulwark: NATS operator mode (written by `bulwark nats init`; include it in every NATS server's config).",
    '# Accounts are preloaded from here; Bulwark pushes newer Bulwark account JWTs (revoked',
    '# application credentials) to running servers, and again after every reconnect.',
    `operator: ${setup.issuer.operatorJwt}`,
    `system_account: ${setup.issuer.system.publicKey}`,
    'resolver: MEMORY',
    'resolver_preload: {',
    `  # ${setup.issuer.system.name}`,
    `  ${setup.issuer.system.publicKey}: ${setup.issuer.systemAccountJwt}`,
    `  # ${setup.issuer.account.name}`,
    `  ${setup.issuer.account.publicKey}: ${setup.bulwarkAccountJwt}`,
    '}',
    '',
  ].join('\n');
}

export const OPERATOR_FILES = {
  operatorSeed: 'operator.nk',
  serverConfig: 'nats-auth.conf',
  issuer: 'nats-issuer.json',
  nodeCreds: 'bulwark-node.creds',
} as const;

export interface WrittenOperator {
  readonly dir: string;
  readonly files: { readonly [K in keyof typeof OPERATOR_FILES]: string };
  readonly operatorPublicKey: string;
  readonly accountPublicKey: string;
  readonly systemAccountPublicKey: string;
}

/**
 * `bulwark nats init`: writes a new operator into `dir` (created with mode 0700): the
 * operator seed, the issuer keys and the nodes' credentials with mode 0600, the NATS config
 * snippet readable. Refuses a directory that already holds any of these files.
 */
export async function writeOperatorSetup(dir: string, names: { operator?: string; account?: string } = {}): Promise<WrittenOperator> {
  const files = Object.fromEntries(Object.entries(OPERATOR_FILES).map(([k, f]) => [k, join(dir, f)])) as WrittenOperator['files'];
  const present = Object.values(files).filter((f) => existsSync(f));
  if (present.length > 0) {
    throw new PlatformError('BULWARK_ERR_CONFLICT', `${present.join(', ')} already exist: an operator is made once; move them away to start over (every NATS server and node would need the new files)`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const setup = await createOperatorSetup(names);
  const issuer = NatsIssuer.fromKeys(setup.issuer);
  writeFileSync(files.operatorSeed, `${setup.operatorSeed}\n`, { mode: 0o600, flag: 'wx' });
  writeFileSync(files.issuer, `${JSON.stringify(setup.issuer, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  writeFileSync(files.nodeCreds, await issuer.nodeCreds('bulwark-node'), { mode: 0o600, flag: 'wx' });
  writeFileSync(files.serverConfig, serverConfigSnippet(setup), { mode: 0o644, flag: 'wx' });
  return { dir, files, operatorPublicKey: setup.issuer.operator.publicKey, accountPublicKey: setup.issuer.account.publicKey, systemAccountPublicKey: setup.issuer.system.publicKey };
}
