import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PlatformError, silentLogger } from '@bulwark/core';
import { MemoryBus } from '../bus/index.js';
import type { PeerCertificate } from '../identity/index.js';
import type { LocalSessionTableDeps } from './sessions-local.js';
import type { SessionConnection, SessionHandle, SessionTable } from './sessions.js';

/** What every session table gets in the suite: fakes for identity and registry, a real in-process bus. */
export type SessionTableMaker = (deps: LocalSessionTableDeps) => SessionTable | Promise<SessionTable>;

function fixture() {
  const refused = new Map<string, string>();
  /** Devices suspended while their admission reads: the suspension commits and is announced before the admission registers. */
  const suspendedDuringAdmission = new Set<string>();
  const calls: string[] = [];
  /** The claim each connect and disconnect was recorded with, in order. */
  const claims: number[] = [];
  const bus = new MemoryBus(silentLogger);
  const deps: LocalSessionTableDeps = {
    bus,
    log: silentLogger,
    identity: {
      admitSession: async (peer) => {
        const why = refused.get(peer.deviceId);
        if (why) throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', why);
        if (suspendedDuringAdmission.has(peer.deviceId)) await bus.publish({ type: 'device.suspended', deviceId: peer.deviceId });
      },
      checkSession: async (peer) => {
        calls.push(`check ${peer.deviceId}`);
        if (suspendedDuringAdmission.has(peer.deviceId)) throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', 'suspended meanwhile');
      },
    },
    registry: {
      recordConnect: async (id, claim) => {
        calls.push(`connect ${id}`);
        claims.push(claim);
      },
      recordDisconnect: async (id, claim, reason) => {
        calls.push(`disconnect ${id} ${reason}`);
        claims.push(claim);
      },
    },
  };
  return { deps, refused, suspendedDuringAdmission, calls, claims };
}

/** A connection as a transport would hand it in; `end` reports the close like a socket would. */
class FakeConnection implements SessionConnection {
  readonly delivered: string[] = [];
  ended = 0;
  handle: SessionHandle | undefined;
  readonly peer: PeerCertificate;

  constructor(deviceId: string, serial = '0a1b') {
    this.peer = { deviceId, fingerprint: `fp-${deviceId}-${serial}`, serial };
  }

  end(): void {
    this.ended += 1;
    setImmediate(() => this.handle?.closed('socket_closed'));
  }

