import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CommandRecord } from '../../diagnostics/index.js';
import type { HealthReport, PostureRecord } from '../../health/index.js';
import type { ConnectivityEvent, Device } from '../../registry/index.js';
import { type MakeStore, T0 } from './principal-repository.contract.js';

/** A registered device, offline and never seen (the store contracts' one device builder). */
export function testDevice(id: string, over: Partial<Device> = {}): Device {
  return {
    id,
    serial: null,
    model: null,
    hardwareRevision: null,
    firmwareVersion: null,
    securityVersion: null,
    owner: null,
    location: null,
    tags: [],
    state: 'active',
    suspendedFrom: null,
    createdAt: T0,
    updatedAt: T0,
    connectivity: { online: false, onlineSince: null, lastSeenAt: null, connectCount: 0, lastDisconnectAt: null, lastDisconnectReason: null },
    healthScore: 100,
    ...over,
  };
}

const device = (id: string, state: Device['state'] = 'active'): Device => testDevice(id, { state });

const desired = (version: number, config: Record<string, unknown> = { rate: version }) => ({ version, config, updatedAt: T0 + version, updatedBy: 'usr_1' });

export function command(id: string, over: Partial<CommandRecord> = {}): CommandRecord {
  return {
    id,
    deviceId: 'd1',
    name: 'reboot',
    params: { delayS: 1 },
    status: 'pending',
    issuedBy: 'usr_1',
    issuedAt: T0,
    expiresAt: T0 + 60_000,
    sentAt: null,
    sendCount: 0,
    answeredAt: null,
    reason: null,
    detail: null,
    output: null,
    updatedAt: T0,
    ...over,
  };
}

/** TwinRepository: desired versions are compare-and-set, reports and drift are per device. */
export function describeTwinRepository(make: MakeStore): void {
  describe('TwinRepository contract', () => {
    it('writes desired versions only over the version the writer saw', async (t) => {
      const { twins } = await make(t);
      assert.equal(await twins.get('d1'), undefined);
      assert.equal(await twins.putDesired('d1', 0, desired(1)), true);
      assert.equal(await twins.putDesired('d1', 0, desired(1, { rate: 'lost' })), false, 'a second writer that saw version 0 loses');
      assert.equal(await twins.putDesired('d1', 1, desired(2, { nested: { a: [1, 2] } })), true);
      const twin = await twins.get('d1');
      assert.deepEqual(twin?.desired, desired(2, { nested: { a: [1, 2] } }));
      assert.equal(twin?.reported, null);
      assert.equal(twin?.driftSince, null);
    });

    it('keeps the last report beside the desired state, and a report may come first', async (t) => {
      const { twins } = await make(t);
      const report = { version: 0, status: 'rejected' as const, config: { rate: 5 }, reason: 'params_invalid', detail: 'rate: too high', deviceTs: T0 - 5, receivedAt: T0 };
      await twins.putReported('d2', report);
      assert.deepEqual(await twins.get('d2'), { deviceId: 'd2', desired: null, reported: report, driftSince: null });
      assert.equal(await twins.putDesired('d2', 0, desired(1)), true);
      const applied = { ...report, version: 1, status: 'applied' as const, reason: null, detail: null, deviceTs: null };
      await twins.putReported('d2', applied);
      assert.deepEqual((await twins.get('d2'))?.reported, applied);
      assert.equal((await twins.get('d2'))?.desired?.version, 1);
    });

    it('lists twins drifting since a time, oldest first', async (t) => {
      const { twins } = await make(t);
      for (const [id, since] of [
        ['a', T0 + 30],
        ['b', T0 + 10],
        ['c', null],
        ['d', T0 + 100],
      ] as const) {
        await twins.putDesired(id, 0, desired(1));
        await twins.setDriftSince(id, since);
      }
      assert.deepEqual(
        (await twins.listDrifting(T0 + 50, 10)).map((x) => x.deviceId),
        ['b', 'a'],
      );
      assert.deepEqual(
        (await twins.listDrifting(T0 + 500, 1)).map((x) => x.deviceId),
        ['b'],
      );
      await twins.setDriftSince('b', null);
      assert.deepEqual(
        (await twins.listDrifting(T0 + 500, 10)).map((x) => [x.deviceId, x.driftSince]),
        [
          ['a', T0 + 30],
          ['d', T0 + 100],
        ],
      );
    });
  });
}

