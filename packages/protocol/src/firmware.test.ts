import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  FIRMWARE_REFUSALS,
  FirmwareDigest,
  type FirmwareManifest,
  type FirmwareRefusal,
  canonicalJson,
  checkImage,
  compareSemver,
  delegateReleaseKeys,
  generateFirmwareKey,
  rootAfter,
  rootKeySet,
  rotateRoot,
  signFirmwareBody,
  signRelease,
  verifyFirmware,
} from './index.js';

const NOW = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;
const roots = [generateFirmwareKey(), generateFirmwareKey(), generateFirmwareKey()];
const root = rootKeySet(2, roots);
const releaseKey = generateFirmwareKey();
const delegation = delegateReleaseKeys({ version: 1, expires: NOW + 365 * DAY, keys: [releaseKey] }, [roots[0]!.privateKeyPem, roots[2]!.privateKeyPem]);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const imageA = Buffer.alloc(10_000, 'a');
const imageB = Buffer.alloc(8_000, 'b');
const hardware = { model: 'gw-1', hardwareRevisions: ['B', 'C'] };
const release = (image: Buffer, over: Record<string, unknown> = {}) =>
  signRelease(
    {
      name: 'gw-fw',
      version: '2.1.0',
      securityVersion: 5,
      hardware,
      size: image.length,
      sha256: sha(image),
      issuedAt: NOW - DAY,
      expires: NOW + 30 * DAY,
      ...over,
    },
    releaseKey.privateKeyPem,
    delegation,
  );
const ctx = { root, now: NOW, minSecurityVersion: 5, installedVersion: '2.0.3', device: { model: 'gw-1', hardwareRevision: 'C' } };
const digestOf = (chunks: Buffer[], declared: number) => {
  const d = new FirmwareDigest(declared);
  for (const c of chunks) if (!d.update(c)) break;
  return d.digest();
};

/** Runs the whole check, manifest then image, as the platform and the agent do. */
function judge(manifest: unknown, image: Buffer, context = ctx, known: (s: string) => string | undefined = () => undefined): FirmwareRefusal | 'ok' {
  const v = verifyFirmware(manifest, context);
  if (!v.ok) return v.reason;
  const bad = checkImage(v.release, digestOf([image], v.release.size), known);
  return bad && !bad.ok ? bad.reason : 'ok';
}

