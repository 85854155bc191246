import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { it, type TestContext } from 'node:test';
import websocket from '@fastify/websocket';
import { ManualClock, silentLogger } from '@bulwark/core';
import Fastify from 'fastify';
import { Counter, Registry } from 'prom-client';
import WebSocket from 'ws';
import type { AuthContext } from '../access/index.js';
import { MemoryBus } from '../bus/index.js';
import { LiveStreams } from './live-streams.js';

/**
 * The moments a whole server cannot be made to hit on purpose: a revocation while a stream's
 * handler is still opening it, and a write in the instant after the close. A bare Fastify app
 * with stand-in live routes, the real LiveStreams and an in-memory bus.
 */

const auth: AuthContext = {
  principal: { id: 'usr_1', kind: 'user', name: 'alice', role: 'viewer', scopes: [], deviceGroups: null, createdAt: 0, disabledAt: null },
  keyId: 'key_1',
  scopes: ['telemetry:read'],
  tokenExpiresAt: 60_000,
};
const revoke = { type: 'credentials.revoked', principalId: 'usr_1', keyId: null, reason: 'principal_disabled' } as const;

function gate(): { wait: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

async function harness(t: TestContext, o: { stillValid?: () => Promise<boolean> } = {}) {
  const app = Fastify();
  await app.register(websocket);
  const bus = new MemoryBus(silentLogger);
  const clock = new ManualClock(0);
  const closed = new Counter({ name: 'closed_total', help: 'x', labelNames: ['reason'] as const, registers: [new Registry()] });
  const streams = new LiveStreams({ bus, stillValid: o.stillValid ?? (async () => true), clock, log: silentLogger, closed, tokenTtlMs: 60_000, checkIntervalMs: 0 });
  app.addHook('onRequest', async (request) => {
    request.auth = auth;
  });
  streams.attach(app);
  const handlerEntered = gate();
  const handlerMayOpen = gate();
  const responses: ServerResponse[] = [];
  app.get('/api/v1/telemetry/live', async (_request, reply) => {
    handlerEntered.open();
    await handlerMayOpen.wait; // like the real handlers' registry look-ups
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
    reply.raw.write('event: ready\ndata: {}\n\n');
    responses.push(reply.raw);
  });
  const upgradeHeld = gate();
  const upgradeMayProceed = gate();
  app.register(async (scoped) => {
    // Runs after the root hooks, so after LiveStreams has registered the stream.
    scoped.addHook('preHandler', async () => {
      upgradeHeld.open();
      await upgradeMayProceed.wait;
    });
    scoped.get('/api/v1/telemetry/ws', { websocket: true }, (socket) => socket.send('{"ready":true}'));
  });
  streams.start();
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(async () => {
    streams.stop();
    await app.close();
  });
  return { url, bus, clock, streams, closed, responses, handlerEntered, handlerMayOpen, upgradeHeld, upgradeMayProceed };
}

async function openSse(t: TestContext, url: string): Promise<() => Promise<string>> {
  const abort = new AbortController();
  t.after(() => abort.abort());
  const res = await fetch(`${url}/api/v1/telemetry/live`, { signal: abort.signal });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  /** The next event block, or 'end'. */
  return async () => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        return block;
      }
      const { value, done } = await reader.read();
      if (done) return 'end';
      buffer += decoder.decode(value, { stream: true });
    }
  };
}

it('drops, without an unhandled error, what a handler writes between the close and its letting go of the source', async (t) => {
  const h = await harness(t);
  h.handlerMayOpen.open();
  const next = await openSse(t, h.url);
  assert.equal(await next(), 'event: ready\ndata: {}');
  await h.bus.publish(revoke);
  // The handler has not heard the request close yet: a reading arriving now is written after the end.
  assert.equal(h.responses[0]?.write('event: reading\ndata: {}\n\n'), false);
  assert.equal(await next(), 'event: closed\ndata: {"reason":"credentials_revoked"}');
  assert.equal(await next(), 'end');
  await new Promise<void>((resolve) => setImmediate(resolve)); // where the write's error is emitted
});

it('closes an SSE stream revoked while its handler was still opening it, once it has started', async (t) => {
  const h = await harness(t);
  const opening = openSse(t, h.url);
  await h.handlerEntered.wait;
  await h.bus.publish(revoke);
  h.handlerMayOpen.open();
  const next = await opening;
  assert.equal(await next(), 'event: ready\ndata: {}');
  assert.equal(await h.streams.check(), 1);
  assert.equal(await next(), 'event: closed\ndata: {"reason":"credentials_revoked"}');
  assert.equal(await next(), 'end');
  assert.equal(h.streams.open, 0);
});

it('closes a WebSocket revoked before its upgrade, as soon as it is upgraded', async (t) => {
  const h = await harness(t);
  const socket = new WebSocket(`${h.url.replace('http', 'ws')}/api/v1/telemetry/ws`);
  t.after(() => socket.terminate());
  const closedWith = new Promise<[number, string]>((resolve) => socket.on('close', (code, reason) => resolve([code, reason.toString()])));
  await h.upgradeHeld.wait;
  assert.equal(h.streams.open, 1);
  await h.bus.publish(revoke);
  h.upgradeMayProceed.open();
  assert.deepEqual(await closedWith, [1008, 'credentials_revoked']);
  assert.equal(h.streams.open, 0);
});

it('keeps a stream whose credentials cannot be checked (the store does not answer), and closes it once a check says no', async (t) => {
  let answer: () => Promise<boolean> = async () => {
    throw new Error('store down');
  };
  const h = await harness(t, { stillValid: () => answer() });
  h.handlerMayOpen.open();
  const next = await openSse(t, h.url);
  assert.equal(await next(), 'event: ready\ndata: {}');
  h.clock.advance(auth.tokenExpiresAt);
  assert.equal(await h.streams.check(), 0, 'kept while unknown');
  assert.equal(h.streams.open, 1);
  answer = async () => false;
  assert.equal(await h.streams.check(), 1, 'checked again on the next round, not a token lifetime later');
  assert.equal(await next(), 'event: closed\ndata: {"reason":"credentials_expired"}');
  assert.equal((await h.closed.get()).values.find((v) => v.labels.reason === 'credentials_expired')?.value, 1);
});
