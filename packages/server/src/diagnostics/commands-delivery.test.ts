import assert from 'node:assert/strict';
import { type TestContext, describe, it } from 'node:test';
import { ManualClock, randomIds, silentLogger } from '@bulwark/core';
import { MemoryCounterStore } from '../access/index.js';
import { MemoryBus } from '../bus/index.js';
import { RegistryService } from '../registry/index.js';
import { sqliteStoreFor } from '../testing/sqlite-store.js';
import type { DeviceLink } from '../twin/index.js';
import { CommandService } from './commands.js';

const SETTINGS = { defaultTtlS: 300, maxTtlS: 3600, resultTimeoutMs: 60_000, perDevicePerMinute: 100, perPrincipalPerMinute: 100, maxOpenPerDevice: 10, retentionDays: 1 };

/** A command service on a real SQLite file, with a device link the test steers. */
async function setup(t: TestContext, link: DeviceLink, bus = new MemoryBus(silentLogger)) {
  const clock = new ManualClock(Date.now());
  const store = await sqliteStoreFor(t, clock);
  await new RegistryService(store.devices, clock, new MemoryBus(silentLogger)).create({ id: 'dev-1' });
  const counters = new MemoryCounterStore(clock);
  const service = (l: DeviceLink) => new CommandService(store.commands, SETTINGS, { clock, ids: randomIds, link: l, counters, bus, log: silentLogger, assertDevice: async () => undefined });
  return { commands: service(link), store, service };
}

describe('command delivery while a session comes or moves', () => {
  it('sends a command to a device that connected between the first look and the record (its own look for open commands found nothing yet)', async (t) => {
    let connected = false;
    const sent: string[] = [];
    const link: DeviceLink = {
      isConnected: () => connected,
      isHere: () => connected,
      publish: async (_id, topic) => {
        sent.push(topic);
        return true;
      },
    };
    const { commands, store } = await setup(t, link);
    // The device connects (and finds no open command) while this command is being recorded.
    const insert = store.commands.insert.bind(store.commands);
    store.commands.insert = async (c) => {
      connected = true;
      await insert(c);
    };
    const issued = await commands.issue('dev-1', 'reboot', {}, { actor: 'usr_ops' });
    assert.deepEqual(sent, ['devices/dev-1/commands/reboot']);
    assert.equal(issued.status, 'sent');
  });

  it('tries a delivery again while the device counts as connected but its node does not take it (the session is moving)', async (t) => {
    let accepting = false;
    const tries: number[] = [];
    let delivered: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (delivered = resolve));
    const link: DeviceLink = {
      isConnected: () => true,
      isHere: () => false,
      publish: async () => {
        tries.push(Date.now());
        if (!accepting) {
          accepting = true; // the session has reached its new node by the next try
          return false;
        }
        return true;
      },
    };
    const { commands, store } = await setup(t, link);
    const markSent = store.commands.markSent.bind(store.commands);
    store.commands.markSent = async (...args) => {
      await markSent(...args);
      delivered();
    };
    const issued = await commands.issue('dev-1', 'reboot', {}, { actor: 'usr_ops' });
    assert.equal(issued.status, 'pending', 'not delivered at first');
    await done;
    assert.equal(tries.length, 2);
    const after = await commands.get('dev-1', issued.id);
    assert.equal(after.status, 'sent');
  });

  it('a node that does not see the device connected says a command waits, and the node holding its session sends it', async (t) => {
    // Two nodes on one store and one bus: the one recording the command still sees the device
    // offline (its view of the session directory lags); the other holds the device's session.
    const delivered: string[] = [];
    const issuer: DeviceLink = { isConnected: () => false, isHere: () => false, publish: async () => false };
    const holder: DeviceLink = {
      isConnected: () => true,
      isHere: () => true,
      publish: async (_id, topic) => {
        delivered.push(topic);
        return true;
      },
    };
    const { commands, service } = await setup(t, issuer);
    service(holder);
    const issued = await commands.issue('dev-1', 'reboot', {}, { actor: 'usr_ops' });
    // (The in-process bus runs the holder's handler before publish resolves.)
    assert.deepEqual(delivered, ['devices/dev-1/commands/reboot']);
    assert.equal(issued.status, 'sent', 'sent by the node holding the session');
    // The holder sends only what waits unsent: an event for a device with nothing unsent sends nothing again.
    await commands.issue('dev-1', 'ping', {}, { actor: 'usr_ops' });
    assert.equal(delivered.length, 2);
    assert.equal(delivered[1], 'devices/dev-1/commands/ping');
  });
});