describe('firmware metadata verification (TUF/Uptane attacks)', () => {
  it('accepts a release signed by a delegated key whose delegation meets the root threshold', () => {
    assert.equal(judge(release(imageA), imageA), 'ok');
  });

  const attacks: [string, () => FirmwareRefusal | 'ok', FirmwareRefusal][] = [
    ['unsigned image (no signature on the release)', () => judge({ ...release(imageA), release: { ...release(imageA).release, signatures: [] } }, imageA), 'unsigned'],
    [
      'signed with a key the root never delegated (wrong key)',
      () => {
        const m = release(imageA);
        return judge({ ...m, release: { ...m.release, signatures: [signFirmwareBody(m.release.signed, generateFirmwareKey().privateKeyPem)] } }, imageA);
      },
      'untrusted_key',
    ],
    [
      'metadata altered after signing',
      () => {
        const m = release(imageA);
        return judge({ ...m, release: { ...m.release, signed: { ...m.release.signed, securityVersion: 99 } } }, imageA);
      },
      'bad_signature',
    ],
    [
      'valid signature over a tampered image',
      () => {
        const tampered = Buffer.from(imageA);
        tampered[500] = 0x42;
        return judge(release(imageA), tampered);
      },
      'image_hash_mismatch',
    ],
    ['older validly-signed release (security version below the minimum)', () => judge(release(imageA, { securityVersion: 4 }), imageA), 'rollback'],
    ['older validly-signed release (version below the installed one)', () => judge(release(imageA, { version: '2.0.1' }), imageA), 'downgrade'],
    ['replayed expired metadata (freeze)', () => judge(release(imageA, { expires: NOW - 1 }), imageA), 'expired'],
    ['metadata of one release with the image of another (mix-and-match)', () => judge(release(imageA), imageB, ctx, (s) => (s === sha(imageB) ? 'gw-fw 1.9.0' : undefined)), 'mix_and_match'],
    ['a download longer than declared (endless data)', () => judge(release(imageA), Buffer.concat([imageA, Buffer.alloc(1_000_000)])), 'image_too_long'],
    [
      'one stolen root key below the threshold',
      () => {
        const forged = delegateReleaseKeys({ version: 2, expires: NOW + DAY, keys: [releaseKey] }, [roots[1]!.privateKeyPem]);
        return judge({ ...release(imageA), delegation: forged }, imageA);
      },
      'root_threshold_not_met',
    ],
    [
      'the stolen root key signing twice still counts once',
      () => {
        const forged = delegateReleaseKeys({ version: 2, expires: NOW + DAY, keys: [releaseKey] }, [roots[1]!.privateKeyPem, roots[1]!.privateKeyPem]);
        return judge({ ...release(imageA), delegation: forged }, imageA);
      },
      'root_threshold_not_met',
    ],
    ['wrong hardware target (model)', () => judge(release(imageA, { hardware: { model: 'gw-2', hardwareRevisions: ['C'] } }), imageA), 'wrong_hardware'],
    ['wrong hardware target (revision)', () => judge(release(imageA, { hardware: { model: 'gw-1', hardwareRevisions: ['A'] } }), imageA), 'wrong_hardware'],
    [
      'an expired release-key delegation',
      () => {
        const old = delegateReleaseKeys({ version: 1, expires: NOW - 1, keys: [releaseKey] }, [roots[0]!.privateKeyPem, roots[1]!.privateKeyPem]);
        return judge({ ...release(imageA), delegation: old }, imageA);
      },
      'delegation_expired',
    ],
    ['a short image', () => judge(release(imageA), imageA.subarray(0, 5000)), 'image_size_mismatch'],
    ['a manifest with a fractional number', () => judge({ ...release(imageA), release: { ...release(imageA).release, signed: { ...release(imageA).release.signed, size: 1.5 } } }, imageA), 'malformed'],
  ];
  for (const [name, run, reason] of attacks) {
    it(`refuses ${name}: ${reason}`, () => assert.equal(run(), reason));
  }

  it('names a distinct reason for every attack in the issue', () => {
    const named = new Set(attacks.map(([, , r]) => r));
    for (const r of ['unsigned', 'untrusted_key', 'image_hash_mismatch', 'rollback', 'expired', 'mix_and_match', 'image_too_long', 'root_threshold_not_met', 'wrong_hardware'] as const) {
      assert.ok(named.has(r) && FIRMWARE_REFUSALS.includes(r), r);
    }
  });

  it('stops hashing at the declared size, however much more arrives', () => {
    const d = new FirmwareDigest(100);
    assert.equal(d.update(Buffer.alloc(60)), true);
    assert.equal(d.update(Buffer.alloc(60)), false);
    assert.equal(d.update(Buffer.alloc(1 << 20)), false);
    assert.equal(d.size, 100);
    assert.equal(d.digest().tooLong, true);
  });

  it("round-trips through JSON text: the signature covers canonical JSON, not the sender's formatting", () => {
    const m = release(imageA);
    const reformatted = JSON.parse(JSON.stringify(m, null, 4)) as FirmwareManifest;
    const reordered = { ...reformatted, release: { signatures: reformatted.release.signatures, signed: Object.fromEntries(Object.entries(reformatted.release.signed).reverse()) } };
    assert.equal(verifyFirmware(reordered, ctx).ok, true);
  });
});

describe('canonical JSON and semantic versions', () => {
  it('sorts keys, drops whitespace and refuses non-integers', () => {
    assert.equal(canonicalJson({ b: [1, 'x', null, true], a: { d: 'é\n', c: 0 } }), '{"a":{"c":0,"d":"é\\n"},"b":[1,"x",null,true]}');
    for (const bad of [1.5, -0, Number.NaN, 2 ** 60, { a: undefined }]) assert.throws(() => canonicalJson(bad));
  });

  it('orders versions by semver precedence', () => {
    const sorted = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.2.0', '1.10.0', '2.0.0'];
    for (let i = 1; i < sorted.length; i += 1) assert.ok(compareSemver(sorted[i - 1]!, sorted[i]!) < 0, `${sorted[i - 1]} < ${sorted[i]}`);
    assert.equal(compareSemver('1.0.0+build.1', '1.0.0'), 0);
  });
});

