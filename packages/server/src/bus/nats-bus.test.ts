import assert from 'node:assert/strict';
import { before, after, it } from 'node:test';
import { silentLogger } from '@bulwark/core';
import { NatsLink } from '../cluster/nats.js';
import { type RunningEngine, describeWith, startNats } from '../testing/services.js';
import { describeBusContract } from './bus-contract.js';
import { NatsBus } from './nats-bus.js';

describeWith('NatsBus on a real nats-server', ['nats-server'], () => {
  let nats: RunningEngine;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop());

  describeBusContract('NatsBus', async () => {
    const [la, lb] = await Promise.all([NatsLink.connect(nats.url, 'node-a', silentLogger), NatsLink.connect(nats.url, 'node-b', silentLogger)]);
    const a = new NatsBus(la, silentLogger);
    const b = new NatsBus(lb, silentLogger);
    // Both subscriptions are registered with the server before anything is published.
    await Promise.all([la.nc.flush(), lb.nc.flush()]);
    return {
      a,
      b,
      close: async () => {
        await Promise.all([a.close(), b.close()]);
        await Promise.all([la.close(), lb.close()]);
      },
    };
  });

  it('ignores a malformed event on its subject and counts it, and keeps delivering', async () => {
    const [la, lb] = await Promise.all([NatsLink.connect(nats.url, 'node-a', silentLogger), NatsLink.connect(nats.url, 'node-b', silentLogger)]);
    let malformed = 0;
    const b = new NatsBus(lb, silentLogger, { received: () => undefined, malformed: () => void (malformed += 1) });
    await lb.nc.flush();
    try {
      const heard = new Promise<string>((resolve) => b.subscribe('device.suspended', (e) => resolve(e.deviceId)));
      la.nc.publish('bulwark.events.device.suspended', 'not json');
      la.nc.publish('bulwark.events.device.suspended', JSON.stringify({ type: 'device.decommissioned', deviceId: 'wrong-subject' }));
      la.nc.publish('bulwark.events.device.suspended', JSON.stringify({ type: 'device.suspended', deviceId: 'good' }));
      assert.equal(await heard, 'good');
      assert.equal(malformed, 2);
    } finally {
      await b.close();
      await Promise.all([la.close(), lb.close()]);
    }
  });

  it('names NATS when it cannot be reached at start', async () => {
    await assert.rejects(NatsLink.connect('nats://127.0.0.1:1', 'node-x', silentLogger), (err: Error & { code?: string }) => err.code === 'BULWARK_ERR_BUS_UNAVAILABLE' && /NATS at nats:\/\/127\.0\.0\.1:1 is unreachable/.test(err.message));
  });
});
