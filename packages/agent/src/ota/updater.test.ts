import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type FirmwareManifest, type RootKeySet, delegateReleaseKeys, generateFirmwareKey, rootKeySet, rotateRoot, signFirmwareBody, signRelease } from '@bulwark/protocol';
import { firmwareKit, sha256, tempDir } from '@bulwark/server/testing';
import { FileSlotStore } from './slots.js';
import { bootPlan, bootSelect, factoryState } from './state.js';
import { type UpdaterRig, updaterRig } from './testing-device.js';

const NOW = Date.UTC(2026, 10, 26, 12);
const DAY = 86_400_000;

function setup(t: Parameters<typeof updaterRig>[0], options: Omit<Parameters<typeof updaterRig>[2], 'now'> = {}) {
  const kit = firmwareKit(tempDir(t), NOW);
  const rig = updaterRig(t, kit.rootFile, { now: NOW, ...options });
  const image = randomBytes(300_000);
  rig.server.put('fw_1', image, sha256(image));
  return { kit, rig, image, manifest: kit.release(image) };
}

const slotBytes = (dir: string, slot: string) => readFileSync(join(dir, 'ota', `slot-${slot}.img`));
const states = (rig: UpdaterRig, jobId?: string) => [...new Set(rig.statuses.filter((s) => jobId === undefined || s.jobId === jobId).map((s) => s.state))];

/** Nothing changed on the device: factory slot committed, no trial, floors where they were. */
function assertUntouched(rig: UpdaterRig, what: string) {
  const s = rig.updater.state;
  assert.equal(s.committed, 'a', what);
  assert.equal(s.trial, null, what);
  assert.equal(s.minSecurityVersion, 4, what);
  assert.equal(rig.updater.running().version, '1.0.0', what);
  assert.equal(rig.reboots, 0, what);
}

