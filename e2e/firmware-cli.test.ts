import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { connectDevice, enrollDevice } from '../packages/server/src/testing/devices.js';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { parseJson, runCli, spawnCli, tempDir } from './support/cli.js';
import { show } from './support/devices.js';

/**
 * The firmware operator's day through the real `bulwark` command: a 2-of-3 root key
 * ceremony, a release key delegated by two holders in turn, signing and local verification,
 * upload (one refused), and a rollout to a device over mutual TLS that reports its update
 * to committed; then pause, resume and abort by hand.
 */
it('runs the key ceremony, signs, verifies, uploads and rolls out firmware from the command line', { timeout: 360_000 }, async (t) => {
  const dir = tempDir(t);
  const f = (name: string) => join(dir, name);
  const s = await startTestServer(t, { config: { ota: { rootKeysFile: f('root.json'), tickIntervalMs: 0 } } });
  const env = { BULWARK_URL: s.url, BULWARK_KEY: s.adminKey, BULWARK_CLI_CONFIG: f('credentials.json') };
  const bulwark = (args: readonly string[]) => runCli(t, args, { env });
  const ok = async (args: readonly string[]) => {
    const r = await bulwark(args);
    assert.equal(r.code, 0, `bulwark ${args.join(' ')}: ${show(r)}`);
    return r;
  };

  for (const k of ['root1', 'root2', 'root3', 'release']) await ok(['firmware', 'keygen', '--out', f(`${k}.key`)]);
  assert.equal(statSync(f('root1.key')).mode & 0o777, 0o600);
  await ok(['firmware', 'root', '--key', f('root1.key.pub.json'), '--key', f('root2.key.pub.json'), '--key', f('root3.key.pub.json'), '--threshold', '2', '--out', f('root.json')]);
  await ok(['firmware', 'delegate', '--root-key', f('root1.key'), '--release-key', f('release.key.pub.json'), '--out', f('one-signature.json')]);
  const both = await ok(['firmware', 'delegate', '--in', f('one-signature.json'), '--root-key', f('root3.key'), '--out', f('delegation.json')]);
  assert.match(both.stdout, /2 root signature/);

  writeFileSync(f('image.bin'), randomBytes(50_000));
  const release = ['--key', f('release.key'), '--name', 'gw-fw', '--release-version', '2.0.0', '--security-version', '5', '--model', 'gw-1', '--hw-rev', 'B,C'];
  await ok(['firmware', 'sign', f('image.bin'), ...release, '--delegation', f('delegation.json'), '--out', f('manifest.json')]);
  await ok(['firmware', 'sign', f('image.bin'), ...release, '--delegation', f('one-signature.json'), '--out', f('weak.json')]);
  const verified = await ok(['firmware', 'verify', f('image.bin'), '--manifest', f('manifest.json'), '--root', f('root.json'), '--model', 'gw-1', '--hw-rev', 'C', '--json']);
  assert.equal(parseJson(verified).ok, true);
  writeFileSync(f('tampered.bin'), randomBytes(50_000));
  const tampered = await bulwark(['firmware', 'verify', f('tampered.bin'), '--manifest', f('manifest.json'), '--root', f('root.json')]);
  assert.equal(tampered.code, 1, show(tampered));
  assert.match(tampered.stderr, /refused \(image_hash_mismatch\)/);
  const weak = await bulwark(['firmware', 'verify', f('image.bin'), '--manifest', f('weak.json'), '--root', f('root.json')]);
  assert.match(weak.stderr, /refused \(root_threshold_not_met\)/);
  const wrongBoard = await bulwark(['firmware', 'verify', f('image.bin'), '--manifest', f('manifest.json'), '--root', f('root.json'), '--model', 'gw-2', '--hw-rev', 'C']);
  assert.match(wrongBoard.stderr, /refused \(wrong_hardware\)/);

  // Root rotation: holders of two current root keys and of two new ones sign version 2 in turn; a manifest carrying it verifies against the old pinned root.
  for (const k of ['new1', 'new2']) await ok(['firmware', 'keygen', '--out', f(`${k}.key`)]);
  const half = await ok(['firmware', 'rotate-root', '--root', f('root.json'), '--key', f('new1.key.pub.json'), '--key', f('new2.key.pub.json'), '--threshold', '2', '--sign-key', f('root1.key'), '--sign-key', f('new1.key'), '--out', f('rotation-half.json')]);
  assert.match(half.stdout, /not complete yet: .*signed by 1 of the 2 keys of version 1/);
  const rotated = await ok(['firmware', 'rotate-root', '--root', f('root.json'), '--in', f('rotation-half.json'), '--sign-key', f('root2.key'), '--sign-key', f('new2.key'), '--out', f('rotation.json'), '--root-out', f('root-v2.json')]);
  assert.match(rotated.stdout, /Root rotation to version 2 .* 4 signature\(s\)[\s\S]*complete/);
  await ok(['firmware', 'delegate', '--root-key', f('new1.key'), '--root-key', f('new2.key'), '--release-key', f('release.key.pub.json'), '--counter', '2', '--out', f('delegation-v2.json')]);
  await ok(['firmware', 'sign', f('image.bin'), ...release, '--delegation', f('delegation-v2.json'), '--root-rotation', f('rotation.json'), '--out', f('manifest-v2.json')]);
  for (const root of ['root.json', 'root-v2.json']) assert.equal(parseJson(await ok(['firmware', 'verify', f('image.bin'), '--manifest', f('manifest-v2.json'), '--root', f(root), '--json'])).ok, true, root);
  const retired = await bulwark(['firmware', 'verify', f('image.bin'), '--manifest', f('manifest.json'), '--root', f('root-v2.json')]);
  assert.match(retired.stderr, /refused \(root_threshold_not_met\)/, 'the retired root keys no longer count');

  const refused = await bulwark(['firmware', 'upload', f('image.bin'), '--manifest', f('weak.json')]);
  assert.equal(refused.code, 1, show(refused));
  assert.match(refused.stderr, /BULWARK_ERR_FIRMWARE_REFUSED: firmware refused \(root_threshold_not_met\)/);
  const artifact = parseJson(await ok(['firmware', 'upload', f('image.bin'), '--manifest', f('manifest.json'), '--json']));
  assert.equal(artifact.state, 'published');
  assert.deepEqual(
    parseJson(await ok(['firmware', 'list', '--json'])).map((a: { id: string }) => a.id),
    [artifact.id],
  );

  // A device that answers its job: every state of the update, then committed.
  const admin = await s.tokenFor(s.adminKey);
  const device = await connectDevice(s, await enrollDevice(s, admin, 'gw-7', { model: 'gw-1', hardwareRevision: 'C', firmwareVersion: '1.0.0' }));
  t.after(() => device.end(true));
  await enrollDevice(s, admin, 'gw-8', { model: 'gw-1', hardwareRevision: 'B', firmwareVersion: '1.0.0' });
  const committed = new Promise<void>((resolve) => {
    device.on('message', (_topic, payload) => {
      const job = JSON.parse(payload.toString()) as { jobId: string };
      void (async () => {
        for (const state of ['queued', 'downloading', 'verifying', 'installing', 'rebooting', 'verifying-health', 'committed']) {
          await device.publishAsync('devices/gw-7/ota/status', JSON.stringify({ jobId: job.jobId, state, ts: Date.now(), ...(state === 'committed' ? { firmware: { version: '2.0.0', securityVersion: 5 } } : {}) }), { qos: 1 });
        }
        resolve();
      })();
    });
  });
  await device.subscribeAsync('devices/gw-7/ota/job', { qos: 1 });
  const first = parseJson(await ok(['rollout', 'create', '--firmware', artifact.id, '--name', 'gw 2.0.0 pilot', '--devices', 'gw-7', '--waves', '100%', '--min-devices', '1', '--json']));
  assert.equal(first.totals.total, 1);
  await committed;
  await s.server.ota.rollouts.idle();
  const status = await ok(['rollout', 'status', first.id]);
  assert.match(status.stdout, /state\s+completed: all 1 waves finished; 1 devices committed/);
  assert.match(status.stdout, /1\/1 committed/);
  assert.deepEqual(parseJson(await ok(['devices', 'show', 'gw-7', '--json'])).firmwareVersion, '2.0.0');

  // gw-8 is offline: its rollout waits, is paused, resumed and aborted by hand, with reasons.
  const second = parseJson(await ok(['rollout', 'create', '--firmware', artifact.id, '--name', 'rest', '--model', 'gw-1', '--canary', 'gw-8', '--on-failure', 'abort', '--window', '00:00-23:59', '--json']));
  assert.equal(second.totals.total, 1, 'gw-7 is already on 2.0.0');
  assert.match(second.history[0].reason, /1 already on 2\.0\.0/);
  const watch = spawnCli(t, ['rollout', 'status', second.id, '--watch', '--interval', '1', '--json'], { env });
  await ok(['rollout', 'pause', second.id, '--reason', 'change freeze']);
  const watched = await watch.closed;
  assert.equal(watched.code, 0, show(watched));
  assert.equal(parseJson(watched).state, 'paused', 'the watch ends when the rollout stops running');
  assert.match((await ok(['rollout', 'status', second.id])).stdout, /state\s+paused: change freeze/);
  await ok(['rollout', 'resume', second.id, '--reason', 'freeze over']);
  const aborted = parseJson(await ok(['rollout', 'abort', second.id, '--reason', 'superseded by 2.0.1', '--json']));
  assert.deepEqual([aborted.state, aborted.reason], ['aborted', 'superseded by 2.0.1']);
  const again = await bulwark(['rollout', 'resume', second.id, '--reason', 'oops']);
  assert.match(again.stderr, /BULWARK_ERR_ROLLOUT_STATE/);
  const list = parseJson(await ok(['rollout', 'list', '--json']));
  assert.deepEqual(
    list.map((r: { state: string }) => r.state),
    ['aborted', 'completed'],
  );
  const audit = (await s.api('GET', '/api/v1/audit?action=rollout.abort', { token: admin })).body;
  assert.equal(audit[0].details.reason, 'superseded by 2.0.1');
});
