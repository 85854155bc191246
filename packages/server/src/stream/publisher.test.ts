import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, connect } from '@nats-io/transport-node';
import pino from 'pino';
import { NatsLink } from '../cluster/nats.js';
import { type RunningEngine, describeWith, startNats } from '../testing/services.js';
import { StreamPublisher } from './publisher.js';

describeWith('StreamPublisher on a real nats-server', ['nats-server'], () => {
  let nats: RunningEngine;
  let link: NatsLink;
  /** Another client, for subscribers that never answer (the node's connection does not hear its own publishes). */
  let other: NatsConnection;
  before(async () => {
    nats = await startNats();
    link = await NatsLink.connect(nats.url, 'publisher-test', pino({ level: 'silent' }));
    other = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(link.nc);
    await jsm.streams.add({ name: 'PUBLISHER_TEST', subjects: ['ptest.>'], duplicate_window: 60_000_000_000 });
  });
  after(async () => {
    await other.close();
    await link.close();
    await nats.stop();
  });

  it("appends a turn's worth of messages, each acknowledged with its own sequence; a repeated message id is acknowledged as a duplicate", async (t) => {
    const publisher = new StreamPublisher(link.nc, 5_000);
    t.after(() => publisher.close());
    const acks = await Promise.all(Array.from({ length: 500 }, (_, i) => publisher.publish(`ptest.a.${i % 7}`, JSON.stringify({ i }), `a/${i}`)));
    assert.equal(new Set(acks.map((a) => a.seq)).size, 500);
    assert.ok(acks.every((a) => !a.duplicate));
    const again = await publisher.publish('ptest.a.0', '{}', 'a/3');
    assert.equal(again.duplicate, true);
    assert.equal(again.seq, acks[3]!.seq);
    const info = await (await jetstreamManager(link.nc)).streams.info('PUBLISHER_TEST');
    assert.equal(info.state.messages, 500);
  });

  it('fails an append to a subject no stream takes with "no responders", and one nobody answers with "timeout", as the callers\' retry rule expects', async (t) => {
    const publisher = new StreamPublisher(link.nc, 600);
    t.after(() => publisher.close());
    await assert.rejects(publisher.publish('nostream.x', '{}', 'n/1'), /no responders/);
    // A plain subscriber takes the message and never answers.
    const silent = other.subscribe('silent.x', { callback: () => undefined });
    t.after(() => silent.unsubscribe());
    await other.flush();
    await assert.rejects(publisher.publish('silent.x', '{}', 's/1'), /timeout/);
    // Still working after both.
    assert.equal((await publisher.publish('ptest.b', '{}', 'b/1')).duplicate, false);
  });

  it('fails what waits as a timeout when told the connection was lost (the caller sends again), and keeps working', async (t) => {
    const publisher = new StreamPublisher(link.nc, 5_000);
    t.after(() => publisher.close());
    const silent = other.subscribe('silent.z', { callback: () => undefined });
    t.after(() => silent.unsubscribe());
    await other.flush();
    const waiting = publisher.publish('silent.z', '{}', 'z/1');
    await new Promise((r) => setImmediate(r));
    publisher.failWaiting('the NATS connection was lost');
    await assert.rejects(waiting, /^Error: timeout: the NATS connection was lost/);
    assert.equal((await publisher.publish('ptest.d', '{}', 'd/1')).duplicate, false);
  });

  it('fails what waits when closed, and refuses new appends', async () => {
    const publisher = new StreamPublisher(link.nc, 5_000);
    const silent = other.subscribe('silent.y', { callback: () => undefined });
    await other.flush();
    const waiting = publisher.publish('silent.y', '{}', 'y/1');
    await new Promise((r) => setImmediate(r));
    publisher.close();
    await assert.rejects(waiting, /closed/);
    await assert.rejects(publisher.publish('ptest.c', '{}', 'c/1'), /closed/);
    silent.unsubscribe();
  });
});
