import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { it } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { SseWriter } from '../http/sse.js';
import { sseSink } from './live.js';
import type { TelemetryRecord } from './ingest.js';

/** A response whose reader has stopped reading: every write after the first reports backpressure. */
class StalledResponse extends EventEmitter {
  readonly written: string[] = [];
  write(chunk: string): boolean {
    this.written.push(chunk);
    return this.written.length < 2;
  }
}

const reading = (i: number): TelemetryRecord => ({ deviceId: 'd1', msgId: `m${i}`, schemaId: 's@1', seq: i, boot: null, deviceTs: null, receivedAt: i, ts: i, skewMs: null, data: { i } });

it('bounds what a stalled live subscriber holds, drops the oldest, counts them, and says so when it drains', () => {
  const registry = new Registry();
  const dropped = new Counter({ name: 'dropped_total', help: 'x', registers: [registry] });
  const res = new StalledResponse();
  const sub = new SseWriter(res as unknown as ServerResponse, 10, dropped);
  const push = sseSink(sub);
  for (let i = 0; i < 25; i += 1) push(reading(i));
  assert.equal(res.written.length, 2, 'nothing more is written while the reader is stalled');
  assert.equal(sub.droppedCount, 13, '25 readings, 2 written, 10 queued');
  res.written.length = 0;
  res.write = (chunk: string) => {
    res.written.push(chunk);
    return true;
  };
  res.emit('drain');
  assert.match(res.written[0] ?? '', /event: dropped\ndata: \{"dropped":13\}/);
  assert.deepEqual(
    res.written.slice(1).map((w) => /"msgId":"(m\d+)"/.exec(w)?.[1]),
    Array.from({ length: 10 }, (_, i) => `m${i + 15}`),
  );
});
