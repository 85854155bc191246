import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { startTestServer } from '../testing/harness.js';
import { freshPgSchema, pgTestUrl } from '../testing/pg.js';
import { describeWith, startNats, startRedis } from '../testing/services.js';

describeWith('cluster mode: a node stops when its engines are gone', ['nats-server', 'redis-server'], () => {
  it('gives up the courtesies NATS cannot answer (leases, heartbeat, drain) instead of waiting for reconnects', async (t) => {
    const url = pgTestUrl(t);
    if (url === undefined) return;
    const nats = await startNats();
    const redis = await startRedis();
    t.after(() => nats.stop());
    t.after(() => redis.stop());
    let stopped = false;
    const schema = await freshPgSchema(t, url, async () => {
      if (!stopped) await s.server.stop();
    });
    const lines: string[] = [];
    const s = await startTestServer(t, {
      config: { store: url, bus: nats.url, counters: redis.url, nodeId: 'node-a', log: { level: 'warn' } },
      pgSchema: schema,
      env: { BULWARK_MASTER_KEY: randomBytes(32).toString('hex') },
      keepRunning: true,
      logDestination: { write: (line: string) => void lines.push(line) },
    });
    const admin = await s.tokenFor(s.adminKey);
    assert.equal((await s.api('GET', '/api/v1/devices', { token: admin })).status, 200);
    await nats.kill();
    await redis.kill();
    // Before, each lease given back and the heartbeat's removal waited for the client's reconnects (about 170 s in all).
    await s.server.stop();
    stopped = true;
    const gaveUp = lines.filter((l) => l.includes('going on without it')).map((l) => (JSON.parse(l) as { step: string }).step);
    assert.ok(gaveUp.includes('hand the singletons over'), gaveUp.join(', '));
    assert.ok(gaveUp.includes('heartbeat removal'), gaveUp.join(', '));
  });
});
