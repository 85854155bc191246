import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Clock } from '@bulwark/core';
import { type BulwarkServer, type ServerDeps, buildServer } from '../server.js';
import { loadConfig } from '../config/index.js';

/** Test-only helpers: a real server on port 0 with a temporary data directory. */

export function tempDir(t: TestContext, prefix = 'bulwark-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function newAdminKey(): string {
  return `bwk.key_admin_${randomBytes(4).toString('hex')}.${randomBytes(32).toString('base64url')}`;
}

export interface TestServer {
  readonly server: BulwarkServer;
  readonly url: string;
  readonly dataDir: string;
  readonly adminKey: string;
  /** Calls the API; `token` is sent as a bearer token when given. */
  api(method: string, path: string, options?: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> }): Promise<ApiResponse>;
  /** Exchanges a key for an access token, failing the test if it is refused. */
  tokenFor(key: string): Promise<string>;
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test convenience
  readonly text: string;
}

export interface TestServerOptions {
  /** Nested config overrides, as in a config file. */
  readonly config?: Record<string, unknown>;
  readonly env?: Record<string, string>;
  readonly dataDir?: string;
  readonly adminKey?: string;
  readonly clock?: Clock;
  /** The server's logger (to read what it logs); default: silent. */
  readonly logger?: ServerDeps['logger'];
  /** Where the server's own logger writes (its lines, as it writes them to stdout); set config log.level too. */
  readonly logDestination?: ServerDeps['logDestination'];
  readonly pgSchema?: string;
  /** Leave the server running after the test (the caller stops it). */
  readonly keepRunning?: boolean;
}

/** Nested merge of config objects: overrides win, sibling keys survive. */
function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' ? merge(b as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

export async function startTestServer(t: TestContext, options: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? tempDir(t);
  const adminKey = options.adminKey ?? newAdminKey();
  const config = loadConfig({
    file: merge({ dataDir, http: { port: 0 }, mqtt: { port: 0, host: '127.0.0.1' }, deviceHttp: { port: 0, host: '127.0.0.1' }, coap: { port: 0 }, log: { level: 'silent' } }, options.config ?? {}),
    fileName: 'test overrides',
    env: { BULWARK_BOOTSTRAP_ADMIN_KEY: adminKey, ...options.env },
  });
  const server = await buildServer(config, {
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.logDestination ? { logDestination: options.logDestination } : {}),
    ...(options.pgSchema ? { pgSchema: options.pgSchema } : {}),
  });
  const url = await server.start();
  if (!options.keepRunning) {
    t.after(async () => {
      await server.stop();
      // A stopping server writes its last audit checkpoint, which makes the directory again when
      // the temporary directory's own removal (registered first, so run first) came before it.
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    });
  }
  const api: TestServer['api'] = async (method, path, o = {}) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    let body: string | undefined;
    if (o.rawBody !== undefined) body = o.rawBody;
    else if (o.body !== undefined) body = JSON.stringify(o.body);
    if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
    const res = await fetch(url + path, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
  return {
    server,
    url,
    dataDir,
    adminKey,
    api,
    async tokenFor(key) {
      const res = await api('POST', '/api/v1/auth/token', { body: { key } });
      if (res.status !== 200) throw new Error(`token exchange failed: ${res.status} ${res.text}`);
      return res.body.accessToken as string;
    },
  };
}
