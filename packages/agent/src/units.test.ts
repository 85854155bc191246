import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MESSAGE_EXAMPLES, TimeRequest, isMessage } from '@bulwark/protocol';
import { Backoff, seededRng } from './backoff.js';
import { refusalOf } from './connection.js';
import { SqliteQueue } from './queue.js';
import { TimeExchange, TimeSync } from './time-sync.js';

describe('backoff with full jitter', () => {
  it('draws each delay from [0, min(cap, base * 2^attempt)], the same for the same seed, and resets', () => {
    const a = new Backoff({ baseMs: 100, capMs: 1000 }, seededRng(7));
    const b = new Backoff({ baseMs: 100, capMs: 1000 }, seededRng(7));
    const windows = [100, 200, 400, 800, 1000, 1000];
    for (const w of windows) {
      assert.equal(a.window(), w);
      const d = a.next();
      assert.ok(d >= 0 && d < w, `${d} in [0, ${w})`);
      assert.equal(b.next(), d);
    }
    a.reset();
    assert.equal(a.window(), 100);
    a.atLeast(700);
    assert.equal(a.window(), 800);
  });

  it('spreads 1,000 first retries uniformly, not in a burst', () => {
    const rng = seededRng(1);
    const delays = Array.from({ length: 1000 }, () => new Backoff({ baseMs: 10_000, capMs: 60_000 }, rng).next());
    const buckets = Array.from({ length: 10 }, (_, i) => delays.filter((d) => Math.floor(d / 1000) === i).length);
    assert.ok(
      buckets.every((n) => n > 60 && n < 140),
      buckets.join(','),
    );
  });

  it('treats CONNACK refusals and TLS alerts as refusals, and resets as network trouble', () => {
    assert.equal(refusalOf(Object.assign(new Error('x'), { code: 5 })), 'not_authorized');
    assert.equal(refusalOf(Object.assign(new Error('x'), { code: 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED' })), 'tls_alert:certificate_revoked');
    assert.equal(refusalOf(Object.assign(new Error('x'), { code: 'ECONNRESET' })), undefined);
    assert.equal(refusalOf(Object.assign(new Error('x'), { code: 3 })), undefined);
  });
});

describe('time sync', () => {
  it('keeps the sample with the smallest round trip and maps monotonic time to platform time', () => {
    const s = new TimeSync(4);
    assert.equal(s.platformTime(10), undefined);
    // Device clock 3 h fast; platform answers after 5 ms one way.
    const skew = 3 * 3_600_000;
    s.add(1000 + skew, 1050, 1051, 1100 + skew, 1000, 1100); // 100 ms round trip, asymmetric
    s.add(2000 + skew, 2005, 2006, 2011 + skew, 2000, 2011); // 10 ms round trip
    assert.equal(s.best()?.rttMs, 10);
    assert.ok(Math.abs((s.best()?.offsetMs ?? 0) + skew) <= 1);
    assert.ok(Math.abs((s.platformTime(5000) ?? 0) - 5000) <= 1);
    assert.equal(s.add(1, 10, 5, 20, 0, 19), undefined, 't2 < t1 is refused');
  });

  it('sends TimeRequest messages and takes only a TimeAnswer to one of its own requests', () => {
    let wall = 1_000;
    const exchange = new TimeExchange(new TimeSync(4), { wall: () => wall, mono: () => wall - 900 });
    const request = JSON.parse(exchange.request()) as unknown;
    assert.ok(isMessage(TimeRequest, request), JSON.stringify(request));
    wall = 1_020;
    const reply = (body: unknown) => exchange.reply(Buffer.from(JSON.stringify(body)));
    assert.equal(reply(MESSAGE_EXAMPLES.TimeRefusal), undefined, 'a refusal is no sample');
    assert.equal(reply({ t0: 1_000, t1: 5_000 }), undefined, 'an answer without t2 is no sample');
    assert.equal(reply({ t0: 999, t1: 5_000, t2: 5_001 }), undefined, 'an answer to another request is no sample');
    assert.deepEqual(reply({ t0: 1_000, t1: 5_009, t2: 5_011 }), { offsetMs: 4_000, rttMs: 18, monoOffsetMs: 4_900, atMono: 120 });
    assert.equal(reply({ t0: 1_000, t1: 5_009, t2: 5_011 }), undefined, 'a request is answered once');
  });
});

describe('offline queue', () => {
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'bulwark-queue-'));
    return { d, file: join(d, 'q.db'), done: () => rmSync(d, { recursive: true, force: true }) };
  };
  const item = (n: number) => ({ topic: 't', body: JSON.stringify({ n }), boot: 'b', mono: n });

  it('bounds by count and bytes (oldest first) and by age, and counts each drop by reason', async (t) => {
    const { file, done } = dir();
    t.after(done);
    let now = 1_000_000;
    const q = new SqliteQueue(file, { maxItems: 5, maxBytes: 1_000_000, maxAgeMs: 10_000 }, () => now);
    t.after(() => q.close());
    await Promise.all(Array.from({ length: 8 }, (_, i) => q.add(item(i + 1))));
    assert.deepEqual(
      q.after(0, 100).map((r) => JSON.parse(r.body).n),
      [4, 5, 6, 7, 8],
    );
    assert.equal(q.counters().dropped_count, 3);
    now += 20_000;
    await q.add(item(9));
    assert.equal(q.purgeAged(), 4, 'rows older than maxAgeMs go, the fresh one stays');
    assert.equal(q.counters().dropped_age, 4);
    assert.equal(q.depth, 1);
  });

  it('keeps unacknowledged rows and its counters across a reopen; acknowledged rows are gone', async (t) => {
    const { file, done } = dir();
    t.after(done);
    const q = new SqliteQueue(file, { maxItems: 100, maxBytes: 1_000_000, maxAgeMs: 86_400_000 });
    await Promise.all([1, 2, 3].map((n) => q.add(item(n))));
    const [first] = q.after(0, 1);
    q.ack([first?.rowId ?? -1]);
    q.close();
    const again = new SqliteQueue(file, { maxItems: 100, maxBytes: 1_000_000, maxAgeMs: 86_400_000 });
    t.after(() => again.close());
    assert.deepEqual(
      again.after(0, 10).map((r) => JSON.parse(r.body).n),
      [2, 3],
    );
    assert.equal(again.counters().queued, 3);
    assert.equal(again.counters().acked, 1);
  });
});
