import assert from 'node:assert/strict';
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import { type TestContext, describe, it } from 'node:test';
import { ImpairProxy } from './impair-proxy.js';
import { NO_IMPAIRMENT } from './scenario.js';

/** An echo server behind the proxy; each client is a real TCP socket. */
async function setup(t: TestContext, lanes = 10, random: () => number = Math.random): Promise<{ proxy: ImpairProxy; open: (lane: number) => Promise<Socket> }> {
  const echo = createServer((s) => s.on('error', () => undefined).pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const proxy = await ImpairProxy.start({ host: '127.0.0.1', port: (echo.address() as AddressInfo).port }, lanes, random);
  t.after(async () => {
    await proxy.close();
    await new Promise((r) => echo.close(r));
  });
  const open = async (index: number) => {
    const s = connect(proxy.portFor(index, lanes));
    s.on('error', () => undefined);
    await new Promise((r) => s.once('connect', r));
    t.after(() => s.destroy());
    return s;
  };
  return { proxy, open };
}

const roundTrip = (s: Socket, text: string): Promise<number> =>
  new Promise((resolve) => {
    const start = performance.now();
    s.once('data', () => resolve(performance.now() - start));
    s.write(text);
  });
const closed = (s: Socket): Promise<void> => new Promise((r) => (s.destroyed ? r() : s.once('close', () => r())));

describe('impairment proxy', () => {
  it('delays each chunk by the latency (both ways), in order', async (t) => {
    const { proxy, open } = await setup(t);
    const s = await open(0);
    assert.ok((await roundTrip(s, 'a')) < 50);
    proxy.set({ ...NO_IMPAIRMENT, latencyMs: 100 });
    const took = await roundTrip(s, 'b');
    assert.ok(took >= 195, `round trip ${took} ms with 100 ms each way`);
    const got: string[] = [];
    s.on('data', (d) => got.push(d.toString()));
    for (const c of 'xyz') s.write(c);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(got.join(''), 'xyz');
  });

  it('a partition cuts the first share of the lanes: their bytes go nowhere, the other lanes carry on', async (t) => {
    const { proxy, open } = await setup(t);
    const [cut, kept] = [await open(0), await open(9)];
    proxy.set({ ...NO_IMPAIRMENT, partition: 0.5 });
    let heard = false;
    cut.once('data', () => (heard = true));
    cut.write('lost');
    await roundTrip(kept, 'kept');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(heard, false);
    assert.equal(cut.destroyed, false, 'a dead path, not a closed connection');
  });

  it('resets connections at the given rate and counts them; flapping drops every connection and refuses new ones for a while', async (t) => {
    const { proxy, open } = await setup(t, 10, () => 0);
    const s = await open(3);
    proxy.set({ ...NO_IMPAIRMENT, resetsPerMinute: 60 });
    await closed(s);
    assert.equal(proxy.counts.resets, 1);
    proxy.set({ ...NO_IMPAIRMENT, flapping: { everyMs: 1000, downMs: 500 } });
    const other = await open(5);
    await closed(other);
    assert.equal(proxy.counts.flapDrops, 1);
    const refused = connect(proxy.portFor(5, 10));
    refused.on('error', () => undefined);
    await closed(refused);
    assert.equal(proxy.counts.accepted, 2, 'the connection made while down was closed at once');
  });
});
