import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { firmwareKit, uploadFirmware } from '../packages/server/src/testing/firmware.js';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { parseJson, runCli, tempDir } from './support/cli.js';
import { show } from './support/devices.js';

/**
 * A rollout rehearsal with `bulwark simulate`: virtual devices running the agent's real A/B
 * updater (signed manifest checked against the pinned root keys, the image downloaded over
 * mutual TLS, slots on disk, reboot, health check, commit or revert), 8 % of them failing the
 * new image's health check, against a real server with a real signed release.
 */
it('rehearses a rollout on virtual devices: the healthy commit, the 8 % made to fail revert, readings keep flowing', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const kit = firmwareKit(dir);
  const s = await startTestServer(t, { config: { ota: { rootKeysFile: kit.rootFile, tickIntervalMs: 200, deviceTimeoutMs: 120_000 }, rateLimit: { perPrincipalPerMinute: 100_000, perAddressPerMinute: 100_000 } } });
  const admin = await s.tokenFor(s.adminKey);
  const image = randomBytes(16_384);
  const uploaded = await uploadFirmware(s, admin, kit.release(image), image);
  assert.ok(uploaded.status < 300, uploaded.text);
  const artifactId = (uploaded.body as { id: string }).id;
  writeFileSync(
    join(dir, 'rehearsal.yaml'),
    [
      'name: rehearsal',
      'devices: 25',
      'duration: 30s',
      'drain: 60s',
      'profiles:',
      '  - { name: gw, schema: sim-gw@1, interval: 2s, fields: { load: { mean: 0.4, sigma: 0.1 } } }',
      'firmware: { rootKeys: firmware-root.json, model: gw-1, hardwareRevision: C, version: 1.0.0, securityVersion: 4 }',
      'actions:',
      `  - { at: 3s, rollout: { artifact: ${artifactId}, strategy: { waves: [{ percent: 100 }] }, gates: { minDevices: 1, onFailure: pause }, failHealth: 8% } }`,
      'targets: { delivered: 100 }',
      '',
    ].join('\n'),
  );
  const env = { BULWARK_URL: s.url, BULWARK_KEY: s.adminKey, BULWARK_CLI_CONFIG: join(dir, 'credentials.json') };
  const run = await runCli(t, ['simulate', '--scenario', join(dir, 'rehearsal.yaml'), '--mqtt', `mqtts://localhost:${s.server.mqttPort}`, '--device-https', `https://localhost:${s.server.deviceHttpPort}`, '--out', join(dir, 'report'), '--json'], {
    env,
    timeoutMs: 170_000,
  });
  assert.equal(run.code, 0, show(run));
  const report = parseJson(run);
  assert.ok(report.rollout, run.stderr);
  assert.equal(report.rollout.failHealth, 2);
  assert.deepEqual([report.rollout.totals.total, report.rollout.totals.committed, report.rollout.totals.failed], [25, 23, 2], JSON.stringify(report.rollout));
  // Every device rebooted into the new image; the two that failed its health check rebooted back.
  assert.equal(report.reboots, 25 + 2);
  assert.equal(report.figures.deliveredPercent, 100);
  assert.match(readFileSync(join(dir, 'report', 'report.md'), 'utf8'), /Rollout .*: completed.*committed 23.*failed 2.*2 devices were made to fail/);
  const fleet = (await s.api('GET', '/api/v1/devices?tag=simulated&limit=100', { token: admin })).body as { firmwareVersion: string | null }[];
  assert.deepEqual(
    fleet
      .map((d) => d.firmwareVersion)
      .sort()
      .reduce<Record<string, number>>((n, v) => ({ ...n, [String(v)]: (n[String(v)] ?? 0) + 1 }), {}),
    { '1.0.0': 2, '2.0.0': 23 },
  );
});
