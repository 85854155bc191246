import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { ROOT, parseJson, runCli, tempDir } from './support/cli.js';
import { show } from './support/devices.js';

const LIMITS = { rateLimit: { perPrincipalPerMinute: 100_000, perAddressPerMinute: 100_000 } };

/**
 * `bulwark simulate` as an operator runs it, against a real server: the shipped smoke scenario
 * (20 virtual devices running the real agent in two processes, misbehaving and skewed ones, a command, a twin
 * change, a phase of latency, jitter and resets through the impairment proxy), its report's
 * figures checked against what the platform holds.
 */
describe('bulwark simulate', () => {
  it('runs the smoke scenario: every reading sent is stored once, commands answered, the report and its verdict written', { timeout: 120_000 }, async (t) => {
    const s = await startTestServer(t, { config: LIMITS });
    const out = tempDir(t);
    const env = { BULWARK_URL: s.url, BULWARK_KEY: s.adminKey, BULWARK_CLI_CONFIG: join(out, 'credentials.json') };
    const run = await runCli(t, ['simulate', '--scenario', join(ROOT, 'examples/scenarios/smoke.yaml'), '--mqtt', `mqtts://localhost:${s.server.mqttPort}`, '--out', out, '--workers', '2', '--json'], { env });
    assert.equal(run.code, 0, show(run));
    const report = parseJson(run);
    assert.deepEqual([report.devices, report.workers], [20, 2]);
    assert.ok(report.sent >= 20 * 15, `sent ${report.sent}`);
    assert.deepEqual([report.stored, report.storedTwice, report.strangers, report.queuedAtEnd, report.gaps], [report.sent, 0, 0, 0, 0]);
    assert.equal(report.figures.deliveredPercent, 100);
    assert.ok(report.badSent > 0, 'the misbehaving devices sent what the platform must refuse');
    assert.ok(report.platform.deadLetters >= report.badSent, `dead letters ${report.platform.deadLetters} for ${report.badSent} bad messages`);
    assert.deepEqual([report.commands.issued, report.commands.succeeded, report.twinChanges, report.configsApplied], [10, 10, 5, 5]);
    assert.equal(report.proxy.used, true);
    assert.ok(report.timeline.length >= 15 && report.timeline.some((x: { online: number }) => x.online === 20), 'one sample a second, all devices online');
    // The peak is each process's own maximum (this one and the worker), never below what a sample saw.
    const sampled = Math.max(...report.timeline.map((x: { rssBytes: number }) => x.rssBytes));
    assert.ok(report.resources.peakRssBytes >= sampled && sampled > 0, `peak ${report.resources.peakRssBytes}, samples up to ${sampled}`);
    assert.ok(
      report.verdicts.every((v: { met: boolean }) => v.met),
      JSON.stringify(report.verdicts),
    );
    assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /^# Simulation smoke: 20 devices, 20 s\n\n\*\*PASS: /);
    assert.match(readFileSync(join(out, 'report.svg'), 'utf8'), /^<svg [^>]*>[\s\S]*devices online[\s\S]*<\/svg>\n$/);
    assert.ok(existsSync(join(out, 'report.json')));

    // What the report says is what the platform holds: the run's devices, onboarded with certificates.
    const admin = await s.tokenFor(s.adminKey);
    const devices = (await s.api('GET', '/api/v1/devices?tag=simulated&limit=100', { token: admin })).body as { id: string; state: string }[];
    assert.equal(devices.length, 20);
    assert.ok(
      devices.every((d) => d.state === 'active'),
      JSON.stringify(devices.map((d) => d.state)),
    );
  });

  it('refuses a scenario with unknown keys or impossible rates, and a server it cannot authenticate to, listing every problem before starting', { timeout: 60_000 }, async (t) => {
    const s = await startTestServer(t, { config: LIMITS });
    const dir = tempDir(t);
    const env = { BULWARK_URL: s.url, BULWARK_KEY: s.adminKey, BULWARK_CLI_CONFIG: join(dir, 'credentials.json') };
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'name: bad\ndevices: 100000\ndevice: 3\nprofiles:\n  - interval: 100ms\n    fields: { t: { mean: 1, sigma: "wide" } }\nphases:\n  - at: 5s\n');
    const refused = await runCli(t, ['simulate', '--scenario', bad, '--mqtt', `mqtts://localhost:${s.server.mqttPort}`], { env });
    assert.equal(refused.code, 2, show(refused));
    for (const problem of [/device: unknown key/, /profiles\[0\]\.interval: 1000000 readings\/s/, /profiles\[0\]\.fields\.t\.sigma: must be a number/, /phases\[0\]\.at: the first phase starts at 0s/]) {
      assert.match(refused.stderr, problem);
    }
    const noAuth = await runCli(t, ['simulate', '--devices', '2', '--duration', '5s', '--mqtt', 'mqtt://nowhere'], { env: { ...env, BULWARK_KEY: 'bwk_not-a-real-key' } });
    assert.equal(noAuth.code, 2, show(noAuth));
    assert.match(noAuth.stderr, /--mqtt mqtt:\/\/nowhere: must be mqtts:\/\/host:port/);
    assert.match(noAuth.stderr, /cannot authenticate to/);
    const admin = await s.tokenFor(s.adminKey);
    assert.deepEqual((await s.api('GET', '/api/v1/devices?limit=10', { token: admin })).body, [], 'nothing was created');
  });
});
