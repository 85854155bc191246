import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ManualClock, silentLogger } from '@bulwark/core';
import { MemoryBus } from '../bus/index.js';
import { sqliteStoreFor } from '../testing/sqlite-store.js';
import { type DeviceLink, TwinService } from './service.js';

it("a node that cannot deliver a new desired configuration says so, and the node holding the device's session sends it", async (t) => {
  // Two nodes on one store and one bus: the one storing the change still sees the device where
  // it was (its view of the session directory lags a move); the other holds the session now.
  const clock = new ManualClock(Date.now());
  const store = await sqliteStoreFor(t, clock);
  const bus = new MemoryBus(silentLogger);
  const delivered: { topic: string; version: number }[] = [];
  const stale: DeviceLink = { isConnected: () => true, isHere: () => false, publish: async () => false };
  const holder: DeviceLink = {
    isConnected: () => true,
    isHere: (id) => id === 'dev-1',
    publish: async (_id, topic, message) => {
      delivered.push({ topic, version: (message as { version: number }).version });
      return true;
    },
  };
  const service = (link: DeviceLink) => new TwinService(store.twins, { clock, link, bus, log: silentLogger, driftThresholdMs: 60_000, assertDevice: async () => undefined });
  const storing = service(stale);
  service(holder);
  await storing.setDesired('dev-1', { interval_s: 30 }, 'usr_ops');
  // (The in-process bus runs the holder's handler before publish resolves.)
  assert.deepEqual(delivered, [{ topic: 'devices/dev-1/twin/desired', version: 1 }]);
  // A device whose session no node holds gets it at its next connect, as before: nothing sent now.
  await storing.setDesired('dev-2', { interval_s: 30 }, 'usr_ops');
  assert.equal(delivered.length, 1);
});
