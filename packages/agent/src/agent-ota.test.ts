import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { OtaPersisted } from './ota/state.js';
import { DeviceProcess, randomImage, sha256, startOtaPlatform } from './testing/ota-platform.js';
import { until } from './testing/platform.js';

const readState = (dataDir: string) => JSON.parse(readFileSync(join(dataDir, 'ota', 'state.json'), 'utf8')) as OtaPersisted;

/** Exactly one good version: no trial pending, the committed slot holds the bytes its record names, the job is settled. */
function assertOneGoodVersion(dataDir: string, expect: { version: string; sha256: string | null }, what: string) {
  const s = readState(dataDir);
  assert.equal(s.trial, null, `${what}: no trial boot pending`);
  const img = s.slots[s.committed];
  assert.equal(img?.version, expect.version, `${what}: committed version`);
  assert.equal(img?.sha256 ?? null, expect.sha256, `${what}: committed image`);
  if (expect.sha256) assert.equal(sha256(readFileSync(join(dataDir, 'ota', `slot-${s.committed}.img`))), expect.sha256, `${what}: the slot holds those bytes`);
  assert.ok(s.job && ['committed', 'rolled-back'].includes(s.job.state), `${what}: job settled (${s.job?.state})`);
  return s;
}

describe('agent updates through the platform, with power cuts', () => {
  for (const bootloader of [false, true])
    it(`kill -9 at each update state ends on exactly one bootable, committed version${bootloader ? ' (with a U-Boot-like bootloader that counts boots and falls back by itself)' : ''}`, { timeout: 300_000 }, async (t) => {
      const p = await startOtaPlatform(t);
      const image = randomImage(2 * 1024 * 1024);
      const artifactId = await p.publish(image);
      const bytesServed = () => p.metric(/bulwark_firmware_bytes_served_total (\d+)/);
      const points = ['queued', 'downloading@50', 'verifying', 'installing@50', 'rebooting', 'verifying-health', 'committed'];
      for (const killAt of points) {
        const id = `cut-${bootloader ? 'uboot-' : ''}${killAt.replace('@', '-')}`;
        const { configFile, dataDir } = await p.device(id);
        const device = new DeviceProcess(configFile, { KILL_AT: killAt }, bootloader ? { dataDir } : undefined);
        t.after(() => device.stop());
        device.start();
        await until(`${id} online`, () => device.lines.includes('online'), 30_000);
        const served = await bytesServed();
        const rolloutId = await p.rollout(artifactId, [id]);
        // What the server handed to the socket before the cut (much of it never reached the device's disk).
        let servedAtCut = 0;
        let settled = false;
        const cut = until('the power cut', () => settled || existsSync(join(dataDir, 'killed.marker')), 120_000).then(async () => (servedAtCut = (await bytesServed()) - served));
        const end = await p.settled(rolloutId, id);
        settled = true;
        await cut;
        await device.stop();
        const servedNow = (await bytesServed()) - served;
        const afterCut = servedNow - servedAtCut;
        console.log(
          `kill -9 at ${killAt}${bootloader ? ' (bootloader)' : ''}: ${device.starts} starts${bootloader ? ` booting ${device.booted.join(',')}` : ''}, ended ${end.state}; bytes served ${servedAtCut} before the cut, ${afterCut} after, for a ${image.length}-byte image`,
        );
        assert.equal(readFileSync(join(dataDir, 'killed.marker'), 'utf8'), killAt, `${killAt}: the device lost power there`);
        assert.equal(end.state, 'committed', `${killAt}: ${end.reason ?? ''}\n${device.lines.join('\n')}`);
        const s = assertOneGoodVersion(dataDir, { version: '2.0.0', sha256: sha256(image) }, killAt);
        assert.equal(s.minSecurityVersion, 5);
        assert.equal(s.slots[s.committed === 'a' ? 'b' : 'a']?.version, '1.0.0', `${killAt}: the other slot still holds the old version`);
        if (killAt === 'downloading@50') assert.ok(afterCut > 0 && afterCut <= image.length / 2 + 256 * 1024, `the download resumed from at least half way (${afterCut} bytes after the cut)`);
        else if (servedAtCut > 0) assert.equal(afterCut, 0, `${killAt}: nothing fetched again once the image was held`);
        if (bootloader) {
          const env = JSON.parse(readFileSync(join(dataDir, 'bootenv.json'), 'utf8')) as { bootPart: string; upgradeAvailable: boolean };
          assert.deepEqual([env.bootPart, env.upgradeAvailable], [s.committed, false], `${killAt}: the bootloader starts the committed slot, with no trial pending (boots: ${device.booted.join(' ')})`);
          assert.equal(device.booted.at(-1), s.committed, `${killAt}: the last start ran the committed slot`);
        }
        const registry = (await p.s.api('GET', `/api/v1/devices/${id}`, { token: p.admin })).body as { firmwareVersion: string; securityVersion: number };
        assert.deepEqual([registry.firmwareVersion, registry.securityVersion], ['2.0.0', 5]);
      }
    });

  it('reverts a new image that fails its health check on its own, reports it, and the rollout stops', { timeout: 120_000 }, async (t) => {
    const p = await startOtaPlatform(t);
    const broken = randomImage(256 * 1024, 'BROKEN');
    const artifactId = await p.publish(broken, { version: '2.1.0', securityVersion: 6 });
    const { configFile, dataDir } = await p.device('gw-broken');
    const device = new DeviceProcess(configFile);
    t.after(() => device.stop());
    device.start();
    await until('gw-broken online', () => device.lines.includes('online'), 30_000);
    const rolloutId = await p.rollout(artifactId, ['gw-broken'], { maxFailures: 0 });
    const end = await p.settled(rolloutId, 'gw-broken');
    assert.deepEqual([end.state, end.reason], ['rolled-back', 'health_check_failed'], device.lines.join('\n'));
    await until('the device is back on the old image', () => device.starts === 3 && device.lines.filter((l) => l === 'online').length === 3, 30_000);
    await device.stop();
    const s = assertOneGoodVersion(dataDir, { version: '1.0.0', sha256: null }, 'health check failed');
    assert.equal(s.committed, 'a');
    assert.equal(s.minSecurityVersion, 4, 'the floor stays where it was');
    assert.equal(device.starts, 3, 'first start, the reboot into the new image, the reboot back');
    const view = (await p.s.api('GET', `/api/v1/rollouts/${rolloutId}`, { token: p.admin })).body as { state: string; reason: string };
    assert.equal(view.state, 'paused');
    assert.match(view.reason, /failure gate/);
  });
});
