import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EventBus, EventType, PlatformEvent } from './bus.js';

/**
 * Two nodes' views of one bus. In-process buses have one node: both are the same instance.
 * `close` ends both.
 */
export interface BusPair {
  readonly a: EventBus;
  readonly b: EventBus;
  close(): Promise<void>;
}

/** The next `count` events of `type` that `bus` hears. */
function hear<T extends EventType>(bus: EventBus, type: T, count = 1): Promise<PlatformEvent[]> {
  const got: PlatformEvent[] = [];
  return new Promise((resolve) => {
    const off = bus.subscribe(type, (e) => {
      got.push(e);
      if (got.length === count) {
        off();
        resolve(got);
      }
    });
  });
}

/** The contract every EventBus adapter passes: the memory bus and the NATS bus. */
export function describeBusContract(name: string, makePair: () => Promise<BusPair>): void {
  describe(`${name}: event bus contract`, () => {
    it("delivers an event to its subscribers with every field, and a publish resolves after this node's handlers ran", async () => {
      const { a, close } = await makePair();
      try {
        const seen: string[] = [];
        a.subscribe('certificate.revoked', async (e) => {
          await new Promise((r) => setImmediate(r));
          seen.push(`${e.deviceId}/${e.serial}/${e.reason}`);
        });
        await a.publish({ type: 'certificate.revoked', deviceId: 'dev-1', serial: '0a1b', reason: 'keyCompromise' });
        assert.deepEqual(seen, ['dev-1/0a1b/keyCompromise']);
      } finally {
        await close();
      }
    });

    it('reaches the other node, once on each node, in the order one node published', async () => {
      const { a, b, close } = await makePair();
      try {
        const onB = hear(b, 'device.suspended', 50);
        const onA: string[] = [];
        a.subscribe('device.suspended', (e) => void onA.push(e.deviceId));
        for (let i = 0; i < 50; i += 1) await a.publish({ type: 'device.suspended', deviceId: `dev-${i}` });
        const expected = Array.from({ length: 50 }, (_, i) => `dev-${i}`);
        assert.deepEqual(
          (await onB).map((e) => (e as { deviceId: string }).deviceId),
          expected,
        );
        // Another event after them: when b has it, a duplicate on a would have arrived too.
        const marker = hear(a === b ? a : b, 'trust.changed');
        await a.publish({ type: 'trust.changed' });
        await marker;
        assert.deepEqual(onA, expected, 'the publishing node ran its handlers once per event');
      } finally {
        await close();
      }
    });

    it('keeps running the other handlers when one fails, and stops delivering after unsubscribe', async () => {
      const { a, b, close } = await makePair();
      try {
        const heard: string[] = [];
        b.subscribe('device.decommissioned', () => {
          throw new Error('a broken handler');
        });
        const off = b.subscribe('device.decommissioned', (e) => void heard.push(`first ${e.deviceId}`));
        const first = hear(b, 'device.decommissioned', 1);
        const second = hear(b, 'device.decommissioned', 2);
        await a.publish({ type: 'device.decommissioned', deviceId: 'one' });
        await first;
        off();
        await a.publish({ type: 'device.decommissioned', deviceId: 'two' });
        await second;
        assert.deepEqual(heard, ['first one']);
      } finally {
        await close();
      }
    });

    it('carries every kind of event with its fields intact', async () => {
      const { a, b, close } = await makePair();
      try {
        const events: PlatformEvent[] = [
          { type: 'crl.updated', caId: 'ca-1', crlNumber: 42 },
          { type: 'credentials.revoked', principalId: 'p-1', keyId: null, reason: 'principal_disabled' },
          { type: 'certificate.revoked', deviceId: 'dev-9', serial: '00ff', reason: 'superseded' },
          { type: 'logs.window', deviceId: 'dev-9', until: 1_764_000_000_000, level: null },
          { type: 'logs.entries', deviceId: 'dev-9', until: 1_764_000_000_000, level: 'warn', dropped: 2, entries: [{ seq: 7, receivedAt: 1, ts: 2, level: 'error', msg: 'disk full', data: { free: 0 } }] },
        ];
        for (const e of events) {
          const got = hear(b, e.type);
          await a.publish(e);
          assert.deepEqual((await got)[0], e);
        }
      } finally {
        await close();
      }
    });
  });
}
