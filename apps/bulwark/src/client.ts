import { type CachedToken, DEFAULT_PROFILE, type Env, type SavedCredentials, credentialsPath, profileOf, readCredentials, writeCredentials } from './credentials.js';
import { CliError, EXIT } from './errors.js';

/**
 * The HTTP client every API command uses: it exchanges the API key for a short-lived access
 * token (POST /api/v1/auth/token), sends it as a bearer token, and turns the API's error
 * body into `error BULWARK_ERR_...: message`.
 */

const TIMEOUT_MS = 30_000;
/** A cached token closer than this to its expiry is replaced before use. */
const TOKEN_MARGIN_MS = 30_000;
const AUTH_ERRORS = new Set(['BULWARK_ERR_TOKEN_EXPIRED', 'BULWARK_ERR_TOKEN_INVALID']);

export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

export interface RequestOptions {
  readonly token?: string;
  readonly body?: unknown;
  /** Bytes sent as application/octet-stream instead of a JSON body (firmware images). */
  readonly raw?: Uint8Array<ArrayBuffer>;
  readonly query?: Query;
}

/** Checks and normalises a server URL (`http://host:port`, no trailing slash). */
export function normalizeUrl(text: string, origin = '--url'): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CliError('BULWARK_CLI_USAGE', `${origin}: "${text}" is not a URL (expected e.g. http://127.0.0.1:8080)`, EXIT.usage);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError('BULWARK_CLI_USAGE', `${origin}: "${text}" must start with http:// or https://`, EXIT.usage);
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new CliError('BULWARK_CLI_USAGE', `${origin}: "${text}" must not carry credentials, a query or a fragment`, EXIT.usage);
  }
  return url.href.replace(/\/+$/, '');
}

export function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}

