import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { LEGACY_TOKEN_KEY, type TokenKeyVault, TokenKeyRing } from './token-keys.js';
import { issueToken, verifyToken } from './tokens.js';

const TTL = 15 * 60_000;

/** The vault's interface over a map (the ring's logic; the real vault is tested with the store). */
function memoryVault(): TokenKeyVault & { readonly names: Map<string, Buffer> } {
  const names = new Map<string, Buffer>();
  return { names, get: async (n) => names.get(n), put: async (n, v) => void names.set(n, v), listNames: async () => [...names.keys()] };
}

const claims = (now: number) => ({ v: 1 as const, sub: 'usr_1', kid: 'key_1', scp: ['*' as const], iat: now, exp: now + TTL });

describe('token-signing keys', () => {
  it('signs with the newest key; the previous one verifies for a token lifetime after the rotation, then not', async () => {
    const clock = new ManualClock();
    const vault = memoryVault();
    const ring = await TokenKeyRing.open(vault, clock, TTL);
    const first = await ring.signing();
    assert.equal(vault.names.size, 1, 'a new installation gets its first key');
    const old = issueToken(first.key, { ...claims(clock.now()), tk: first.id });

    clock.advance(1000);
    const status = await ring.rotate();
    const second = await ring.signing();
    assert.notEqual(second.id, first.id);
    assert.equal(status.current, second.id);
    assert.deepEqual(
      status.accepted.map((k) => k.id),
      [second.id, first.id],
    );
    assert.equal((await verifyToken((id) => ring.verifying(id), old, clock.now())).sub, 'usr_1', 'a token of the previous key still works');
    const fresh = issueToken(second.key, { ...claims(clock.now()), tk: second.id });
    assert.equal((await verifyToken((id) => ring.verifying(id), fresh, clock.now())).tk, second.id);

    clock.advance(TTL + 30_000);
    assert.equal(await ring.verifying(first.id), undefined, 'retired once every token it signed has expired');
    assert.deepEqual(
      ring.status().accepted.map((k) => k.id),
      [second.id],
    );
    const forged = issueToken(first.key, { ...claims(clock.now()), tk: first.id });
    await assert.rejects(
      verifyToken((id) => ring.verifying(id), forged, clock.now()),
      /retired or unknown/,
    );
    await assert.rejects(
      verifyToken((id) => ring.verifying(id), issueToken(second.key, { ...claims(clock.now()), tk: 'nope' }), clock.now()),
      /retired or unknown/,
    );
  });

  it('keeps the single key of earlier versions for tokens without a key id, until a rotation retires it', async () => {
    const clock = new ManualClock();
    const vault = memoryVault();
    const legacyKey = Buffer.alloc(32, 7);
    vault.names.set(LEGACY_TOKEN_KEY, legacyKey);
    const ring = await TokenKeyRing.open(vault, clock, TTL);
    assert.equal(vault.names.size, 1, 'no new key while the old one serves');
    assert.equal((await ring.signing()).id, 'legacy');
    const beforeUpgrade = issueToken(legacyKey, claims(clock.now()));
    assert.equal((await verifyToken((id) => ring.verifying(id), beforeUpgrade, clock.now())).tk, undefined);
    await ring.rotate();
    assert.ok(await ring.verifying(undefined));
    clock.advance(TTL + 31_000);
    assert.equal(await ring.verifying(undefined), undefined);
  });

  it("lets a node sign with another node's new key within 30 s, and verify its tokens at once", async () => {
    const clock = new ManualClock();
    const vault = memoryVault();
    const a = await TokenKeyRing.open(vault, clock, TTL);
    const b = await TokenKeyRing.open(vault, clock, TTL);
    const before = (await b.signing()).id;
    clock.advance(2000);
    const rotated = (await a.rotate()).current;
    const fromA = await a.signing();
    assert.ok(await b.verifying(fromA.id), 'an unknown id makes b look again');
    assert.equal((await b.signing()).id, rotated, 'having looked, b signs with the new key too');
    assert.notEqual(before, rotated);
    // Two rotations at once add two keys; neither is lost, the newer one signs.
    const [x, y] = await Promise.all([a.rotate(), b.rotate()]);
    clock.advance(31_000);
    const ids = [(await a.signing()).id, (await b.signing()).id];
    assert.equal(ids[0], ids[1], 'both nodes settle on one key');
    assert.ok([x.current, y.current].includes(ids[0]!));
    for (const id of [x.current, y.current]) assert.ok(await a.verifying(id), `${id} verifies`);
  });

  it('retires a key on a node that only verifies, once the rotation another node made is a token lifetime old', async () => {
    const clock = new ManualClock();
    const vault = memoryVault();
    const signer = await TokenKeyRing.open(vault, clock, TTL);
    const verifier = await TokenKeyRing.open(vault, clock, TTL);
    const leaked = (await signer.signing()).id;
    assert.ok(await verifier.verifying(leaked));
    clock.advance(1000);
    await signer.rotate();
    clock.advance(TTL + 31_000);
    assert.equal(await verifier.verifying(leaked), undefined, 'the verifier looked again and found the key retired');
  });
});
