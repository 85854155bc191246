import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { eventually } from '../packages/server/src/testing/eventually.js';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { parseJson, runCli, tempDir } from './support/cli.js';
import { show } from './support/devices.js';

const hhmm = (minute: number) => `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;

/**
 * Jobs over device groups through the real `bulwark` command, against a real server on port 0.
 * No device is connected: suspend and resume are done at once on the platform, and a command
 * to offline devices times out. Independent steps run side by side (each run is a process).
 */
it('creates jobs over groups, follows them to their summary, lists their devices, and cancels a slow one from the command line', { timeout: 120_000 }, async (t) => {
  const s = await startTestServer(t);
  const admin = await s.tokenFor(s.adminKey);
  const env = { BULWARK_URL: s.url, BULWARK_KEY: s.adminKey, BULWARK_CLI_CONFIG: join(tempDir(t), 'credentials.json') };
  const bulwark = (args: readonly string[]) => runCli(t, args, { env });
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await s.api(method, path, { token: admin, ...(body !== undefined ? { body } : {}) });
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
    return r.body;
  };
  const groups = { 'site-a': ['a-1', 'a-2', 'a-3'], quiet: ['q-1', 'q-2'], slow: Array.from({ length: 10 }, (_, i) => `s-${i + 1}`) };
  await Promise.all(
    Object.values(groups)
      .flat()
      .map((id) => api('POST', '/api/v1/devices', { id })),
  );
  await Promise.all(Object.entries(groups).map(([id, members]) => api('POST', '/api/v1/groups', { id, kind: 'static', members })));

  // Bad usage is refused before any request: the URL given here answers nothing.
  const nowhere = { ...env, BULWARK_URL: 'http://127.0.0.1:1' };
  const usage = await Promise.all(
    [
      ['jobs', 'create', '--group', 'site-a', '--name', 'nothing'],
      ['jobs', 'create', '--group', 'site-a', '--name', 'two', '--suspend', '--command', 'reboot'],
      ['jobs', 'create', '--group', 'site-a', '--name', 'bad', '--twin-patch', '{"sampleRateS":'],
    ].map((args) => runCli(t, args, { env: nowhere })),
  );
  for (const r of usage) assert.equal(r.code, 2, show(r));
  assert.match(usage[0]!.stderr, /BULWARK_CLI_USAGE: name what the job does, with one of --twin-patch, --command/);
  assert.match(usage[1]!.stderr, /BULWARK_CLI_USAGE: a job does one thing: --command and --suspend/);
  assert.match(usage[2]!.stderr, /BULWARK_CLI_USAGE: --twin-patch: not JSON/);

  const lifecycle = async () => {
    const suspended = await bulwark(['jobs', 'create', '--group', 'site-a', '--name', 'Suspend site A', '--suspend', '--wait']);
    assert.equal(suspended.code, 0, show(suspended));
    assert.match(suspended.stdout, /^Suspend site A \(\S+\): suspend over group site-a$/m);
    assert.match(suspended.stdout, /state\s+completed: 3 succeeded/);
    assert.match(suspended.stdout, /3\/3 finished \| 3 succeeded \| 0 failed \| 0 timed out/);
    assert.equal((await api('GET', '/api/v1/devices/a-2')).state, 'suspended');

    const minute = Math.floor((Date.now() % 86_400_000) / 60_000);
    const window = `${hhmm((minute + 1380) % 1440)}-${hhmm((minute + 60) % 1440)}`;
    const resumed = await bulwark([
      'jobs',
      'create',
      '--group',
      'site-a',
      '--name',
      'Resume site A',
      '--resume',
      '--rate',
      '20',
      '--concurrency',
      '2',
      '--window',
      window,
      '--timeout',
      '90s',
      '--retries',
      '1',
      '--abort-failed-percent',
      '50',
      '--abort-min-finished',
      '2',
      '--wait',
      '--json',
    ]);
    assert.equal(resumed.code, 0, show(resumed));
    const r = parseJson(resumed);
    assert.deepEqual([r.state, r.counts.succeeded, r.progress], ['completed', 3, { finished: 3, total: 3, percent: 100 }]);
    assert.notEqual(r.settledAt, null);
    assert.deepEqual(r.operation, { type: 'resume' });
    assert.deepEqual(r.pacing, { ratePerSecond: 20, maxConcurrent: 2, window: { startMinute: (minute + 1380) % 1440, endMinute: (minute + 60) % 1440 } });
    assert.deepEqual([r.deviceTimeoutMs, r.maxRetries, r.abort], [90_000, 1, { failedPercent: 50, minFinished: 2 }]);
  };

  const timeouts = async () => {
    const pinged = await bulwark(['jobs', 'create', '--group', 'quiet', '--name', 'Ping quiet', '--command', 'ping', '--params', '{"n": 1}', '--timeout', '1s', '--wait']);
    assert.equal(pinged.code, 1, `devices that timed out fail the wait: ${show(pinged)}`);
    assert.match(pinged.stderr, /BULWARK_CLI_JOB_FAILED: job \S+ completed: 2 timed out/);
    assert.match(pinged.stdout, /timed_out\s*│\s*no_answer\s*│\s*2/, 'the summary has the reasons table');
    const id = /^Ping quiet \((\S+)\): command ping \{"n":1\} over group quiet$/m.exec(pinged.stdout)?.[1];
    assert.ok(id, pinged.stdout);

    const shown = parseJson(await bulwark(['jobs', 'show', id, '--json']));
    assert.deepEqual(shown.operation, { type: 'command', name: 'ping', params: { n: 1 } });
    assert.deepEqual([shown.state, shown.counts.timed_out, shown.deviceTimeoutMs], ['completed', 2, 1000]);
    assert.deepEqual(shown.reasons, [{ state: 'timed_out', reason: 'no_answer', count: 2 }]);

    const devices = await bulwark(['jobs', 'devices', id, '--state', 'timed_out']);
    assert.equal(devices.code, 0, show(devices));
    for (const d of groups.quiet) assert.match(devices.stdout, new RegExp(`${d}\\s*│\\s*timed_out\\s*│\\s*1\\s*│\\s*no_answer`));
  };

  const cancelled = async () => {
    const created = await bulwark(['jobs', 'create', '--group', 'slow', '--name', 'Slow suspend', '--suspend', '--rate', '0.2', '--json']);
    assert.equal(created.code, 0, show(created));
    const job = parseJson(created);
    assert.deepEqual([job.state, job.deviceCount, job.pacing.ratePerSecond], ['running', 10, 0.2]);
    // One device every 5 s: cancel once the first is done, with most still queued (at one a second,
    // a loaded machine starting the CLI took longer than the whole job).
    await eventually(
      () => api('GET', `/api/v1/jobs/${job.id}`),
      (j) => j.counts.succeeded >= 1,
    );
    const cancel = await bulwark(['jobs', 'cancel', job.id, '--reason', 'wrong group']);
    assert.equal(cancel.code, 0, show(cancel));
    assert.match(cancel.stdout, new RegExp(`^Job ${job.id} is cancelled: wrong group`, 'm'));

    const waited = await bulwark(['jobs', 'wait', job.id]);
    assert.equal(waited.code, 0, `a cancelled job with no failed device is not a failure: ${show(waited)}`);
    assert.match(waited.stdout, /state\s+cancelled: wrong group/);
    const ended = /(\d+)\/10 finished \| (\d+) succeeded/.exec(waited.stdout);
    assert.equal(ended?.[1], '10', waited.stdout);
    const succeeded = Number(ended[2]);
    assert.ok(succeeded >= 1 && succeeded < 10, waited.stdout);
    assert.match(waited.stdout, new RegExp(`cancelled\\s*│\\s*job_cancelled\\s*│\\s*${10 - succeeded}`));

    const left = parseJson(await bulwark(['jobs', 'devices', job.id, '--state', 'cancelled', '--json']));
    assert.equal(left.length, 10 - succeeded, 'only the cancelled devices are listed');
    assert.ok(left.every((d: { state: string; reason: string }) => d.state === 'cancelled' && d.reason === 'job_cancelled'));
    return job.id as string;
  };

  // A service account limited to one group sees that group's jobs only; the limit is lifted with --all.
  const limited = async () => {
    const made = await bulwark(['users', 'create', 'site-a-bot', '--service', '--scopes', 'devices:read,jobs:read', '--device-groups', 'site-a', '--json']);
    assert.equal(made.code, 0, show(made));
    const bot = parseJson(made);
    assert.deepEqual(bot.deviceGroups, ['site-a']);
    const lifted = await bulwark(['users', 'set-device-groups', bot.id, '--all']);
    assert.equal(lifted.code, 0, show(lifted));
    assert.match(lifted.stdout, /now reaches the whole fleet/);
  };

  const [, , slowId] = await Promise.all([lifecycle(), timeouts(), cancelled(), limited()]);

  const [listed, again] = await Promise.all([bulwark(['jobs', 'list', '--json']), bulwark(['jobs', 'pause', slowId])]);
  const byName = Object.fromEntries(parseJson(listed).map((j: { name: string; state: string }) => [j.name, j.state]));
  assert.deepEqual(byName, { 'Suspend site A': 'completed', 'Resume site A': 'completed', 'Ping quiet': 'completed', 'Slow suspend': 'cancelled' });
  assert.equal(again.code, 1, show(again));
  assert.match(again.stderr, /BULWARK_ERR_JOB_STATE: cannot pause job \S+: it is cancelled/);
});