  async deliver(topic: string, payload: Buffer): Promise<boolean> {
    this.delivered.push(`${topic} ${payload.toString()}`);
    return true;
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

/** The contract every `SessionTable` implementation passes. */
export function describeSessionTable(name: string, make: SessionTableMaker): void {
  describe(`SessionTable contract: ${name}`, () => {
    const open = async () => {
      const f = fixture();
      const table = await make(f.deps);
      table.start();
      const admit = async (c: FakeConnection) => {
        const a = await table.admit(c);
        if (a.admitted) c.handle = a.session;
        return a;
      };
      return { ...f, table, admit };
    };

    it('admits a live device, knows it is connected, and forgets it once its connection is gone', async () => {
      const { table, admit, calls, claims } = await open();
      const c = new FakeConnection('d1');
      const a = await admit(c);
      assert.equal(a.admitted, true);
      assert.equal(table.isConnected('d1'), true);
      assert.equal(table.localCount, 1);
      assert.deepEqual(
        [...table.local()].map((s) => s.deviceId),
        ['d1'],
      );
      assert.equal(c.handle?.closed('client_disconnected'), 'client_disconnected');
      assert.equal(c.handle?.closed('client_disconnected'), undefined, 'a close is reported once');
      assert.equal(table.isConnected('d1'), false);
      await settle();
      assert.deepEqual(calls, ['connect d1', 'disconnect d1 client_disconnected']);
      assert.equal(claims[1], claims[0], 'the disconnect names the claim its connect was recorded with');
      table.stop();
    });

    it('refuses a device identity does not admit, and registers nothing for it', async () => {
      const { table, admit, refused, calls } = await open();
      refused.set('d1', 'device d1 is suspended');
      const a = await admit(new FakeConnection('d1'));
      assert.deepEqual(a, { admitted: false, reason: 'not_admitted', message: 'device d1 is suspended' });
      assert.equal(table.isConnected('d1'), false);
      assert.deepEqual(calls, []);
      table.stop();
    });

    it('ends the older session of a device when a new connection of it is admitted (taken_over), and leaves the new one alone', async () => {
      const { table, admit, calls, claims } = await open();
      const first = new FakeConnection('d1');
      const second = new FakeConnection('d1');
      await admit(first);
      await admit(second);
      assert.equal(first.ended, 1);
      assert.equal(first.handle?.endReason, 'taken_over');
      await settle();
      assert.equal(table.isConnected('d1'), true, 'the successor keeps the device connected');
      assert.equal(table.localCount, 1);
      assert.deepEqual(calls, ['connect d1', 'connect d1'], 'a takeover does not mark the device offline');
      assert.ok((claims[1] ?? -1) >= (claims[0] ?? Infinity), `the successor's claim is not older (${claims.join(', ')})`);
      assert.equal(await table.publishToDevice('d1', 'devices/d1/commands/x', Buffer.from('go'), 1), true);
      assert.deepEqual([first.delivered, second.delivered], [[], ['devices/d1/commands/x go']]);
      table.stop();
    });

    it('delivers to the device that holds the session and answers false for one that has none', async () => {
      const { table, admit } = await open();
      const c = new FakeConnection('d1');
      await admit(c);
      assert.equal(await table.publishToDevice('d2', 'devices/d2/ota/job', Buffer.from('{}'), 1), false);
      assert.equal(await table.publishToDevice('d1', 'devices/d1/ota/job', Buffer.from('{}'), 1), true);
      assert.deepEqual(c.delivered, ['devices/d1/ota/job {}']);
      table.stop();
    });

    it('turns a revocation of the session certificate, a suspension and a decommissioning into kicks', async () => {
      const { table, admit, deps, calls } = await open();
      const [a, b, c] = [new FakeConnection('a', '0a1b'), new FakeConnection('b'), new FakeConnection('c')];
      for (const x of [a, b, c]) await admit(x);
      await deps.bus.publish({ type: 'certificate.revoked', deviceId: 'a', serial: 'ffff', reason: 'superseded' });
      assert.equal(a.ended, 0, 'another certificate of the device was revoked: the session stays');
      await deps.bus.publish({ type: 'certificate.revoked', deviceId: 'a', serial: '000A1B', reason: 'key compromise' });
      await deps.bus.publish({ type: 'device.suspended', deviceId: 'b' });
      await deps.bus.publish({ type: 'device.decommissioned', deviceId: 'c' });
      await deps.bus.publish({ type: 'device.suspended', deviceId: 'nobody' });
      await settle();
      assert.deepEqual([a.ended, b.ended, c.ended], [1, 1, 1]);
      assert.equal(table.localCount, 0);
      assert.deepEqual(calls.filter((x) => x.startsWith('disconnect')).sort(), ['disconnect a certificate_revoked', 'disconnect b device_suspended', 'disconnect c device_decommissioned']);
      table.stop();
    });

    it('ends a session whose admission no longer holds by the time it is registered (a kick heard while it was admitted)', async () => {
      const { table, admit, suspendedDuringAdmission, calls } = await open();
      suspendedDuringAdmission.add('d1');
      const c = new FakeConnection('d1');
      await admit(c);
      await settle();
      assert.equal(c.ended, 1);
      assert.equal(table.isConnected('d1'), false);
      assert.ok(calls.includes('check d1'), 'admission read again');
      table.stop();
    });

    it('reads an admission only once when no kick was heard while it was admitted', async () => {
      const { table, admit, calls } = await open();
      await admit(new FakeConnection('d1'));
      await settle();
      assert.equal(table.isConnected('d1'), true);
      assert.deepEqual(
        calls.filter((x) => x.startsWith('check')),
        [],
      );
      table.stop();
    });

    it('kicks on request only the session that matches, and keeps the first reason given for a session', async () => {
      const { table, admit } = await open();
      const c = new FakeConnection('d1', '01');
      await admit(c);
      assert.equal(await table.kick('d1', 'issuer_no_longer_trusted', (s) => s.peer.serial === '02'), false);
      assert.equal(await table.kick('d2', 'device_suspended'), false);
      c.handle?.ending('acl_outside_own_tree');
      assert.equal(await table.kick('d1', 'issuer_no_longer_trusted'), true);
      await settle();
      assert.equal(c.ended, 1);
      assert.equal(c.handle?.closed('x'), undefined, 'already reported by the kick');
      table.stop();
    });

    it('stops listening for kicks when stopped, and marks the sessions it still holds as server_stopping', async () => {
      const { table, admit, deps } = await open();
      const c = new FakeConnection('d1');
      await admit(c);
      table.stop();
      await deps.bus.publish({ type: 'device.suspended', deviceId: 'd1' });
      assert.equal(c.ended, 0);
      assert.equal(c.handle?.closed('client_disconnected'), 'server_stopping');
    });
  });
}