/** CommandRepository: records, answers that never overwrite a final state, expiry. */
export function describeCommandRepository(make: MakeStore): void {
  describe('CommandRepository contract', () => {
    it('stores, lists newest first and filters', async (t) => {
      const { commands } = await make(t);
      await commands.insert(command('c1'));
      await commands.insert(command('c2', { issuedAt: T0 + 1, name: 'logs.stream', params: { level: 'info' } }));
      await commands.insert(command('c3', { deviceId: 'd2', issuedAt: T0 + 2 }));
      assert.deepEqual(await commands.get('d1', 'c1'), command('c1'));
      assert.equal(await commands.get('d2', 'c1'), undefined, 'ids are per device');
      assert.deepEqual(
        (await commands.list({ deviceId: 'd1', limit: 10 })).map((c) => c.id),
        ['c2', 'c1'],
      );
      assert.deepEqual(
        (await commands.list({ deviceId: 'd1', name: 'reboot', limit: 10 })).map((c) => c.id),
        ['c1'],
      );
      assert.deepEqual(await commands.list({ deviceId: 'd1', status: 'sent', limit: 10 }), []);
    });

    it('marks sends, records answers once a command ends, and never after', async (t) => {
      const { commands } = await make(t);
      await commands.insert(command('c1'));
      await commands.markSent('d1', 'c1', T0 + 5);
      await commands.markSent('d1', 'c1', T0 + 9);
      const sent = await commands.get('d1', 'c1');
      assert.deepEqual([sent?.status, sent?.sentAt, sent?.sendCount], ['sent', T0 + 9, 2]);
      assert.equal(await commands.answer('d1', 'c1', { status: 'accepted', reason: null, detail: null, output: null, at: T0 + 10 }), true);
      assert.equal(await commands.answer('d1', 'c1', { status: 'succeeded', reason: null, detail: null, output: { took: 3, list: ['x'] }, at: T0 + 11 }), true);
      assert.equal(await commands.answer('d1', 'c1', { status: 'failed', reason: 'late', detail: null, output: null, at: T0 + 12 }), false);
      const done = await commands.get('d1', 'c1');
      assert.deepEqual([done?.status, done?.answeredAt, done?.output], ['succeeded', T0 + 11, { took: 3, list: ['x'] }]);
      assert.equal(await commands.answer('d1', 'missing', { status: 'failed', reason: null, detail: null, output: null, at: T0 }), false);
    });

    it('lists open commands until they expire, then expires them', async (t) => {
      const { commands } = await make(t);
      await commands.insert(command('early', { expiresAt: T0 + 100 }));
      await commands.insert(command('late', { issuedAt: T0 + 1, expiresAt: T0 + 1000 }));
      await commands.insert(command('running', { status: 'accepted', expiresAt: T0 + 100 }));
      assert.deepEqual(
        (await commands.listOpen('d1', T0 + 50, 10)).map((c) => c.id),
        ['early', 'late'],
      );
      assert.equal(await commands.countOpen('d1', T0 + 50), 3);
      assert.deepEqual(
        (await commands.listOpen('d1', T0 + 100, 10)).map((c) => c.id),
        ['late'],
      );
      assert.equal(await commands.expire(T0 + 100, 500), 1);
      assert.equal((await commands.get('d1', 'early'))?.status, 'expired');
      assert.equal((await commands.get('d1', 'running'))?.status, 'accepted', 'a running command gets its grace');
      assert.equal(await commands.expire(T0 + 600, 500), 1);
      assert.deepEqual([(await commands.get('d1', 'running'))?.status, (await commands.get('d1', 'running'))?.reason], ['expired', 'no_result']);
      assert.equal(await commands.answer('d1', 'early', { status: 'succeeded', reason: null, detail: null, output: null, at: T0 + 700 }), true, 'a late answer still lands');
      assert.equal(await commands.deleteEndedBefore(T0 + 650), 1);
      assert.deepEqual((await commands.list({ deviceId: 'd1', limit: 10 })).map((c) => c.id).sort(), ['early', 'late']);
    });
  });
}

const report = (uptimeS: number): HealthReport => ({ ts: T0 + uptimeS, boot: 'b1', uptimeS, cpuLoad1: 0.5, restartLoop: false, firmware: { version: '1.0.0' } });