describe('root key rotation (TUF root rotation)', () => {
  const newRoots = [generateFirmwareKey(), generateFirmwareKey(), generateFirmwareKey()];
  const next = rootKeySet(2, newRoots);
  const both = [roots[0]!.privateKeyPem, roots[1]!.privateKeyPem, newRoots[0]!.privateKeyPem, newRoots[2]!.privateKeyPem];
  const newDelegation = delegateReleaseKeys({ version: 2, expires: NOW + 365 * DAY, keys: [releaseKey] }, [newRoots[1]!.privateKeyPem, newRoots[2]!.privateKeyPem]);
  const body = { name: 'gw-fw', version: '2.1.0', securityVersion: 5, hardware, size: imageA.length, sha256: sha(imageA), issuedAt: NOW - DAY, expires: NOW + 30 * DAY };
  const underNewRoot = (rotations: ReturnType<typeof rotateRoot>[]) => signRelease(body, releaseKey.privateKeyPem, newDelegation, rotations);

  it('lets a device pinned to version 1 trust a delegation signed only by the new root keys, through the rotation the manifest carries', () => {
    const rotation = rotateRoot(root, next, both);
    const v = verifyFirmware(underNewRoot([rotation]), ctx);
    assert.ok(v.ok, v.ok ? '' : `${v.reason}: ${v.detail}`);
    assert.equal(v.root.version, 2);
    assert.deepEqual(
      v.root.keys.map((k) => k.keyId),
      next.keys.map((k) => k.keyId),
    );
    assert.equal(judge(underNewRoot([]), imageA), 'root_threshold_not_met', 'without the rotation the new keys mean nothing');
    const trusted = rootAfter(rotation);
    assert.ok(verifyFirmware(underNewRoot([rotation]), { ...ctx, root: trusted }).ok, 'a verifier already on version 2 skips the known rotation');
    assert.equal(judge(release(imageA), imageA, { ...ctx, root: trusted }), 'root_threshold_not_met', 'once on version 2, a delegation signed by the old (compromised) root keys is refused');
  });

  it('refuses a rotation not signed by enough old keys, or by enough of its own, or that skips a version', () => {
    const cases: [string, ReturnType<typeof rotateRoot>[], RegExp][] = [
      ['one old key (a stolen root key forging a new root)', [rotateRoot(root, next, [roots[0]!.privateKeyPem, newRoots[0]!.privateKeyPem, newRoots[1]!.privateKeyPem])], /signed by 1 of the 2 keys of version 1/],
      ['no new key', [rotateRoot(root, next, [roots[0]!.privateKeyPem, roots[1]!.privateKeyPem])], /signed by 0 of the 2 of its own keys/],
      ['one stolen old key signing twice', [rotateRoot(root, next, [roots[0]!.privateKeyPem, roots[0]!.privateKeyPem, newRoots[0]!.privateKeyPem, newRoots[1]!.privateKeyPem])], /signed by 1 of the 2 keys of version 1/],
      ['a gap', [rotateRoot({ ...next, version: 2 }, rootKeySet(1, [generateFirmwareKey()]), both)], /version 3 does not follow the trusted version 1/],
    ];
    for (const [name, rotations, detail] of cases) {
      const v = verifyFirmware(underNewRoot(rotations), ctx);
      assert.equal(v.ok ? 'ok' : v.reason, 'root_rotation_invalid', name);
      assert.match(v.ok ? '' : v.detail, detail, name);
    }
    assert.equal(judge({ ...underNewRoot([]), rootRotations: [{ signed: { type: 'root-rotation', version: 2, threshold: 4, keys: next.keys }, signatures: [] }] }, imageA), 'malformed', 'threshold above the key count');
  });
});
