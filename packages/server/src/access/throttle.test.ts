import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { MemoryCounterStore } from './counters.js';
import { Throttle, type ThrottleSettings } from './throttle.js';

const settings: ThrottleSettings = { perAddressPerMinute: 1000, perPrincipalPerMinute: 1000, lockoutThreshold: 3, keyLockoutThreshold: 2, lockoutWindowMs: 60_000, lockoutMs: 120_000 };
const subject = Throttle.address('192.0.2.1');

function setup(startMs = 1_000_000) {
  const clock = new ManualClock(startMs);
  return { clock, throttle: new Throttle(new MemoryCounterStore(clock), settings, clock) };
}

const refusedWith = (code: string) => (err: Error & { code?: string }) => err.code === code;

describe('Throttle: attempts under way and failures', () => {
  it('holds back attempts past the threshold while they are under way, without locking', async () => {
    const { throttle } = setup();
    const running = await Promise.all([1, 2, 3].map(() => throttle.begin([subject])));
    await assert.rejects(throttle.begin([subject]), (err: Error & { code?: string; retryAfterSeconds?: number }) => err.code === 'BULWARK_ERR_RATE_LIMITED' && err.retryAfterSeconds === 1);
    await throttle.assertNotLocked(subject);
    assert.deepEqual(await running[0]?.end(false), []);
    const next = await throttle.begin([subject]);
    for (const a of [...running.slice(1), next]) assert.deepEqual(await a.end(false), []);
    for (let i = 0; i < 10; i += 1) await (await throttle.begin([subject])).end(false);
    await throttle.assertNotLocked(subject);
  });

  it('counts failures and attempts under way together, and locks on the threshold-th failure as before', async () => {
    const { throttle } = setup();
    assert.deepEqual(await (await throttle.begin([subject])).end(true), []);
    const a = await throttle.begin([subject]);
    const b = await throttle.begin([subject]);
    await assert.rejects(throttle.begin([subject]), refusedWith('BULWARK_ERR_RATE_LIMITED'), 'one failure and two under way make three');
    assert.deepEqual(await a.end(true), []);
    assert.deepEqual(await b.end(true), [subject], 'the third failure locks');
    await assert.rejects(throttle.begin([subject]), (err: Error & { code?: string; retryAfterSeconds?: number }) => err.code === 'BULWARK_ERR_AUTH_LOCKED' && err.retryAfterSeconds === 120);
  });

  it('applies the lower key threshold to an address and key, and refuses both subjects together', async () => {
    const { throttle } = setup();
    const pair = [subject, Throttle.addressKey('192.0.2.1', 'key_a')];
    const running = [await throttle.begin(pair), await throttle.begin(pair)];
    await assert.rejects(throttle.begin(pair), refusedWith('BULWARK_ERR_RATE_LIMITED'));
    // The refusal on the key took back its count on the address: a third attempt for another key passes.
    const other = await throttle.begin([subject, Throttle.addressKey('192.0.2.1', 'key_b')]);
    await assert.rejects(throttle.begin([subject]), refusedWith('BULWARK_ERR_RATE_LIMITED'));
    for (const a of [...running, other]) await a.end(false);
  });

  it('keeps counting an attempt across a bucket edge, and forgets one left by a stopped node within seconds', async () => {
    const { clock, throttle } = setup(4_999);
    await Promise.all([1, 2, 3].map(() => throttle.begin([subject])));
    clock.advance(1);
    await assert.rejects(throttle.begin([subject]), refusedWith('BULWARK_ERR_RATE_LIMITED'), 'still under way in the next bucket');
    clock.advance(4_999);
    await assert.rejects(throttle.begin([subject]), refusedWith('BULWARK_ERR_RATE_LIMITED'));
    clock.advance(1);
    const after = await throttle.begin([subject]);
    await after.end(false);
    await throttle.assertNotLocked(subject);
  });

  it('ends an attempt whose count expired without taking anything off a newer one', async () => {
    const { clock, throttle } = setup();
    const stale = await throttle.begin([subject]);
    clock.advance(20_000);
    const fresh = await Promise.all([1, 2, 3].map(() => throttle.begin([subject])));
    await stale.end(false);
    await assert.rejects(throttle.begin([subject]), refusedWith('BULWARK_ERR_RATE_LIMITED'));
    for (const a of fresh) await a.end(false);
  });
});
