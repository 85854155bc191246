import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BootPosture, isMessage } from '@bulwark/protocol';
import { firmwareKit, sha256, tempDir } from '@bulwark/server/testing';
import { manifestPath } from './slots.js';
import { updaterRig } from './testing-device.js';

const NOW = Date.UTC(2026, 10, 26, 12);
const DAY = 86_400_000;

describe('verified boot (A/B slots)', () => {
  it('verifies the running slot against the manifest it was installed from, after that manifest expired too, and catches a changed image', async (t) => {
    const kit = firmwareKit(tempDir(t), NOW);
    const rig = updaterRig(t, kit.rootFile, { now: NOW });
    assert.deepEqual(await rig.updater.verifyRunning(), { slot: 'a', verified: false, reason: 'no_manifest', detail: 'no signed manifest kept for slot a' }, 'a factory image without its manifest');

    const image = randomBytes(100_000);
    rig.server.put('fw_1', image, sha256(image));
    await rig.job(kit.release(image));
    await rig.until('committed');
    assert.deepEqual(await rig.updater.verifyRunning(), { slot: 'b', verified: true });
    rig.now = NOW + 400 * DAY;
    assert.deepEqual(await rig.updater.verifyRunning(), { slot: 'b', verified: true }, 'authenticity does not expire with the metadata');

    const slot = join(rig.dir, 'ota', 'slot-b.img');
    const changed = Buffer.from(readFileSync(slot));
    changed[500] = (changed[500] ?? 0) ^ 1;
    writeFileSync(slot, changed);
    assert.equal((await rig.updater.verifyRunning()).reason, 'image_hash_mismatch');
    writeFileSync(slot, image);

    const kept = manifestPath(join(rig.dir, 'ota'), 'b');
    const m = JSON.parse(readFileSync(kept, 'utf8')) as { release: { signed: { size: number } } };
    m.release.signed.size += 1;
    writeFileSync(kept, JSON.stringify(m));
    assert.equal((await rig.updater.verifyRunning()).reason, 'bad_signature', 'a manifest edited on the device no longer verifies');
    writeFileSync(kept, '{');
    assert.equal((await rig.updater.verifyRunning()).reason, 'malformed');
    writeFileSync(kept, '\u0001\n{');
    const quoted = await rig.updater.verifyRunning();
    assert.equal(quoted.reason, 'malformed');
    assert.ok(isMessage(BootPosture, quoted), `a parse error quoting control characters still fits the contract: ${JSON.stringify(quoted.detail)}`);
  });

  it('fails an image installed over the air whose kept manifest was deleted: only a factory image may lack one', async (t) => {
    const kit = firmwareKit(tempDir(t), NOW);
    const rig = updaterRig(t, kit.rootFile, { now: NOW });
    const image = randomBytes(50_000);
    rig.server.put('fw_1', image, sha256(image));
    await rig.job(kit.release(image));
    await rig.until('committed');
    writeFileSync(join(rig.dir, 'ota', 'slot-b.img'), randomBytes(50_000));
    rmSync(manifestPath(join(rig.dir, 'ota'), 'b'));
    const b = await rig.updater.verifyRunning();
    assert.equal(b.verified, false);
    assert.equal(b.reason, 'manifest_missing', 'a swapped image with its manifest deleted is not a factory image that was never checked');
  });

  it("verifies a factory image once its release's signed manifest is placed beside the slots, and catches a factory image changed after", async (t) => {
    const kit = firmwareKit(tempDir(t), NOW);
    const rig = updaterRig(t, kit.rootFile, { now: NOW });
    const image = randomBytes(60_000);
    const ota = join(rig.dir, 'ota');
    mkdirSync(ota, { recursive: true });
    writeFileSync(join(ota, 'slot-a.img'), image);
    writeFileSync(manifestPath(ota, 'a'), JSON.stringify(kit.release(image, { version: '1.0.0', securityVersion: 4 })));
    assert.deepEqual(await rig.updater.verifyRunning(), { slot: 'a', verified: true });
    image[10] = (image[10] ?? 0) ^ 1;
    writeFileSync(join(ota, 'slot-a.img'), image);
    assert.equal((await rig.updater.verifyRunning()).reason, 'image_hash_mismatch');
  });
});
