import assert from 'node:assert/strict';
import { once } from 'node:events';
import { it } from 'node:test';
import { agentConfig, startAgent, startPlatform } from './testing/platform.js';

it('a revoked agent stops after a few attempts and waits the long refusal delay instead of hammering the platform', async (t) => {
  const p = await startPlatform(t);
  const agent = await startAgent(await agentConfig(t, p, 'revoked-1'));
  if (agent.status().state !== 'online') await once(agent, 'connected');
  const refused = once(agent, 'refused') as Promise<[{ reason: string; detail: string; retryInMs: number }]>;
  const res = await p.s.api('POST', '/api/v1/devices/revoked-1/revoke', { token: p.admin, body: { reason: 'stolen' } });
  assert.equal(res.status, 200, res.text);
  const [r] = await refused;
  assert.equal(r.reason, 'closed_before_connack');
  assert.ok(r.retryInMs >= 30_000, `waits at least half of reconnect.refusedDelayMs (60 s here): ${r.retryInMs} ms`);
  assert.equal(agent.status().state, 'refused');
});
