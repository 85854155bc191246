import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { describe, it, type TestContext } from 'node:test';
import { ManualClock } from '@bulwark/core';
import WebSocket from 'ws';
import type { TestServer } from '../testing/harness.js';
import { env, metric, setup } from '../testing/telemetry.js';

/** One event of a live stream as a client sees it: `ready`, `data` (a reading or log entry), `closed` (with its reason) or `end`. */
interface LiveEvent {
  readonly event: 'ready' | 'data' | 'closed' | 'end';
  readonly data: Record<string, unknown>;
}

interface Live {
  next(): Promise<LiveEvent>;
}

/** Events in arrival order; `next()` waits for the next one. */
class Inbox implements Live {
  readonly #events: LiveEvent[] = [];
  readonly #waiting: ((e: LiveEvent) => void)[] = [];
  push(e: LiveEvent): void {
    const w = this.#waiting.shift();
    if (w) w(e);
    else this.#events.push(e);
  }
  next(): Promise<LiveEvent> {
    const e = this.#events.shift();
    return e ? Promise.resolve(e) : new Promise((resolve) => this.#waiting.push(resolve));
  }
}

async function openSse(t: TestContext, s: TestServer, path: string, token: string): Promise<Live> {
  const abort = new AbortController();
  t.after(() => abort.abort());
  const res = await fetch(s.url + path, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
  assert.equal(res.status, 200, await (res.status === 200 ? '' : res.text()));
  const inbox = new Inbox();
  void (async () => {
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const name = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
          const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? '{}') as Record<string, unknown>;
          inbox.push({ event: name === 'ready' || name === 'closed' ? name : 'data', data });
        }
      }
    } catch {
      // Aborted by t.after.
    }
    inbox.push({ event: 'end', data: {} });
  })();
  return inbox;
}

