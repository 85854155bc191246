import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { type TestServer, newAdminKey, startTestServer } from './harness.js';
import { freshPgSchema, pgTestUrl } from './pg.js';

export interface TwoNodes {
  readonly a: TestServer;
  readonly b: TestServer;
  /** An admin access token (valid on both nodes). */
  readonly admin: string;
  readonly pg: { readonly url: string; readonly schema: string };
}

/**
 * Test-only: two Bulwark nodes in cluster mode on one fresh PostgreSQL schema and the given
 * nats-server, holding the same master key; both stopped after the test. Undefined (with a
 * skip notice, or a failure in CI) when no PostgreSQL is configured for the tests.
 */
export async function twoClusterNodes(t: TestContext, natsUrl: string, config: Record<string, unknown> = {}): Promise<TwoNodes | undefined> {
  const url = pgTestUrl(t);
  if (url === undefined) return undefined;
  const started: TestServer[] = [];
  // The nodes stop (the last started first) before their schema is dropped.
  const schema = await freshPgSchema(t, url, async () => {
    for (const s of started.reverse()) await s.server.stop();
  });
  const adminKey = newAdminKey();
  const env = { BULWARK_MASTER_KEY: randomBytes(32).toString('hex') };
  const node = async (nodeId: string) => {
    const s = await startTestServer(t, { config: { ...config, store: url, bus: natsUrl, nodeId }, pgSchema: schema, adminKey, env, keepRunning: true });
    started.push(s);
    return s;
  };
  const a = await node('node-a');
  const b = await node('node-b');
  return { a, b, admin: await a.tokenFor(adminKey), pg: { url, schema } };
}

/** The value of one Prometheus sample line of a node's /metrics (0 when absent). */
export async function metricValue(s: TestServer, sample: string): Promise<number> {
  const text = (await s.api('GET', '/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}
