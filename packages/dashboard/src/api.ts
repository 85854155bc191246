/**
 * The session and every call to the API. The API key is kept in this tab's sessionStorage
 * only (it is gone when the tab closes, and never touches localStorage); the access token
 * lives in memory and is exchanged again from the key before it expires.
 */
const KEY_SLOT = 'bulwark.apiKey';
/** Renew the token this long before it expires (or a quarter of its life, if that is shorter). */
const REFRESH_BEFORE_MS = 60_000;

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly requestId?: string) {
    super(message);
  }
}

export interface Principal {
  readonly id: string;
  readonly name: string;
  readonly kind: string;
  readonly role: string | null;
}

export interface Session {
  readonly principal: Principal;
  readonly scopes: readonly string[];
}

let apiKey: string | undefined;
let token: string | undefined;
let tokenExpiresAt = 0;
let refreshMarginMs = REFRESH_BEFORE_MS;
let refreshing: Promise<void> | undefined;
const listeners = new Set<() => void>();

export function onSignOut(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

async function readError(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string; requestId?: string } };
    if (body.error) return new ApiError(res.status, body.error.code ?? `HTTP_${res.status}`, body.error.message ?? res.statusText, body.error.requestId);
  } catch {
    // not JSON: fall through
  }
  return new ApiError(res.status, `HTTP_${res.status}`, text.slice(0, 200) || res.statusText);
}

async function exchange(key: string): Promise<void> {
  const res = await fetch('/api/v1/auth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
  if (!res.ok) throw await readError(res);
  const body = (await res.json()) as { accessToken: string; expiresAt: number };
  token = body.accessToken;
  tokenExpiresAt = body.expiresAt;
  refreshMarginMs = Math.min(REFRESH_BEFORE_MS, Math.max(0, body.expiresAt - Date.now()) / 4);
}

async function freshToken(): Promise<string> {
  if (token === undefined || Date.now() > tokenExpiresAt - refreshMarginMs) {
    if (apiKey === undefined) throw new ApiError(401, 'BULWARK_ERR_UNAUTHENTICATED', 'signed out');
    refreshing ??= exchange(apiKey).finally(() => {
      refreshing = undefined;
    });
    await refreshing;
  }
  return token as string;
}

export async function signIn(key: string): Promise<Session> {
  await exchange(key.trim());
  apiKey = key.trim();
  sessionStorage.setItem(KEY_SLOT, apiKey);
  return whoami();
}

/** Resumes the session of this tab after a reload, if it has one. */
export async function resume(): Promise<Session | undefined> {
  const stored = sessionStorage.getItem(KEY_SLOT);
  if (!stored) return undefined;
  try {
    return await signIn(stored);
  } catch {
    signOut();
    return undefined;
  }
}

export function signOut(): void {
  apiKey = undefined;
  token = undefined;
  tokenExpiresAt = 0;
  sessionStorage.removeItem(KEY_SLOT);
  for (const fn of listeners) fn();
}

export async function whoami(): Promise<Session> {
  const me = await api<{ principal: Principal; scopes: string[] }>('GET', '/api/v1/auth/whoami');
  return { principal: me.principal, scopes: me.scopes };
}

export function can(session: Session, scope: string): boolean {
  return session.scopes.includes('*') || session.scopes.includes(scope);
}

export async function api<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${await freshToken()}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), ...(signal ? { signal } : {}) });
  if (!res.ok) {
    const err = await readError(res);
    if (err.status === 401 && err.code !== 'BULWARK_ERR_INVALID_CREDENTIALS') signOut();
    throw err;
  }
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export async function metricsText(): Promise<string> {
  const res = await fetch('/metrics', { headers: { authorization: `Bearer ${await freshToken()}` } });
  if (!res.ok) throw await readError(res);
  return res.text();
}

/** A single-use ticket for one EventSource or WebSocket (they cannot send a bearer token). */
export async function streamTicket(): Promise<string> {
  return (await api<{ ticket: string }>('POST', '/api/v1/auth/stream-ticket')).ticket;
}

export const q = (params: Record<string, string | number | boolean | undefined>): string => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') s.set(k, String(v));
  const text = s.toString();
  return text ? `?${text}` : '';
};
