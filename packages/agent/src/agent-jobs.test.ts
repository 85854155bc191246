import assert from 'node:assert/strict';
import { once } from 'node:events';
import { it } from 'node:test';
import type { Agent } from './agent.js';
import { agentConfig, startAgent, startPlatform, until } from './testing/platform.js';

interface JobView {
  id: string;
  state: string;
  reason: string | null;
  deviceCount: number;
  settledAt: number | null;
  counts: Record<string, number>;
  progress: { finished: number; total: number; percent: number };
  reasons: { state: string; reason: string; count: number }[];
}

const INTERVAL = { type: 'object', required: ['intervalS'], properties: { intervalS: { type: 'integer', minimum: 1, maximum: 3600 } } } as const;

/**
 * Jobs over a dynamic group of real agents on mutual TLS: a twin patch, a command and a
 * certificate renewal, each to every member, with progress and a summary; a device that
 * refuses is reported with its reason; a cancel mid-way dispatches nothing more.
 */
it('runs twin-patch, command and certificate-renewal jobs over a dynamic group of agents, reports a failing device with its reason, and stops at a cancel', async (t) => {
  const p = await startPlatform(t, { jobs: { tickIntervalMs: 50 } });
  const api = (method: string, path: string, body?: unknown) => p.s.api(method, path, { token: p.admin, ...(body !== undefined ? { body } : {}) });
  const ids = ['jb-0', 'jb-1', 'jb-2', 'jb-3'];
  const agents: Agent[] = [];
  const blinks = new Map<string, number>();
  for (const id of [...ids, 'other-0']) {
    await p.claim(id, { model: id.startsWith('jb') ? 'gw-b' : 'sensor', location: 'site-7' });
    const agent = await startAgent(await agentConfig(t, p, id, {}));
    // jb-3 accepts intervals of at most 10 s: the patch below is refused there.
    agent.onConfig(id === 'jb-3' ? { ...INTERVAL, properties: { intervalS: { type: 'integer', minimum: 1, maximum: 10 } } } : INTERVAL, () => undefined);
    if (id !== 'jb-3') agent.onCommand('blink', { type: 'object' }, () => blinks.set(id, (blinks.get(id) ?? 0) + 1));
    if (agent.status().state !== 'online') await once(agent, 'connected');
    agents.push(agent);
  }
  const group = await api('POST', '/api/v1/groups', { id: 'site7-gw', kind: 'dynamic', query: { model: ['gw-b'], location: ['site-7'] } });
  assert.equal(group.status, 201, group.text);

  const run = async (operation: unknown, extra: Record<string, unknown> = {}): Promise<JobView> => {
    const made = await api('POST', '/api/v1/jobs', { name: `${(operation as { type: string }).type} over site7-gw`, group: 'site7-gw', operation, pacing: { ratePerSecond: 20 }, ...extra });
    assert.equal(made.status, 201, made.text);
    assert.equal(made.body.deviceCount, 4, "the group's members, not the other model");
    const seen: number[] = [];
    let view = made.body as JobView;
    await until(`job ${made.body.id} settled`, async () => {
      view = (await api('GET', `/api/v1/jobs/${made.body.id}`)).body;
      seen.push(view.progress.finished);
      return view.settledAt !== null;
    });
    assert.ok(
      seen.every((n, i) => i === 0 || n >= seen[i - 1]!),
      `progress never goes back: ${seen.join(',')}`,
    );
    return view;
  };

  // Twin patch: applied by three, refused by jb-3 with the agent's reason.
  const patch = await run({ type: 'twin-patch', patch: { intervalS: 30 } });
  assert.equal(patch.state, 'completed');
  assert.deepEqual([patch.counts.succeeded, patch.counts.failed, patch.progress.percent], [3, 1, 100]);
  assert.equal(patch.reasons.length, 1);
  assert.equal(patch.reasons[0]!.state, 'failed');
  const failed = (await api('GET', `/api/v1/jobs/${patch.id}/devices?state=failed`)).body as { deviceId: string; reason: string; detail: string | null }[];
  assert.deepEqual(
    failed.map((d) => d.deviceId),
    ['jb-3'],
  );
  assert.equal(failed[0]!.reason, patch.reasons[0]!.reason);
  assert.notEqual(failed[0]!.reason, 'no_answer', 'the device said why');
  const twin = (await api('GET', '/api/v1/devices/jb-0/twin')).body;
  assert.deepEqual([twin.desired.config, twin.inSync], [{ intervalS: 30 }, true]);
  assert.equal((await api('GET', '/api/v1/devices/other-0/twin')).body.desired, null, 'a device outside the group is untouched');

  // Command: run by three, refused by the device that has no such command.
  const command = await run({ type: 'command', name: 'blink', params: {} });
  assert.deepEqual([command.state, command.counts.succeeded, command.counts.failed], ['completed', 3, 1]);
  assert.deepEqual(
    command.reasons.map((r) => [r.state, r.reason, r.count]),
    [['failed', 'unknown_command', 1]],
  );
  assert.deepEqual([...blinks.keys()].sort(), ['jb-0', 'jb-1', 'jb-2']);

  // Certificate renewal asked of every agent: each one renews, reconnects with the new certificate, and says so.
  const serials = async () =>
    Promise.all(
      ids.map(async (id) =>
        ((await api('GET', `/api/v1/devices/${id}/certificates`)).body as { serial: string; revokedAt: number | null }[])
          .map((c) => c.serial)
          .sort()
          .join(','),
      ),
    );
  const before = await serials();
  const renewed = await run({ type: 'rotate-certificate' }, { deviceTimeoutMs: 20_000 });
  assert.deepEqual([renewed.state, renewed.counts.succeeded], ['completed', 4], JSON.stringify(renewed.reasons));
  const after = await serials();
  ids.forEach((id, i) => assert.notEqual(after[i], before[i], `${id} has a new certificate`));
  await until('every agent back online with its new certificate', () => agents.every((a) => a.status().state === 'online'));

  // Cancel mid-way: one device a second, cancelled after the first dispatch; nothing is dispatched after the cancel.
  const slow = await api('POST', '/api/v1/jobs', { name: 'slow blink', group: 'site7-gw', operation: { type: 'command', name: 'blink' }, pacing: { ratePerSecond: 1, maxConcurrent: 1 } });
  assert.equal(slow.status, 201, slow.text);
  await until('the first device dispatched', async () => ((await api('GET', `/api/v1/jobs/${slow.body.id}`)).body as JobView).progress.finished >= 1);
  const cancelled = await api('POST', `/api/v1/jobs/${slow.body.id}/cancel`, { reason: 'wrong group' });
  assert.equal(cancelled.status, 200, cancelled.text);
  const cancelAt = Date.now();
  assert.equal(cancelled.body.state, 'cancelled');
  await until('the cancelled job settled', async () => ((await api('GET', `/api/v1/jobs/${slow.body.id}`)).body as JobView).settledAt !== null);
  const entries = (await api('GET', `/api/v1/jobs/${slow.body.id}/devices`)).body as { state: string; dispatchedAt: number | null; reason: string | null }[];
  assert.ok(entries.filter((e) => e.state === 'cancelled').length >= 2, JSON.stringify(entries));
  assert.ok(
    entries.every((e) => e.dispatchedAt === null || e.dispatchedAt <= cancelAt),
    'no dispatch after the cancel answered',
  );
  assert.ok(entries.filter((e) => e.state === 'cancelled').every((e) => e.reason === 'job_cancelled'));
  const again = await api('POST', `/api/v1/jobs/${slow.body.id}/resume`, {});
  assert.equal(again.status, 409);
  assert.equal(again.body.error.code, 'BULWARK_ERR_JOB_STATE');
});