/** HealthRepository and EventRepository: bounded history, idempotent events, retention by time. */
export function describeHealthRepositories(make: MakeStore): void {
  describe('HealthRepository and EventRepository contract', () => {
    it('keeps the newest reports of each device up to the bound', async (t) => {
      const { health } = await make(t);
      for (let i = 1; i <= 6; i += 1) await health.insert({ deviceId: 'd1', receivedAt: T0 + i, report: report(i) }, 4);
      await health.insert({ deviceId: 'd2', receivedAt: T0, report: report(0) }, 4);
      const kept = await health.history('d1', 10);
      assert.deepEqual(
        kept.map((h) => h.receivedAt),
        [T0 + 6, T0 + 5, T0 + 4, T0 + 3],
      );
      assert.deepEqual(kept[0]?.report, report(6));
      assert.equal((await health.history('d2', 10)).length, 1);
      assert.equal(await health.deleteBefore(T0 + 4), 2);
      assert.deepEqual(
        (await health.history('d1', 10)).map((h) => h.receivedAt),
        [T0 + 6, T0 + 5, T0 + 4],
      );
    });

    it('stores each event once, lists newest first with filters, and deletes by age', async (t) => {
      const { events } = await make(t);
      const e = (id: string, type: string, at: number) => ({ deviceId: 'd1', id, type, ts: at - 3, receivedAt: at, data: type === 'crash' ? { signal: 'SIGSEGV' } : null });
      assert.equal(await events.insert(e('e1', 'boot', T0)), true);
      assert.equal(await events.insert(e('e1', 'boot', T0 + 9)), false, 'a retried event is not stored twice');
      assert.equal(await events.insert(e('e2', 'crash', T0 + 1)), true);
      assert.equal(await events.insert({ ...e('e1', 'boot', T0 + 2), deviceId: 'd2' }), true);
      assert.deepEqual(await events.list({ deviceId: 'd1', limit: 10 }), [e('e2', 'crash', T0 + 1), e('e1', 'boot', T0)]);
      assert.deepEqual(
        (await events.list({ deviceId: 'd1', type: 'boot', limit: 10 })).map((x) => x.id),
        ['e1'],
      );
      assert.deepEqual(
        (await events.list({ deviceId: 'd1', sinceMs: T0 + 1, limit: 10 })).map((x) => x.id),
        ['e2'],
      );
      assert.equal(await events.deleteBefore(T0 + 1), 1);
      assert.equal((await events.list({ deviceId: 'd1', limit: 10 })).length, 1);
    });

    it('keeps the newest posture of each device with its findings, never an older one over it; the checklist counts live devices by their worst finding', async (t) => {
      const { health, devices, checklist } = await make(t);
      const debug = { kind: 'debug-port' as const, severity: 'fail' as const, detail: 'adb listening on tcp 0.0.0.0:5555' };
      const serial = { kind: 'serial-console' as const, severity: 'warn' as const, detail: 'serial console on ttyS0' };
      const rec = (deviceId: string, at: number, findings: PostureRecord['findings']) => ({ deviceId, reportedAt: at, posture: { listeningTotal: at - T0 }, findings });
      assert.equal(await health.posture('p1'), null);
      await health.setPosture(rec('p1', T0 + 5, [debug, serial]));
      await health.setPosture(rec('p1', T0 + 2, []));
      assert.deepEqual(await health.posture('p1'), rec('p1', T0 + 5, [debug, serial]), 'a posture reported earlier (a late write) does not replace a newer one');
      await health.setPosture(rec('p2', T0 + 6, [serial]));
      await health.setPosture(rec('p3', T0 + 6, []));
      await health.setPosture(rec('gone', T0 + 6, [debug]));
      await devices.insertMany([device('p1', 'active'), device('p2', 'provisioned'), device('p3', 'active'), device('gone', 'decommissioned')]);
      assert.deepEqual(await checklist.postureFindings(10), { fail: 1, warn: 1, sample: [rec('p1', T0 + 5, [debug, serial]), rec('p2', T0 + 6, [serial])].map(({ posture: _p, ...r }) => r) });
      assert.deepEqual(
        (await checklist.postureFindings(1)).sample.map((d) => d.deviceId),
        ['p1'],
        'failing devices first',
      );
      await health.deleteBefore(T0 + 6);
      assert.equal(await health.posture('p1'), null, 'a posture goes with the reports of its age');
      assert.deepEqual((await checklist.postureFindings(10)).fail, 0);
    });
  });
}

const connect = (id: string, node: string, claim: number, at: number, address?: string): ConnectivityEvent => ({ kind: 'connect', id, at, node, claim, ...(address ? { address } : {}) });
const disconnect = (id: string, node: string, claim: number, at: number, reason: string): ConnectivityEvent => ({ kind: 'disconnect', id, at, reason, node, claim });