describe('the agent updater', () => {
  it('goes queued → downloading → verifying → installing → rebooting → verifying-health → committed, and raises the floors only at commit', async (t) => {
    const { rig, image, manifest } = setup(t);
    await rig.job(manifest);
    const committed = await rig.until('committed');
    assert.deepEqual(states(rig), ['queued', 'downloading', 'verifying', 'installing', 'rebooting', 'verifying-health', 'committed']);
    assert.deepEqual(committed.firmware, { version: '2.0.0', securityVersion: 5 });
    const s = rig.updater.state;
    assert.equal(s.committed, 'b');
    assert.equal(s.trial, null);
    assert.equal(s.minSecurityVersion, 5);
    assert.equal(s.delegationVersion, 1);
    assert.deepEqual(slotBytes(rig.dir, 'b'), image);
    assert.equal(rig.reboots, 1);
    assert.equal(existsSync(join(rig.dir, 'ota', 'download.img')), false, 'the download is dropped once the slot holds it');

    // The same job again (a redelivery) is not started twice; a retry under a new id of what already runs is committed at once.
    const before = rig.statuses.length;
    await rig.updater.onJob(Buffer.from(JSON.stringify({ jobId: 'job_1', rolloutId: 'ro_1', artifactId: 'fw_1', url: '/v1/firmware/fw_1', manifest, issuedAt: NOW, attempt: 1 })));
    assert.equal(rig.reboots, 1);
    await rig.job(manifest, 'fw_1', 'job_again');
    assert.deepEqual(states(rig, 'job_again'), ['queued', 'committed']);
    assert.ok(rig.statuses.length > before);
    assert.equal(rig.reboots, 1, 'no second install of the running image');
  });

  it('refuses every TUF/Uptane-style attack with its own reason and leaves the device on the committed version', async (t) => {
    const { kit, rig, image, manifest: good } = setup(t);
    const other = randomBytes(300_000);
    const cases: [string, FirmwareManifest, Buffer | { trailing: number }, string][] = [
      ['unsigned image', { ...good, release: { ...good.release, signatures: [] } }, image, 'unsigned'],
      ['wrong key', { ...good, release: { ...good.release, signatures: [signFirmwareBody(good.release.signed, generateFirmwareKey().privateKeyPem)] } }, image, 'untrusted_key'],
      ['valid signature over a tampered image', good, Buffer.concat([image.subarray(0, 1000), Buffer.from([image[1000]! ^ 1]), image.subarray(1001)]), 'image_hash_mismatch'],
      ['older validly-signed version (security rollback)', kit.release(image, { version: '2.1.0', securityVersion: 3 }), image, 'rollback'],
      ['older version (downgrade)', kit.release(image, { version: '0.9.0' }), image, 'downgrade'],
      ['replayed expired metadata (freeze)', kit.release(image, { expires: NOW - 1 }), image, 'expired'],
      ['metadata of one release with the image of another', kit.release(other, { version: '2.0.1' }), image, 'image_hash_mismatch'],
      ['a download longer than declared (endless data)', good, { trailing: 50_000 }, 'image_too_long'],
      ['one stolen root key below the threshold', { ...good, delegation: delegateReleaseKeys({ version: 9, expires: NOW + DAY, keys: [kit.releaseKey] }, [kit.roots[2]!.privateKeyPem]) }, image, 'root_threshold_not_met'],
      ['wrong hardware target', kit.release(image, { hardware: { model: 'gw-1', hardwareRevisions: ['D'] } }), image, 'wrong_hardware'],
    ];
    let n = 0;
    for (const [name, manifest, served, reason] of cases) {
      const id = `fw_attack${++n}`;
      rig.server.trailing = 0;
      if (Buffer.isBuffer(served)) rig.server.put(id, served, manifest.release.signed.sha256);
      else {
        rig.server.put(id, image, sha256(image));
        rig.server.trailing = served.trailing;
      }
      await rig.job(manifest, id, `job_${id}`);
      const failed = await rig.until('failed', `job_${id}`);
      assert.equal(failed.reason, reason, `${name}: ${failed.detail ?? ''}`);
      assert.ok(failed.detail, name);
      assertUntouched(rig, name);
    }
  });

  it('calls an image of a release it already holds a mix-and-match', async (t) => {
    const { kit, rig, image, manifest } = setup(t);
    await rig.job(manifest);
    await rig.until('committed');
    const next = randomBytes(image.length);
    rig.server.put('fw_2', image, sha256(next));
    await rig.job(kit.release(next, { version: '2.0.1' }), 'fw_2', 'job_mix');
    assert.equal((await rig.until('failed', 'job_mix')).reason, 'mix_and_match');
    assert.equal(rig.updater.running().version, '2.0.0');
  });

  it('refuses a delegation older than the newest committed one (a rotated-out release key)', async (t) => {
    const { kit, rig, image } = setup(t);
    const newer = delegateReleaseKeys({ version: 2, expires: NOW + DAY, keys: [kit.releaseKey] }, [kit.roots[0]!.privateKeyPem, kit.roots[2]!.privateKeyPem]);
    const body = { name: 'gw-fw', version: '2.0.0', securityVersion: 5, hardware: { model: 'gw-1', hardwareRevisions: ['C'] }, size: image.length, sha256: sha256(image), issuedAt: NOW, expires: NOW + DAY };
    await rig.job(signRelease(body, kit.releaseKey.privateKeyPem, newer));
    await rig.until('committed');
    await rig.job(kit.release(image, { version: '2.0.2' }), 'fw_1', 'job_old_delegation');
    const failed = await rig.until('failed', 'job_old_delegation');
    assert.equal(failed.reason, 'rollback');
    assert.match(failed.detail ?? '', /delegation 1 is older than 2/);
  });

  it('resumes a download cut at 50 % from where it stopped (Range), fetching each byte once', async (t) => {
    const { rig, image, manifest } = setup(t);
    rig.server.cutNextAt = image.length / 2;
    await rig.job(manifest);
    await rig.until('committed');
    const [first, second] = rig.server.requests;
    assert.equal(first?.from, 0);
    assert.ok(second && second.from >= image.length / 2 - 16_384 && second.from <= image.length / 2, `resumed at ${second?.from}`);
    assert.ok(rig.server.bytesServed <= image.length + 16_384, `${rig.server.bytesServed} bytes served for a ${image.length}-byte image`);
    assert.deepEqual(slotBytes(rig.dir, 'b'), image);
  });

  it('reverts a new image that fails its health check, and reports it', async (t) => {
    const { rig, manifest } = setup(t);
    rig.healthy = false;
    await rig.job(manifest);
    const back = await rig.until('rolled-back');
    assert.equal(back.reason, 'health_check_failed');
    assert.deepEqual(back.firmware, { version: '1.0.0', securityVersion: 4 });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(rig.reboots, 2, 'one reboot into the new image, one back');
    assert.equal(rig.updater.state.committed, 'a');
    assert.equal(rig.updater.state.trial, null);
    assert.equal(rig.updater.state.minSecurityVersion, 4, 'the floor is not raised by an image that was not committed');
    assert.equal(rig.updater.running().version, '1.0.0');
  });

  it('reverts a new image that never reports within the health window', async (t) => {
    const { rig, manifest } = setup(t);
    rig.healthy = null;
    await rig.job(manifest);
    await rig.until('verifying-health');
    assert.equal(rig.windows.length, 1);
    rig.windows[0]!();
    assert.equal((await rig.until('rolled-back')).reason, 'health_check_failed');
    assert.equal(rig.updater.running().version, '1.0.0');
  });

  it('falls back to the committed slot when the new image crashes on every boot (bootcount)', () => {
    let s = factoryState({ version: '1.0.0', securityVersion: 4 });
    s = { ...s, slots: { ...s.slots, b: { version: '2.0.0', securityVersion: 5, sha256: 'x', size: 1 } }, trial: { slot: 'b', boots: 0 } };
    for (let boot = 1; boot <= 3; boot += 1) {
      const r = bootSelect(s, 3);
      assert.equal(r.fellBack, false);
      assert.equal(r.state.trial?.boots, boot);
      s = r.state;
    }
    const r = bootSelect(s, 3);
    assert.equal(r.fellBack, true);
    assert.equal(r.state.trial, null);
    assert.equal(r.state.committed, 'a');
  });

  it('refuses malformed jobs and a job that points elsewhere, and stays idle', async (t) => {
    const { rig, manifest } = setup(t);
    const bad = [
      'not json',
      JSON.stringify([1]),
      JSON.stringify({ jobId: 'j1' }),
      JSON.stringify({ jobId: 'j2', rolloutId: 'r', artifactId: 'fw_1', url: 'https://evil.example/fw', manifest, issuedAt: NOW, attempt: 1 }),
      JSON.stringify({ jobId: 'j3', rolloutId: 'r', artifactId: 'fw_1', url: '/v1/firmware/fw_1', manifest, issuedAt: NOW, attempt: 1, extra: true }),
      JSON.stringify({ jobId: 'j4', rolloutId: 'r', artifactId: '../x', url: '/v1/firmware/../x', manifest, issuedAt: NOW, attempt: 1 }),
    ];
    for (const b of bad) await rig.updater.onJob(Buffer.from(b));
    assert.deepEqual(
      rig.statuses.map((s) => [s.jobId, s.state, s.reason]),
      [
        ['j1', 'failed', 'malformed_job'],
        ['j2', 'failed', 'malformed_job'],
        ['j3', 'failed', 'malformed_job'],
        ['j4', 'failed', 'malformed_job'],
      ],
    );
    assert.equal(rig.server.requests.length, 0);
    assertUntouched(rig, 'malformed');
  });

  it('stops a cancelled job before installing, drops the download, and never starts a job cancelled before it arrived', async (t) => {
    const { rig, manifest } = setup(t);
    let release!: () => void;
    rig.server.hold = new Promise((resolve) => (release = resolve));
    await rig.job(manifest, 'fw_1', 'job_c1');
    await rig.until('downloading', 'job_c1');
    await rig.updater.onJob(Buffer.from(JSON.stringify({ jobId: 'job_c1', cancel: true, reason: 'rollout aborted: by hand' })));
    release();
    const failed = await rig.until('failed', 'job_c1');
    assert.deepEqual([failed.reason, failed.detail], ['cancelled', 'rollout aborted: by hand']);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(existsSync(join(rig.dir, 'ota', 'download.img')), false, 'the partial image is dropped');
    assert.equal(existsSync(join(rig.dir, 'ota', 'slot-b.img')), false, 'no slot was touched');
    assertUntouched(rig, 'cancelled');

    await rig.updater.onJob(Buffer.from(JSON.stringify({ jobId: 'job_c2', cancel: true, reason: 'rollout aborted' })));
    assert.deepEqual(
      rig.statuses.filter((s) => s.jobId === 'job_c2').map((s) => [s.state, s.reason]),
      [['failed', 'cancelled']],
      'a cancel of an unknown job is answered',
    );
    await rig.job(manifest, 'fw_1', 'job_c2');
    await rig.updater.onJob(Buffer.from(JSON.stringify({ jobId: 'job_c2', cancel: true, reason: 'rollout aborted' })));
    assert.deepEqual(
      rig.statuses.filter((s) => s.jobId === 'job_c2').map((s) => [s.state, s.reason]),
      [
        ['failed', 'cancelled'],
        ['failed', 'cancelled'],
        ['failed', 'cancelled'],
      ],
      'that job, arriving late, is answered cancelled and never starts; a cancel sent again is answered again (the first answer may have been lost)',
    );
    assert.equal(rig.updater.state.job?.job.jobId, 'job_c1');
  });

  it('finishes an update cancelled once it is installing', async (t) => {
    const { rig, manifest } = setup(t);
    await rig.job(manifest, 'fw_1', 'job_late');
    await rig.until('rebooting', 'job_late');
    await rig.updater.onJob(Buffer.from(JSON.stringify({ jobId: 'job_late', cancel: true, reason: 'too late' })));
    await rig.until('committed', 'job_late');
    assert.equal(rig.updater.running().version, '2.0.0');
  });

  it("installs a second update at the first attempt (the first one's download is not mistaken for part of the next image)", async (t) => {
    const { kit, rig, image, manifest } = setup(t);
    await rig.job(manifest, 'fw_1', 'job_first');
    await rig.until('committed', 'job_first');
    for (const [version, size] of [
      ['2.1.0', image.length],
      ['2.2.0', image.length + 50_000],
    ] as const) {
      const next = randomBytes(size);
      const id = `fw_${version.replaceAll('.', '')}`;
      rig.server.put(id, next, sha256(next));
      await rig.job(kit.release(next, { version }), id, `job_${id}`);
      const end = await rig.until(['committed', 'failed'], `job_${id}`);
      assert.equal(end.state, 'committed', `${version}: ${end.reason ?? ''} ${end.detail ?? ''}`);
      assert.equal(rig.updater.running().version, version);
    }
  });

  it('drives a real bootloader through the slot store: try once, make default at commit, switch back on a revert, believe it when it fell back by itself', async (t) => {
    const calls: string[] = [];
    const bootloader: { booted?: 'a' | 'b' } = {};
    const slots = (dir: string) =>
      Object.assign(new FileSlotStore(dir), {
        switchTo: async (slot: string, mode: string) => void calls.push(`switchTo ${slot} ${mode}`),
        commit: async (slot: string) => void calls.push(`commit ${slot}`),
        booted: () => bootloader.booted,
      });
    const { kit, rig, manifest } = setup(t, { slots });
    await rig.job(manifest, 'fw_1', 'job_good');
    await rig.until('committed', 'job_good');
    assert.deepEqual(calls.splice(0), ['commit a', 'switchTo b trial', 'commit b']);

    const broken = randomBytes(1000);
    rig.server.put('fw_2', broken, sha256(broken));
    rig.healthy = false;
    await rig.job(kit.release(broken, { version: '2.1.0' }), 'fw_2', 'job_broken');
    await rig.until('rolled-back', 'job_broken');
    for (let i = 0; i < 100 && calls.length < 3; i += 1) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(calls.splice(0), ['switchTo a trial', 'switchTo b committed', 'commit b'], 'tried a, back to b, b stays the default after the restart');

    // The bootloader gave up on the new image by itself: the device starts on slot b although its state says "trying a".
    const other = randomBytes(1000);
    rig.server.put('fw_3', other, sha256(other));
    rig.healthy = null;
    bootloader.booted = 'b';
    await rig.job(kit.release(other, { version: '2.2.0' }), 'fw_3', 'job_fallback');
    const back = await rig.until('rolled-back', 'job_fallback');
    assert.equal(back.reason, 'boot_failed');
    assert.match(back.detail ?? '', /bootloader started slot b/);
    assert.equal(rig.updater.running().version, '2.0.0');
    assert.equal(rig.updater.state.trial, null);
  });

  it('trusts a rotated root from the first manifest that proves it, and from then on refuses what the retired root keys sign', async (t) => {
    const { kit, rig, image } = setup(t);
    const pinned = JSON.parse(readFileSync(join(kit.rootFile), 'utf8')) as RootKeySet;
    const newRoots = [generateFirmwareKey(), generateFirmwareKey()];
    const rotation = rotateRoot(pinned, rootKeySet(2, newRoots), [kit.roots[0]!.privateKeyPem, kit.roots[1]!.privateKeyPem, ...newRoots.map((k) => k.privateKeyPem)]);
    const delegation = delegateReleaseKeys(
      { version: 2, expires: NOW + DAY, keys: [kit.releaseKey] },
      newRoots.map((k) => k.privateKeyPem),
    );
    const body = { name: 'gw-fw', version: '2.0.0', securityVersion: 5, hardware: { model: 'gw-1', hardwareRevisions: ['C'] }, size: image.length, sha256: sha256(image), issuedAt: NOW, expires: NOW + DAY };
    await rig.job(signRelease({ ...body, expires: NOW - 1 }, kit.releaseKey.privateKeyPem, delegation, [rotation]), 'fw_1', 'job_expired');
    assert.equal((await rig.until('failed', 'job_expired')).reason, 'expired');
    const rootVersion = (): number | undefined => rig.updater.state.root?.version;
    assert.equal(rootVersion(), undefined, 'a rotation in a manifest that does not verify is not kept');
    await rig.job(signRelease(body, kit.releaseKey.privateKeyPem, delegation, [rotation]), 'fw_1', 'job_rotated');
    await rig.until('committed', 'job_rotated');
    assert.equal(rootVersion(), 2);

    // The old root keys (say, stolen) sign a delegation for a key of the thief's: refused without any rotation in the manifest.
    const thief = generateFirmwareKey();
    const forged = delegateReleaseKeys({ version: 3, expires: NOW + DAY, keys: [thief] }, [kit.roots[0]!.privateKeyPem, kit.roots[1]!.privateKeyPem]);
    const evil = randomBytes(1000);
    rig.server.put('fw_evil', evil, sha256(evil));
    await rig.job(signRelease({ ...body, version: '9.0.0', securityVersion: 9, size: evil.length, sha256: sha256(evil) }, thief.privateKeyPem, forged), 'fw_evil', 'job_evil');
    const refused = await rig.until('failed', 'job_evil');
    assert.equal(refused.reason, 'root_threshold_not_met');
    assert.match(refused.detail ?? '', /root version 2/);
  });

  it('keeps the floors until the commit, and takes a retry under a new id only with the very same signed metadata', async (t) => {
    const { rig, manifest } = setup(t);
    rig.healthy = null;
    await rig.job(manifest, 'fw_1', 'job_m1');
    await rig.until('verifying-health', 'job_m1');
    assert.equal(rig.updater.state.minSecurityVersion, 4, 'not raised by a trial');
    const forged = { ...manifest, release: { ...manifest.release, signed: { ...manifest.release.signed, securityVersion: 999_999 } } };
    await rig.job(forged, 'fw_1', 'job_forged');
    assert.deepEqual(
      rig.statuses.filter((x) => x.jobId === 'job_forged').map((x) => [x.state, x.reason]),
      [['failed', 'busy']],
      'other metadata for the same artifact is not adopted',
    );
    await rig.job(manifest, 'fw_1', 'job_retry');
    assert.equal(rig.updater.state.job?.job.jobId, 'job_retry', 'the same metadata under a new id is');
    rig.healthy = true;
    await rig.updater.confirmHealthy();
    await rig.until('committed', 'job_retry');
    assert.equal(rig.updater.state.minSecurityVersion, 5, 'raised at the commit, from what was verified');
  });

  it('leaves nothing behind when a job is cancelled while its request is still on the way: the next update installs at its first attempt', async (t) => {
    const { kit, rig, image, manifest } = setup(t);
    let release!: () => void;
    rig.server.hold = new Promise((resolve) => (release = resolve));
    await rig.job(manifest, 'fw_1', 'job_slow');
    await rig.until('downloading', 'job_slow');
    await rig.updater.onJob(Buffer.from(JSON.stringify({ jobId: 'job_slow', cancel: true, reason: 'aborted' })));
    release();
    rig.server.hold = undefined;
    const next = randomBytes(image.length);
    rig.server.put('fw_next', next, sha256(next));
    await rig.job(kit.release(next, { version: '2.0.5' }), 'fw_next', 'job_next');
    const end = await rig.until(['committed', 'failed'], 'job_next');
    assert.equal(end.state, 'committed', `${end.reason ?? ''} ${end.detail ?? ''}`);
    assert.deepEqual(slotBytes(rig.dir, 'b'), next);
  });

  it('plans each start from what the bootloader says', () => {
    const base = factoryState({ version: '1.0.0', securityVersion: 4 });
    const job = { job: { jobId: 'j', rolloutId: 'r', artifactId: 'a', url: '/v1/firmware/a', manifest: {}, issuedAt: 0, attempt: 1 } as never, slot: 'b' as const, reported: false };
    const trial = { ...base, trial: { slot: 'b' as const, boots: 0 } };
    assert.equal(bootPlan({ ...trial, job: { ...job, state: 'rebooting', switched: false } }, 3, 'a', 'boot-1').kind, 'finish-switch', 'the bootloader was never told');
    assert.equal(bootPlan({ ...trial, job: { ...job, state: 'rebooting', switched: true, switchedInBoot: 'boot-1' } }, 3, 'a', 'boot-1').kind, 'finish-switch', 'told, but the device has not rebooted (the process restarted)');
    const rebooted = bootPlan({ ...trial, job: { ...job, state: 'rebooting', switched: true, switchedInBoot: 'boot-1' } }, 3, 'b', 'boot-2');
    assert.deepEqual([rebooted.kind, rebooted.state.job?.state, rebooted.state.trial?.boots], ['run', 'verifying-health', 1]);
    const fell = bootPlan({ ...trial, job: { ...job, state: 'rebooting', switched: true, switchedInBoot: 'boot-1' } }, 3, 'a', 'boot-2');
    assert.deepEqual([fell.kind, fell.state.job?.state, fell.state.job?.reason], ['fell-back', 'rolled-back', 'boot_failed']);
    let s = { ...base, job: { ...job, state: 'rolled-back' as const } };
    for (const expected of ['realign', 'realign', 'realign', 'stuck']) {
      const plan = bootPlan(s, 3, 'b');
      assert.equal(plan.kind, expected, 'the bootloader starts b though a is committed (a revert cut before it was told)');
      s = plan.state as typeof s;
    }
    assert.equal(bootPlan(s, 3, 'a').state.mismatchBoots, 0, 'back in line');
  });
});