/** One HTTP call to the API; resolves with the parsed JSON body of a 2xx answer. */
export async function send<T>(baseUrl: string, method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const target = new URL(baseUrl + path);
  for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) target.searchParams.set(k, String(v));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body: string | Uint8Array<ArrayBuffer> | undefined;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  } else if (options.raw !== undefined) {
    body = options.raw;
    headers['content-type'] = 'application/octet-stream';
  }
  let res: Response;
  try {
    res = await fetch(target, { method, headers, ...(body !== undefined ? { body } : {}), signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    throw unreachable(baseUrl, err);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new CliError('BULWARK_CLI_BAD_RESPONSE', `${baseUrl} answered ${method} ${path} with HTTP ${res.status} and a body that is not JSON: is this the URL of a Bulwark server?`);
  }
  if (res.ok) return parsed as T;
  throw apiError(baseUrl, method, path, res, parsed);
}

/** GET of a public text document (PEM files); no credentials are sent. */
export async function getText(baseUrl: string, path: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(baseUrl + path, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    throw unreachable(baseUrl, err);
  }
  const text = await res.text();
  if (res.ok) return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  throw apiError(baseUrl, 'GET', path, res, parsed);
}

function apiError(baseUrl: string, method: string, path: string, res: Response, parsed: unknown): CliError {
  const error = (parsed as { error?: { code?: unknown; message?: unknown; details?: Record<string, unknown> } } | undefined)?.error;
  if (typeof error?.code !== 'string') {
    return new CliError('BULWARK_CLI_BAD_RESPONSE', `${baseUrl} answered ${method} ${path} with HTTP ${res.status} without a Bulwark error body: is this the URL of a Bulwark server?`);
  }
  // Schema errors can repeat one problem per alternative tried; say each once.
  const message = typeof error.message === 'string' ? [...new Set(error.message.split(', '))].join(', ') : `HTTP ${res.status}`;
  const retry = res.headers.get('retry-after');
  return new CliError(error.code, retry ? `${message} (retry after ${retry} s)` : message, EXIT.failure, error.details);
}

/** Node's codes for a server certificate that does not verify against the trusted CAs. */
const UNTRUSTED_CERT = new Set(['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_UNTRUSTED']);

function unreachable(url: string, err: unknown): CliError {
  const e = err as { name?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return new CliError('BULWARK_CLI_UNREACHABLE', `the Bulwark server at ${url} did not answer within ${TIMEOUT_MS / 1000} s`);
  const why = e.cause?.code ?? e.cause?.message ?? (err as Error).message;
  if (e.cause?.code === 'ERR_TLS_CERT_ALTNAME_INVALID' || e.cause?.code === 'CERT_HAS_EXPIRED') {
    return new CliError(
      'BULWARK_CLI_UNREACHABLE',
      `the Bulwark server at ${url} answered, but its TLS certificate ${e.cause.code === 'CERT_HAS_EXPIRED' ? 'has expired' : 'does not name this host'} (${why}): use a URL with a name the certificate carries (http.tlsNames), or restart the server for a new certificate`,
    );
  }
  if (e.cause?.code !== undefined && UNTRUSTED_CERT.has(e.cause.code)) {
    return new CliError(
      'BULWARK_CLI_UNREACHABLE',
      `the Bulwark server at ${url} answered, but its TLS certificate is not trusted here (${why}): with a certificate from the platform's CA, set NODE_EXTRA_CA_CERTS to the CA file the server printed at start (<dataDir>/ca.pem)`,
    );
  }
  return new CliError('BULWARK_CLI_UNREACHABLE', `cannot reach the Bulwark server at ${url} (${why}): is it running, and is the URL right? (from "bulwark login" or BULWARK_URL)`);
}

export interface TokenGrant {
  readonly accessToken: string;
  readonly expiresAt: number;
}

export function exchangeKey(url: string, key: string): Promise<TokenGrant> {
  return send<TokenGrant>(url, 'POST', '/api/v1/auth/token', { body: { key } });
}

/** A logged-in API client: the key is exchanged for a token on first use, the token reused until near its expiry. */
export class Session {
  #token: CachedToken | undefined;

  constructor(
    readonly url: string,
    private readonly key: string,
    cached: CachedToken | undefined,
    private readonly onToken: (token: CachedToken) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.#token = cached;
  }

  async call<T>(method: string, path: string, options: Omit<RequestOptions, 'token'> = {}): Promise<T> {
    const cached = this.#token !== undefined && this.#token.expiresAt - this.now() > TOKEN_MARGIN_MS ? this.#token.accessToken : undefined;
    const token = cached ?? (await this.#refresh());
    try {
      return await send<T>(this.url, method, path, { ...options, token });
    } catch (err) {
      // A cached token may have been issued before a restart with a new signing key, or just expired: get a fresh one once.
      if (cached !== undefined && err instanceof CliError && AUTH_ERRORS.has(err.code)) {
        return send<T>(this.url, method, path, { ...options, token: await this.#refresh() });
      }
      throw err;
    }
  }

  /**
   * GET of a streamed answer (an export): resolves with the response once its headers are in,
   * for the caller to read the body; an error answer becomes a CliError as in `call`.
   */
  async open(path: string, query: Query, signal: AbortSignal): Promise<Response> {
    const target = new URL(this.url + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) target.searchParams.set(k, String(v));
    const attempt = async (token: string) => {
      let res: Response;
      try {
        res = await fetch(target, { headers: { authorization: `Bearer ${token}` }, signal });
      } catch (err) {
        throw unreachable(this.url, err);
      }
      if (res.ok) return res;
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      throw apiError(this.url, 'GET', path, res, parsed);
    };
    const cached = this.#token !== undefined && this.#token.expiresAt - this.now() > TOKEN_MARGIN_MS ? this.#token.accessToken : undefined;
    try {
      return await attempt(cached ?? (await this.#refresh()));
    } catch (err) {
      if (cached !== undefined && err instanceof CliError && AUTH_ERRORS.has(err.code)) return attempt(await this.#refresh());
      throw err;
    }
  }

  async #refresh(): Promise<string> {
    const grant = await exchangeKey(this.url, this.key);
    this.#token = { accessToken: grant.accessToken, expiresAt: grant.expiresAt };
    this.onToken(this.#token);
    return grant.accessToken;
  }
}

/**
 * The session for API commands: BULWARK_KEY (with BULWARK_URL, or the saved URL) when set,
 * else the credentials saved by `bulwark login` for the profile (--profile or
 * BULWARK_PROFILE; the default one without). Only the saved login caches its token.
 */
export function openSession(env: Env): Session {
  const path = credentialsPath(env);
  const profile = profileOf(env);
  const envUrl = env.BULWARK_URL ? normalizeUrl(env.BULWARK_URL, 'BULWARK_URL') : undefined;
  const envKey = env.BULWARK_KEY || undefined;
  const saved = readCredentials(path, profile);
  if (envKey !== undefined) {
    const url = envUrl ?? saved?.url;
    if (url === undefined) throw new CliError('BULWARK_CLI_NOT_LOGGED_IN', 'BULWARK_KEY is set but no server URL is known: set BULWARK_URL too', EXIT.usage);
    return new Session(url, envKey, undefined);
  }
  if (saved === undefined) {
    if (profile !== DEFAULT_PROFILE) {
      throw new CliError('BULWARK_CLI_NOT_LOGGED_IN', `no saved login for profile "${profile}" in ${path}: run "bulwark login --profile ${profile} --url URL --key KEY"`);
    }
    throw new CliError('BULWARK_CLI_NOT_LOGGED_IN', `not logged in: run "bulwark login --url URL --key KEY", or set BULWARK_URL and BULWARK_KEY (no credentials at ${path})`);
  }
  if (envUrl !== undefined && envUrl !== saved.url) {
    // Never send a saved key to a server it was not issued by.
    throw new CliError('BULWARK_CLI_NOT_LOGGED_IN', `BULWARK_URL (${envUrl}) differs from the saved login (${saved.url}): set BULWARK_KEY too, or unset BULWARK_URL`, EXIT.usage);
  }
  return new Session(saved.url, saved.key, saved.token, (token) => saveToken(path, saved, token, profile));
}

function saveToken(path: string, saved: SavedCredentials, token: CachedToken, profile: string): void {
  try {
    writeCredentials(path, { url: saved.url, key: saved.key, token }, profile);
  } catch {
    // The cache is an optimisation; a read-only credentials file still works.
  }
}

/**
 * The server URL for routes that need no credentials (enrollment with a token, the PKI
 * files): --url, else BULWARK_URL, else the saved login's URL (of the chosen profile).
 */
export function serverUrl(env: Env, flag: string | undefined): string {
  if (flag !== undefined) return normalizeUrl(flag);
  if (env.BULWARK_URL) return normalizeUrl(env.BULWARK_URL, 'BULWARK_URL');
  const saved = readCredentials(credentialsPath(env), profileOf(env));
  if (saved !== undefined) return saved.url;
  throw new CliError('BULWARK_CLI_NOT_LOGGED_IN', 'no server URL: pass --url URL, set BULWARK_URL, or log in with "bulwark login"', EXIT.usage);
}