async function openWs(t: TestContext, s: TestServer, path: string, token: string): Promise<Live> {
  const socket = new WebSocket(s.url.replace('http', 'ws') + path, { headers: { authorization: `Bearer ${token}` } });
  t.after(() => socket.terminate());
  const inbox = new Inbox();
  socket.on('message', (raw) => {
    const m = JSON.parse(String(raw)) as Record<string, unknown>;
    inbox.push({ event: m.ready === true ? 'ready' : 'data', data: m });
  });
  socket.on('close', (code, reason) => {
    inbox.push({ event: 'closed', data: { code, reason: reason.toString() } });
    inbox.push({ event: 'end', data: {} });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  return inbox;
}

interface World {
  readonly s: TestServer;
  readonly clock: ManualClock;
  /** An admin access token, renewed when the manual clock has moved on. */
  admin(): Promise<string>;
  /** Emits 'released' each time a stream handler drops its subscription to readings or logs. */
  readonly subscriptions: EventEmitter;
}

/** A live stream route, how to open it and how to make data flow on it. */
interface Kind {
  readonly name: string;
  open(t: TestContext, w: World, token: string): Promise<Live>;
  /** Makes one item (`tag` names it) flow on every stream of this kind. */
  send(w: World, tag: string): Promise<void>;
  /** The tag of a `data` event. */
  tagOf(data: Record<string, unknown>): unknown;
}

const deviceClient = new WeakMap<TestServer, Awaited<ReturnType<typeof setup>>['client']>();
const publishReading = async (w: World, tag: string) => {
  await deviceClient.get(w.s)?.publishAsync('devices/sensor-1/telemetry', env(tag, { temp_c: 20 }, { ts: w.clock.now() }), { qos: 1 });
};

const KINDS: readonly Kind[] = [
  {
    name: 'device telemetry (SSE)',
    open: (t, w, token) => openSse(t, w.s, '/api/v1/devices/sensor-1/telemetry/live', token),
    send: publishReading,
    tagOf: (d) => d.msgId,
  },
  {
    name: 'fleet telemetry (SSE)',
    open: (t, w, token) => openSse(t, w.s, '/api/v1/telemetry/live', token),
    send: publishReading,
    tagOf: (d) => d.msgId,
  },
  {
    name: 'fleet telemetry (WebSocket)',
    open: (t, w, token) => openWs(t, w.s, '/api/v1/telemetry/ws', token),
    send: publishReading,
    tagOf: (d) => d.msgId,
  },
  {
    name: 'device logs (SSE)',
    open: (t, w, token) => openSse(t, w.s, '/api/v1/devices/sensor-1/logs/live', token),
    send: async (w, tag) => {
      // Logs flow only inside a window an operator opened; the longest one outlasts every test here.
      const opened = await w.s.api('POST', '/api/v1/devices/sensor-1/logs/stream', { token: await w.admin(), body: { level: 'trace', durationS: 3600 } });
      assert.equal(opened.status, 201, opened.text);
      const batch = { entries: [{ ts: w.clock.now(), level: 'info', msg: tag }] };
      await deviceClient.get(w.s)?.publishAsync('devices/sensor-1/logs', JSON.stringify(batch), { qos: 1 });
    },
    tagOf: (d) => d.msg,
  },
];

async function world(t: TestContext): Promise<World> {
  const clock = new ManualClock(Date.now());
  const { s, admin: first, client } = await setup(t, { clock });
  deviceClient.set(s, client);
  let admin = { token: first, at: clock.now() };
  const subscriptions = new EventEmitter();
  // Watch the handlers' subscriptions: a stream closed under them must still let go of its source.
  const track =
    <A extends unknown[]>(subscribe: (...args: A) => () => void) =>
    (...args: A) => {
      const unsubscribe = subscribe(...args);
      return () => {
        unsubscribe();
        subscriptions.emit('released');
      };
    };
  s.server.ingest.onStored = track(s.server.ingest.onStored.bind(s.server.ingest));
  s.server.deviceOps.logs.subscribe = track(s.server.deviceOps.logs.subscribe.bind(s.server.deviceOps.logs));
  return {
    s,
    clock,
    subscriptions,
    async admin() {
      if (clock.now() - admin.at > s.server.config.auth.accessTokenTtlMs / 2) admin = { token: await s.tokenFor(s.adminKey), at: clock.now() };
      return admin.token;
    },
  };
}

/** An operator (telemetry:read, devices:logs) with one or more keys, and an access token per key. */
async function operator(w: World, name: string, keys = 1): Promise<{ id: string; keys: { id: string; token: string }[] }> {
  const admin = await w.admin();
  const user = await w.s.api('POST', '/api/v1/users', { token: admin, body: { name, role: 'operator' } });
  assert.equal(user.status, 201, user.text);
  const made: { id: string; token: string }[] = [];
  for (let i = 0; i < keys; i += 1) {
    const key = await w.s.api('POST', '/api/v1/keys', { token: admin, body: { name: `${name}-${i}`, principalId: user.body.id } });
    assert.equal(key.status, 201, key.text);
    made.push({ id: key.body.apiKey.id, token: await w.s.tokenFor(key.body.key) });
  }
  return { id: user.body.id, keys: made };
}

async function ready(live: Live): Promise<Live> {
  assert.equal((await live.next()).event, 'ready');
  return live;
}

/**
 * The stream ends with the platform's reason (SSE `event: closed`; WebSocket close 1008), and
 * nothing after it. Callers send an item first: a stream left open fails here at once with it.
 */
async function assertClosed(kind: Kind, live: Live, reason: string): Promise<void> {
  const closed = await live.next();
  assert.equal(closed.event, 'closed', `${kind.name}: expected the stream to close, got ${JSON.stringify(closed)}`);
  assert.deepEqual(closed.data, kind.name.includes('WebSocket') ? { code: 1008, reason } : { reason });
  assert.equal((await live.next()).event, 'end');
}

async function assertDelivered(kind: Kind, live: Live, tag: string): Promise<void> {
  const got = await live.next();
  assert.deepEqual([got.event, kind.tagOf(got.data)], ['data', tag], `${kind.name}: the stream still delivers`);
}

for (const kind of KINDS) {
  describe(`live stream closing: ${kind.name}`, () => {
    it("ends at once when its user is disabled; another user's stream keeps delivering", { timeout: 30_000 }, async (t) => {
      const w = await world(t);
      const [alice, bob] = [await operator(w, 'alice'), await operator(w, 'bob')];
      const a = await ready(await kind.open(t, w, alice.keys[0]?.token ?? ''));
      const b = await ready(await kind.open(t, w, bob.keys[0]?.token ?? ''));
      await kind.send(w, 'before');
      await assertDelivered(kind, a, 'before');
      await assertDelivered(kind, b, 'before');

      const released = once(w.subscriptions, 'released');
      const disabled = await w.s.api('POST', `/api/v1/users/${alice.id}/disable`, { token: await w.admin() });
      assert.equal(disabled.status, 200, disabled.text);
      await kind.send(w, 'after');
      await assertClosed(kind, a, 'credentials_revoked');
      await released;
      await assertDelivered(kind, b, 'after');
      assert.equal(await metric(w.s, /^bulwark_live_streams_closed_total\{reason="credentials_revoked"\} (\d+)$/m), 1);
    });

    it("ends at once when its key is revoked; a stream of the same user's other key, and another user's, keep delivering", { timeout: 30_000 }, async (t) => {
      const w = await world(t);
      const [alice, bob] = [await operator(w, 'alice', 2), await operator(w, 'bob')];
      const revoked = await ready(await kind.open(t, w, alice.keys[0]?.token ?? ''));
      const otherKey = await ready(await kind.open(t, w, alice.keys[1]?.token ?? ''));
      const otherUser = await ready(await kind.open(t, w, bob.keys[0]?.token ?? ''));

      const res = await w.s.api('POST', `/api/v1/keys/${alice.keys[0]?.id}/revoke`, { token: await w.admin() });
      assert.equal(res.status, 200, res.text);
      await kind.send(w, 'after');
      await assertClosed(kind, revoked, 'credentials_revoked');
      await assertDelivered(kind, otherKey, 'after');
      await assertDelivered(kind, otherUser, 'after');
    });

    it('is re-checked when its token expires: closed if the key no longer holds, kept (and checked one token lifetime later) if it does', { timeout: 30_000 }, async (t) => {
      const w = await world(t);
      const ttl = w.s.server.config.auth.accessTokenTtlMs;
      const [alice, bob] = [await operator(w, 'alice'), await operator(w, 'bob')];
      const a = await ready(await kind.open(t, w, alice.keys[0]?.token ?? ''));
      const b = await ready(await kind.open(t, w, bob.keys[0]?.token ?? ''));
      // Revoked behind the platform's back: no event, so only the re-check can notice.
      await w.s.server.store.apiKeys.revoke(alice.keys[0]?.id ?? '', w.clock.now());

      w.clock.advance(ttl + 1);
      await w.s.server.liveStreams.check();
      await kind.send(w, 'past-expiry');
      await assertClosed(kind, a, 'credentials_expired');
      await assertDelivered(kind, b, 'past-expiry');

      await w.s.server.store.apiKeys.revoke(bob.keys[0]?.id ?? '', w.clock.now());
      w.clock.advance(ttl - 1000);
      await w.s.server.liveStreams.check();
      await kind.send(w, 'not-due-yet');
      await assertDelivered(kind, b, 'not-due-yet');
      w.clock.advance(1001);
      await w.s.server.liveStreams.check();
      await kind.send(w, 'last');
      await assertClosed(kind, b, 'credentials_expired');
      assert.equal(await metric(w.s, /^bulwark_live_streams_closed_total\{reason="credentials_expired"\} (\d+)$/m), 2);
      assert.equal(w.s.server.liveStreams.open, 0, 'closed streams are forgotten');
    });
  });
}
