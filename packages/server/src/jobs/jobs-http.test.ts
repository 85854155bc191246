import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually } from '../testing/eventually.js';
import { type TestServer, startTestServer } from '../testing/harness.js';

interface JobView {
  id: string;
  history: { state: string }[];
  state: string;
  reason: string | null;
  deviceCount: number;
  skipped: Record<string, number>;
  settledAt: number | null;
  counts: Record<string, number>;
  reasons: { state: string; reason: string; count: number }[];
}

async function setUp(s: TestServer, admin: string, n: number, group = 'g'): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${group}-dev-${i}`);
  for (const id of ids) assert.equal((await s.api('POST', '/api/v1/devices', { token: admin, body: { id, model: 'gw-b' } })).status, 201);
  assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: group, kind: 'static', members: ids } })).status, 201);
  return ids;
}

async function settled(s: TestServer, token: string, id: string): Promise<JobView> {
  return eventually(
    async () => (await s.api('GET', `/api/v1/jobs/${id}`, { token })).body as JobView,
    (v) => v.settledAt !== null,
  );
}

describe('jobs over HTTP', () => {
  it('suspends and resumes a group, leaves decommissioned members out, and refuses bad jobs with nothing made', async (t) => {
    const s = await startTestServer(t, { config: { jobs: { tickIntervalMs: 20, maxDevices: 4 } } });
    const admin = await s.tokenFor(s.adminKey);
    const ids = await setUp(s, admin, 4);
    assert.equal((await s.api('POST', `/api/v1/devices/${ids[3]}/decommission`, { token: admin, body: {} })).status, 200);
    const made = await s.api('POST', '/api/v1/jobs', { token: admin, body: { name: 'park', group: 'g', operation: { type: 'suspend' }, pacing: { ratePerSecond: 100 } } });
    assert.equal(made.status, 201, made.text);
    assert.deepEqual([made.body.deviceCount, made.body.skipped], [3, { decommissioned: 1 }]);
    const parked = await settled(s, admin, made.body.id);
    assert.deepEqual([parked.state, parked.counts.succeeded, parked.reason], ['completed', 3, '3 succeeded']);
    for (const id of ids.slice(0, 3)) assert.equal((await s.api('GET', `/api/v1/devices/${id}`, { token: admin })).body.state, 'suspended');
    // Resuming twice: the second time each device says why it failed.
    const resumed = await settled(s, admin, (await s.api('POST', '/api/v1/jobs', { token: admin, body: { name: 'wake', group: 'g', operation: { type: 'resume' } } })).body.id);
    assert.equal(resumed.counts.succeeded, 3);
    const twice = await settled(s, admin, (await s.api('POST', '/api/v1/jobs', { token: admin, body: { name: 'wake again', group: 'g', operation: { type: 'resume' } } })).body.id);
    assert.deepEqual([twice.counts.failed, twice.reasons[0]?.reason], [3, 'lifecycle']);
    // Decommission over a group: each device retired as one operation, with its receipt.
    const retired = await settled(s, admin, (await s.api('POST', '/api/v1/jobs', { token: admin, body: { name: 'retire', group: 'g', operation: { type: 'decommission' } } })).body.id);
    assert.equal(retired.counts.succeeded, 3, JSON.stringify(retired.reasons));
    for (const id of ids.slice(0, 3)) assert.equal((await s.api('GET', `/api/v1/devices/${id}`, { token: admin })).body.state, 'decommissioned');
    const receipts = (await s.api('GET', '/api/v1/audit?action=device.decommission.receipt', { token: admin })).body as { actor: string }[];
    assert.equal(receipts.filter((e) => e.actor === `job:${retired.id}`).length, 3);
    const audit = (await s.api('GET', '/api/v1/audit?limit=100', { token: admin })).body as { action: string; target: string }[];
    assert.ok(
      audit.some((e) => e.action === 'job.create' && e.target === made.body.id),
      'the creation is audited',
    );
    assert.ok(
      audit.some((e) => e.action === 'job.completed' && e.target === made.body.id),
      'so is the end',
    );

    await setUp(s, admin, 1, 'one');
    const before = (await s.api('GET', '/api/v1/jobs?limit=100', { token: admin })).body.length;
    const refused = async (body: Record<string, unknown>, status: number, code: string, message?: RegExp) => {
      const res = await s.api('POST', '/api/v1/jobs', { token: admin, body: { name: 'bad', group: 'one', operation: { type: 'suspend' }, ...body } });
      assert.equal(res.status, status, `${JSON.stringify(body)}: ${res.text}`);
      assert.equal(res.body.error.code, code);
      if (message) assert.match(res.body.error.message, message);
    };
    await refused({ group: 'nope' }, 404, 'BULWARK_ERR_NOT_FOUND');
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'empty', kind: 'static' } })).status, 201);
    await refused({ group: 'empty' }, 400, 'BULWARK_ERR_BAD_REQUEST', /has no device to act on/);
    await setUp(s, admin, 5, 'big');
    await refused({ group: 'big' }, 400, 'BULWARK_ERR_BAD_REQUEST', /more than 4 devices.*jobs\.maxDevices/);
    await refused({ operation: { type: 'twin-patch', patch: {} } }, 400, 'BULWARK_ERR_VALIDATION', /changes nothing/);
    await refused({ operation: { type: 'command', name: 'no spaces allowed' } }, 400, 'BULWARK_ERR_VALIDATION');
    await refused({ operation: { type: 'reboot-everything' } }, 400, 'BULWARK_ERR_VALIDATION');
    await refused({ pacing: { ratePerSecond: 5000 } }, 400, 'BULWARK_ERR_VALIDATION', /jobs\.maxRatePerSecond/);
    assert.equal((await s.api('GET', '/api/v1/jobs?limit=100', { token: admin })).body.length, before, 'no refused job was made');
    assert.equal((await s.api('POST', `/api/v1/jobs/${made.body.id}/cancel`, { token: admin, body: {} })).body.error.code, 'BULWARK_ERR_JOB_STATE');
    assert.equal((await s.api('GET', '/api/v1/jobs/job_nope', { token: admin })).status, 404);
    assert.equal((await s.api('GET', '/api/v1/jobs?state=sleeping', { token: admin })).status, 400);
  });

  it("needs the operation's own scope beside jobs:write", async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    await setUp(s, admin, 1);
    const bot = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'job-bot', kind: 'service', scopes: ['jobs:read', 'jobs:write', 'twin:write'] } });
    const key = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'k', principalId: bot.body.id } });
    const token = await s.tokenFor(key.body.key);
    const denied = await s.api('POST', '/api/v1/jobs', { token, body: { name: 'x', group: 'g', operation: { type: 'decommission' } } });
    assert.equal(denied.status, 403);
    assert.match(denied.body.error.message, /devices:write/);
    assert.equal((await s.api('POST', '/api/v1/jobs', { token, body: { name: 'x', group: 'g', operation: { type: 'twin-patch', patch: { a: 1 } } } })).status, 201);
    const viewer = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'watcher', role: 'viewer' } });
    assert.equal(viewer.status, 201, viewer.text);
    const vkey = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'k', principalId: viewer.body.id } });
    const vtoken = await s.tokenFor(vkey.body.key);
    assert.equal((await s.api('GET', '/api/v1/jobs', { token: vtoken })).status, 200, 'viewers see jobs');
    assert.equal((await s.api('POST', '/api/v1/jobs', { token: vtoken, body: { name: 'x', group: 'g', operation: { type: 'suspend' } } })).status, 403);
  });

  it('times out silent devices after their retries, aborts at its failure rule, pauses and resumes, and goes on after a restart', async (t) => {
    const config = { jobs: { tickIntervalMs: 20 } };
    const first = await startTestServer(t, { config, keepRunning: true });
    const admin = await first.tokenFor(first.adminKey);
    await setUp(first, admin, 2, 'quiet');
    await setUp(first, admin, 6, 'many');
    // Nobody is connected: each command is dispatched, waits 1 s, is sent once more, and times out.
    const retried = await first.api('POST', '/api/v1/jobs', { token: admin, body: { name: 'ping', group: 'quiet', operation: { type: 'command', name: 'ping' }, deviceTimeoutMs: 1000, maxRetries: 1 } });
    const quiet = await settled(first, admin, retried.body.id);
    assert.deepEqual([quiet.state, quiet.counts.timed_out, quiet.reasons], ['completed', 2, [{ state: 'timed_out', reason: 'no_answer', count: 2 }]]);
    assert.ok(((await first.api('GET', `/api/v1/jobs/${retried.body.id}/devices`, { token: admin })).body as { attempts: number }[]).every((e) => e.attempts === 2));

    const abort = { failedPercent: 50, minFinished: 1 };
    const aborting = await first.api('POST', '/api/v1/jobs', { token: admin, body: { name: 'doomed', group: 'many', operation: { type: 'command', name: 'ping' }, deviceTimeoutMs: 1000, pacing: { maxConcurrent: 1 }, abort } });
    const aborted = await settled(first, admin, aborting.body.id);
    assert.equal(aborted.state, 'aborted');
    assert.match(aborted.reason ?? '', /1 of 1 finished devices failed or timed out \(abort at 50%\)/);
    assert.deepEqual([aborted.counts.timed_out, aborted.counts.cancelled], [1, 5]);
    assert.deepEqual(
      aborted.reasons.find((r) => r.state === 'cancelled'),
      { state: 'cancelled', reason: 'job_aborted', count: 5 },
    );

    // Paused at once (one device a second: the first may be out), resumed after a restart of the platform.
    const slow = await first.api('POST', '/api/v1/jobs', { token: admin, body: { name: 'park', group: 'quiet', operation: { type: 'suspend' }, pacing: { ratePerSecond: 1 } } });
    const paused = await first.api('POST', `/api/v1/jobs/${slow.body.id}/pause`, { token: admin, body: { reason: 'lunch' } });
    assert.equal(paused.status, 200, paused.text);
    assert.deepEqual([paused.body.state, paused.body.reason], ['paused', 'lunch']);
    const dispatched = paused.body.counts.succeeded as number;
    assert.ok(dispatched <= 1);
    await first.server.stop();
    const second = await startTestServer(t, { config, dataDir: first.dataDir, adminKey: first.adminKey });
    const token = await second.tokenFor(second.adminKey);
    assert.equal((await second.api('GET', `/api/v1/jobs/${slow.body.id}`, { token })).body.counts.succeeded, dispatched, 'nothing dispatched while paused');
    assert.equal((await second.api('POST', `/api/v1/jobs/${slow.body.id}/resume`, { token, body: {} })).status, 200);
    const done = await settled(second, token, slow.body.id);
    assert.deepEqual([done.state, done.counts.succeeded], ['completed', 2]);
    assert.deepEqual(
      done.history.map((h) => h.state),
      ['running', 'paused', 'running', 'completed'],
    );
  });
});
