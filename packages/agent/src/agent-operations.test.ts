import assert from 'node:assert/strict';
import { once } from 'node:events';
import { it } from 'node:test';
import { agentConfig, startAgent, startPlatform, until } from './testing/platform.js';

/**
 * The agent and the platform together, driven the way an operator does: commands, desired
 * configuration, health, events and remote logs through the REST API, the agent on mutual
 * TLS MQTT. Proves both halves speak the same contract (the catalogue in packages/protocol/src/contract).
 */
it('runs operator commands and desired configuration through the API, refuses bad ones with reasons, and reports health, events and logs', async (t) => {
  const p = await startPlatform(t);
  const id = 'ops-1';
  const api = (method: string, path: string, body?: unknown) => p.s.api(method, `/api/v1/devices/${id}${path}`, { token: p.admin, ...(body !== undefined ? { body } : {}) });
  const agent = await startAgent(await agentConfig(t, p, id, { health: { intervalMs: 1000 } }));
  const blinks: number[] = [];
  agent.onCommand<{ times: number }>('blink', { type: 'object', required: ['times'], additionalProperties: false, properties: { times: { type: 'integer', minimum: 1, maximum: 10 } } }, ({ times }) => {
    blinks.push(times);
    return { blinked: times };
  });
  const applied: number[] = [];
  agent.onConfig<{ intervalS: number }>({ type: 'object', required: ['intervalS'], additionalProperties: false, properties: { intervalS: { type: 'integer', minimum: 1, maximum: 3600 } } }, (c) => {
    applied.push(c.intervalS);
  });
  if (agent.status().state !== 'online') await once(agent, 'connected');

  const command = async (name: string, params: unknown) => {
    const sent = await api('POST', `/commands/${name}`, { params });
    assert.equal(sent.status, 201, sent.text);
    let last: { status: string; reason: string | null; output: unknown } = sent.body;
    await until(`command ${name} answered`, async () => {
      last = (await api('GET', `/commands/${sent.body.id}`)).body;
      return ['succeeded', 'failed', 'rejected'].includes(last.status);
    });
    return last;
  };
  const ok = await command('blink', { times: 3 });
  assert.deepEqual([ok.status, ok.output], ['succeeded', { blinked: 3 }]);
  const outOfRange = await command('blink', { times: 99 });
  assert.deepEqual([outOfRange.status, outOfRange.reason], ['rejected', 'params_invalid']);
  const unknown = await command('self-destruct', {});
  assert.deepEqual([unknown.status, unknown.reason], ['rejected', 'unknown_command']);
  assert.deepEqual(blinks, [3], 'only the valid command ran');

  const desire = async (config: unknown) => {
    const res = await api('PUT', '/twin/desired', { config });
    assert.equal(res.status, 200, res.text);
    const version = res.body.desired.version as number;
    await until(`report for desired version ${version}`, async () => (await api('GET', '/twin')).body.reported?.version === version);
    return (await api('GET', '/twin')).body as { inSync: boolean; reported: { status: string; config: Record<string, unknown> } };
  };
  const good = await desire({ intervalS: 30 });
  assert.equal(good.inSync, true);
  assert.deepEqual(applied, [30]);
  const bad = await desire({ intervalS: 0 });
  assert.deepEqual([bad.inSync, bad.reported.status, bad.reported.config], [false, 'rejected', { intervalS: 30 }], 'refused, and still running the last good configuration');
  assert.deepEqual(applied, [30]);

  await until('a health report', async () => (await api('GET', '/health')).body.latest !== null);
  const health = (await api('GET', '/health')).body.latest.report as Record<string, unknown>;
  assert.equal(typeof health.uptimeS, 'number');
  assert.equal(typeof health.queueDepth, 'number');
  assert.equal(health.queueDropped, 0, "the agent reports its queue's drops (none here)");
  const events = (await api('GET', '/events')).body as { type: string }[];
  assert.ok(
    events.some((e) => e.type === 'boot'),
    `a boot event among ${JSON.stringify(events.map((e) => e.type))}`,
  );

  const stream = await api('POST', '/logs/stream', { level: 'info', durationS: 60 });
  assert.equal(stream.status, 201, stream.text);
  await until('the log stream is on at the device', async () => (await api('GET', `/commands/${stream.body.command.id}`)).body.status === 'succeeded');
  agent.log.info('hello from the device', { n: 1 });
  await until('the log line at the platform', async () => ((await api('GET', '/logs')).body.entries as { msg: string }[]).some((e) => e.msg === 'hello from the device'), 15_000);
});