/** DeviceRepository connectivity: connects and disconnects land in the order given, many in one call. */
export function describeDeviceConnectivity(make: MakeStore): void {
  describe('DeviceRepository connectivity contract', () => {
    it('applies a batch of connects and disconnects in order, per device', async (t) => {
      const { devices } = await make(t);
      await devices.insertMany([device('a'), device('b')]);
      const node = 'n1';
      await devices.recordConnectivity([
        { kind: 'connect', id: 'a', at: T0 + 1, node },
        { kind: 'disconnect', id: 'a', at: T0 + 2, reason: 'taken_over', node },
        { kind: 'connect', id: 'a', at: T0 + 3, node },
        { kind: 'connect', id: 'b', at: T0 + 4, node },
        { kind: 'disconnect', id: 'b', at: T0 + 5, reason: 'keepalive_timeout', node },
        { kind: 'connect', id: 'missing', at: T0 + 6, node },
      ]);
      assert.deepEqual((await devices.get('a'))?.connectivity, { online: true, onlineSince: T0 + 3, lastSeenAt: T0 + 3, connectCount: 2, lastDisconnectAt: T0 + 2, lastDisconnectReason: 'taken_over' });
      assert.deepEqual((await devices.get('b'))?.connectivity, { online: false, onlineSince: null, lastSeenAt: T0 + 5, connectCount: 1, lastDisconnectAt: T0 + 5, lastDisconnectReason: 'keepalive_timeout' });
      await devices.recordConnectivity([]);
      assert.deepEqual(
        (await devices.list({ seenBefore: T0 + 6, limit: 10 })).map((d) => d.id),
        ['b'],
        'offline and last seen before: not the online one',
      );
      assert.deepEqual(await devices.list({ seenBefore: T0 + 5, limit: 10 }), []);
    });

    it('lets a node end only the sessions it holds, and mark offline only its own devices', async (t) => {
      const { devices } = await make(t);
      await devices.insertMany([device('moved'), device('on-a'), device('on-b')]);
      await devices.recordConnectivity([
        { kind: 'connect', id: 'moved', at: T0 + 1, node: 'a' },
        { kind: 'connect', id: 'on-a', at: T0 + 1, node: 'a' },
        { kind: 'connect', id: 'on-b', at: T0 + 1, node: 'b' },
        // The device moved to b; a hears its old connection close afterwards.
        { kind: 'connect', id: 'moved', at: T0 + 2, node: 'b' },
        { kind: 'disconnect', id: 'moved', at: T0 + 3, reason: 'taken_over', node: 'a' },
      ]);
      assert.equal((await devices.get('moved'))?.connectivity.online, true, 'a late disconnect from the old node leaves the new session alone');
      // Node a claimed 'again-on-a' again after its lease was taken (at T0 + 4), before the mark decided at T0 + 3 was written.
      await devices.insertMany([device('again-on-a')]);
      await devices.recordConnectivity([
        { kind: 'connect', id: 'again-on-a', at: T0 + 1, node: 'a' },
        { kind: 'connect', id: 'again-on-a', at: T0 + 4, node: 'a' },
      ]);
      assert.equal(await devices.markNodeOffline('a', T0 + 5, 'node_lease_expired', T0 + 3), 1);
      assert.equal((await devices.get('on-a'))?.connectivity.lastDisconnectReason, 'node_lease_expired');
      assert.equal((await devices.get('on-b'))?.connectivity.online, true, "another node's devices stay online");
      assert.equal((await devices.get('moved'))?.connectivity.online, true);
      assert.equal((await devices.get('again-on-a'))?.connectivity.online, true, 'a session recorded after the decision stays online');
      assert.equal(await devices.markNodeOffline('b', T0 + 6, 'node_restarted', T0 + 6), 2);
    });

    it('records a session taken over from another address while the device was online (a cloned identity shows so)', async (t) => {
      const { devices, checklist } = await make(t);
      await devices.insertMany([device('twice'), device('back')]);
      await devices.recordConnectivity([{ kind: 'connect', id: 'twice', at: T0 + 1, node: 'n', address: '10.0.0.1' }]);
      // Taken over from another address while online: recorded; then again from the same address: not.
      await devices.recordConnectivity([{ kind: 'connect', id: 'twice', at: T0 + 2, node: 'n', address: '10.0.0.2' }]);
      await devices.recordConnectivity([{ kind: 'connect', id: 'twice', at: T0 + 3, node: 'n', address: '10.0.0.2' }]);
      await devices.recordConnectivity([
        { kind: 'connect', id: 'back', at: T0 + 1, node: 'n', address: '10.0.0.7' },
        { kind: 'disconnect', id: 'back', at: T0 + 2, reason: 'keepalive_timeout', node: 'n' },
        // Back after going offline, from elsewhere: a reconnect, not a takeover.
        { kind: 'connect', id: 'back', at: T0 + 3, node: 'n', address: '10.0.0.8' },
        { kind: 'connect', id: 'back', at: T0 + 4, node: 'n' },
      ]);
      assert.deepEqual(await checklist.takeovers(T0, 1), [{ deviceId: 'twice', count: 1, addresses: ['10.0.0.1', '10.0.0.2'] }]);
      assert.deepEqual(await checklist.takeovers(T0 + 3, 1), []);
    });

    it('embedded mode (every claim 0): connects and disconnects follow the node alone, as before claims', async (t) => {
      const { devices } = await make(t);
      await devices.insertMany([device('e')]);
      await devices.recordConnectivity([connect('e', 'local', 0, T0 + 1), connect('e', 'local', 0, T0 + 2), disconnect('e', 'local', 0, T0 + 3, 'keepalive_timeout')]);
      assert.deepEqual((await devices.get('e'))?.connectivity, { online: false, onlineSince: null, lastSeenAt: T0 + 3, connectCount: 2, lastDisconnectAt: T0 + 3, lastDisconnectReason: 'keepalive_timeout' });
      await devices.recordConnectivity([disconnect('e', 'local', 0, T0 + 4, 'client_disconnected'), connect('e', 'local', 0, T0 + 5)]);
      assert.deepEqual((await devices.get('e'))?.connectivity, { online: true, onlineSince: T0 + 5, lastSeenAt: T0 + 5, connectCount: 3, lastDisconnectAt: T0 + 4, lastDisconnectReason: 'client_disconnected' });
      assert.equal(await devices.markAllOffline(T0 + 6, 'server_restarted'), 1);
      await devices.recordConnectivity([connect('e', 'local', 0, T0 + 7)]);
      assert.equal((await devices.get('e'))?.connectivity.onlineSince, T0 + 7);
    });

    it('follows the session with the newer claim whatever order two nodes write in: an older connect or disconnect landing late changes nothing', async (t) => {
      const { devices, checklist } = await make(t);
      await devices.insertMany([device('late'), device('in-order')]);
      // Node a admitted the device with claim 1, slowly; the device gave up and reconnected to b (claim 2), whose connect landed first.
      await devices.recordConnectivity([connect('late', 'b', 2, T0 + 2, '10.0.0.2')]);
      await devices.recordConnectivity([connect('late', 'a', 1, T0 + 3, '10.0.0.1')]);
      // The same two sessions written in claim order.
      await devices.recordConnectivity([connect('in-order', 'a', 1, T0 + 1, '10.0.0.1')]);
      await devices.recordConnectivity([connect('in-order', 'b', 2, T0 + 2, '10.0.0.2')]);
      const onB = { online: true, onlineSince: T0 + 2, lastSeenAt: T0 + 2, connectCount: 1, lastDisconnectAt: null, lastDisconnectReason: null };
      assert.deepEqual((await devices.get('late'))?.connectivity, onB, "a's late connect (claim 1) leaves b's session (claim 2) in place");
      assert.deepEqual(
        (await checklist.takeovers(T0, 1)).map((x) => x.deviceId),
        ['in-order'],
        'a refused connect takes nothing over',
      );
      await devices.recordConnectivity([disconnect('late', 'a', 1, T0 + 4, 'taken_over'), disconnect('in-order', 'a', 1, T0 + 4, 'taken_over')]);
      assert.deepEqual((await devices.get('late'))?.connectivity, onB, "a's disconnect (claim 1) leaves the device online on b");
      assert.deepEqual((await devices.get('in-order'))?.connectivity, { ...onB, connectCount: 2 });
      assert.equal(await devices.markNodeOffline('a', T0 + 5, 'node_lease_expired', T0 + 5), 0, 'the rows name b');
      await devices.recordConnectivity([disconnect('late', 'b', 2, T0 + 6, 'client_disconnected')]);
      assert.deepEqual((await devices.get('late'))?.connectivity, { online: false, onlineSince: null, lastSeenAt: T0 + 6, connectCount: 1, lastDisconnectAt: T0 + 6, lastDisconnectReason: 'client_disconnected' }, "b's disconnect (claim 2) ends it");
    });

    it('keeps the claim of a session that ended: a connect older than it is refused, a newer one (another node, or a node claiming again after its lease) is not', async (t) => {
      const { devices } = await make(t);
      await devices.insertMany([device('ended'), device('marked')]);
      await devices.recordConnectivity([connect('ended', 'b', 2, T0 + 2), disconnect('ended', 'b', 2, T0 + 3, 'client_disconnected')]);
      await devices.recordConnectivity([connect('ended', 'a', 1, T0 + 4), disconnect('ended', 'a', 1, T0 + 5, 'taken_over')]);
      const ended = { online: false, onlineSince: null, lastSeenAt: T0 + 3, connectCount: 1, lastDisconnectAt: T0 + 3, lastDisconnectReason: 'client_disconnected' };
      assert.deepEqual((await devices.get('ended'))?.connectivity, ended, 'a session older than one that connected and ended since: its connect and disconnect change nothing');
      await devices.recordConnectivity([connect('ended', 'a', 3, T0 + 6)]);
      assert.deepEqual((await devices.get('ended'))?.connectivity, { ...ended, online: true, onlineSince: T0 + 6, lastSeenAt: T0 + 6, connectCount: 2 });

      // Node a's lease expired: its device is marked offline and keeps a's claim.
      await devices.recordConnectivity([connect('marked', 'a', 5, T0 + 1)]);
      assert.equal(await devices.markNodeOffline('a', T0 + 2, 'node_lease_expired', T0 + 2), 1);
      await devices.recordConnectivity([connect('marked', 'b', 4, T0 + 3)]);
      assert.equal((await devices.get('marked'))?.connectivity.online, false, 'an older claim does not bring it back');
      await devices.recordConnectivity([disconnect('marked', 'a', 5, T0 + 4, 'keepalive_timeout')]);
      assert.equal((await devices.get('marked'))?.connectivity.lastDisconnectReason, 'keepalive_timeout', 'the marked session still records how it ended');
      await devices.recordConnectivity([connect('marked', 'a', 6, T0 + 5)]);
      assert.deepEqual((await devices.get('marked'))?.connectivity, { online: true, onlineSince: T0 + 5, lastSeenAt: T0 + 5, connectCount: 2, lastDisconnectAt: T0 + 4, lastDisconnectReason: 'keepalive_timeout' }, 'a claims it again');
    });

    it('forgets claims where they start again: above a session directory made anew, and every one at an embedded start', async (t) => {
      const { devices } = await make(t);
      await devices.insertMany([device('old'), device('forgotten'), device('kept')]);
      await devices.recordConnectivity([connect('old', 'a', 500, T0 + 1), disconnect('old', 'a', 500, T0 + 2, 'client_disconnected'), connect('forgotten', 'a', 50, T0 + 1), connect('kept', 'a', 5, T0 + 1)]);
      // The directory was made anew and has issued revisions up to 10.
      assert.equal(await devices.forgetClaimsAbove(10), 2);
      await devices.recordConnectivity([connect('old', 'b', 3, T0 + 3), connect('kept', 'b', 3, T0 + 3)]);
      assert.equal((await devices.get('old'))?.connectivity.online, true, 'a claim of the new directory is no longer refused');
      assert.equal((await devices.get('kept'))?.connectivity.onlineSince, T0 + 1, 'a claim at or below the last revision stays');
      await devices.recordConnectivity([disconnect('forgotten', 'a', 50, T0 + 4, 'client_disconnected')]);
      assert.equal((await devices.get('forgotten'))?.connectivity.online, false, 'a forgotten claim (0) lets its node end the session');
      // Embedded start on a database a cluster used: claims are 0 from now on.
      assert.equal(await devices.markAllOffline(T0 + 5, 'server_restarted'), 2);
      await devices.recordConnectivity([connect('kept', 'local', 0, T0 + 6), connect('old', 'local', 0, T0 + 6), disconnect('old', 'local', 0, T0 + 7, 'client_disconnected')]);
      assert.equal((await devices.get('kept'))?.connectivity.online, true);
      assert.equal((await devices.get('old'))?.connectivity.lastDisconnectAt, T0 + 7);
      assert.equal(await devices.forgetClaimsAbove(0), 0);
    });
  });
}
