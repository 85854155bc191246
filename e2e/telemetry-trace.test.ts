import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { it } from 'node:test';
import { schema } from '../packages/server/src/testing/telemetry.js';
import { parseJson } from './support/cli.js';
import { enrolled, mqttArgs, show, startPlatform } from './support/devices.js';
import { runTool, within } from './support/tools.js';

/**
 * Message tracing end to end: a reading sent by the stock `mosquitto_pub` over MQTT 5 with a
 * `traceparent` user property is traced through every hop; `bulwark telemetry trace` prints
 * those hops, and an OTLP/HTTP receiver (a small server decoding OTLP/JSON, as a collector
 * would) gets the same spans under the same trace id.
 */

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
}
interface OtlpBody {
  resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

/** An OTLP/HTTP traces endpoint: keeps every span it is sent, and tells waiters. */
async function otlpReceiver(t: { after(fn: () => Promise<void> | void): void }) {
  const spans: OtlpSpan[] = [];
  const services = new Set<string>();
  let changed: () => void = () => undefined;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      assert.equal(req.url, '/v1/traces');
      assert.match(req.headers['content-type'] ?? '', /application\/json/);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpBody;
      for (const rs of body.resourceSpans) {
        for (const a of rs.resource.attributes) if (a.key === 'service.name' && a.value.stringValue) services.add(a.value.stringValue);
        for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      changed();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    services,
    /** Resolves with the spans of `traceId` once `count` of them arrived. */
    async spansOf(traceId: string, count: number): Promise<OtlpSpan[]> {
      for (;;) {
        const mine = spans.filter((s) => s.traceId === traceId);
        if (mine.length >= count) return mine;
        await new Promise<void>((resolve) => (changed = resolve));
      }
    },
  };
}

it('traces a reading from mosquitto_pub through every hop, in bulwark telemetry trace and over OTLP', { timeout: 120_000 }, async (t) => {
  const otlp = await otlpReceiver(t);
  // Only readings whose device asks are traced here (sampleEvery 0), so the untraced one below is certain.
  const p = await startPlatform(t, { BULWARK_TRACING_SAMPLE_EVERY: '0', BULWARK_TRACING_OTEL_ENDPOINT: otlp.url });
  const schemaFile = join(p.dir, 'env-sensor.json');
  writeFileSync(schemaFile, JSON.stringify(schema));
  await p.ok(['schemas', 'add', schemaFile]);
  const files = await enrolled(p, 'tracer-1');
  const traceId = randomBytes(16).toString('hex');
  const deviceSpan = randomBytes(8).toString('hex');
  const mqtt5 = mqttArgs(p, 'tracer-1', files).map((a) => (a === 'mqttv311' ? 'mqttv5' : a));
  const send = (msgId: string, extra: readonly string[]) =>
    runTool(t, 'mosquitto_pub', [...mqtt5, ...extra, '-q', '1', '-t', 'devices/tracer-1/telemetry', '-m', JSON.stringify({ id: msgId, seq: 1, ts: Date.now(), schema: 'env-sensor@1', data: { temp_c: 21.5 } })]);
  const traced = await send('traced-1', ['-D', 'publish', 'user-property', 'traceparent', `00-${traceId}-${deviceSpan}-01`]);
  assert.equal(traced.code, 0, `mosquitto_pub: ${traced.stderr}`);

  const r = await p.ok(['telemetry', 'trace', 'tracer-1', 'traced-1', '--json']);
  const [trace, ...others] = parseJson<{ traceId: string; msgId: string; spans: { name: string; spanId: string; parentSpanId: string | null; node: string; start: number; durationMs: number }[] }[]>(r);
  assert.equal(others.length, 0, 'one trace');
  assert.equal(trace?.traceId, traceId, 'the trace id the device sent');
  const names = trace.spans.map((s) => s.name);
  for (const hop of ['telemetry.message', 'gateway.receive', 'pipeline.decode', 'pipeline.envelope', 'pipeline.dedupe', 'pipeline.sequence', 'pipeline.normalizeTime', 'pipeline.validate', 'pipeline.mask', 'ingest.commit', 'live.fanout', 'gateway.ack']) {
    assert.ok(names.includes(hop), `hop ${hop} in ${names.join(', ')}`);
  }
  const root = trace.spans.find((s) => s.name === 'telemetry.message');
  assert.equal(root?.parentSpanId, deviceSpan, "the root span hangs under the device's span");
  for (const s of trace.spans.filter((x) => x !== root)) {
    assert.equal(s.parentSpanId, root?.spanId, `${s.name} is a child of the message's span`);
    assert.ok(s.durationMs >= 0 && s.start >= (root?.start ?? 0), `${s.name} lies within the message's time`);
  }
  // The hops tile the message's time on the node, in order: receipt, the steps, the commit, the acknowledgement.
  assert.deepEqual(
    names.slice(1).filter((n) => n === 'gateway.receive' || n === 'ingest.commit' || n === 'gateway.ack'),
    ['gateway.receive', 'ingest.commit', 'gateway.ack'],
  );

  const table = await p.ok(['telemetry', 'trace', 'tracer-1', 'traced-1']);
  assert.match(table.stdout, new RegExp(`trace ${traceId} +device tracer-1 +message traced-1`));
  assert.match(table.stdout, /gateway\.ack .* \+\d+\.\d{3} .* \d+\.\d{3}/);

  // The collector gets the same trace: every span, with the ids the store keeps.
  const exported = await within(otlp.spansOf(traceId, trace.spans.length), 30_000, 'the OTLP receiver');
  assert.deepEqual(exported.map((s) => s.spanId).sort(), trace.spans.map((s) => s.spanId).sort(), 'the same span ids');
  assert.equal(exported.find((s) => s.name === 'telemetry.message')?.parentSpanId, deviceSpan);
  assert.ok(otlp.services.has('bulwark'), 'service.name bulwark');

  // A reading without a traceparent is not traced here, and says so.
  const plain = await send('plain-1', []);
  assert.equal(plain.code, 0, plain.stderr);
  const none = await p.bulwark(['telemetry', 'trace', 'tracer-1', 'plain-1']);
  assert.equal(none.code, 1, show(none));
  assert.match(none.stderr, /BULWARK_ERR_NOT_FOUND.*not traced/);

  // Per-hop latency histograms.
  const metrics = await (await fetch(`${p.url}/metrics`)).text();
  for (const hop of ['gateway.receive', 'ingest.commit', 'gateway.ack', 'telemetry.message']) {
    assert.match(metrics, new RegExp(`bulwark_message_hop_seconds_count\\{hop="${hop.replace('.', '\\.')}"\\} 1\\b`), `one traced ${hop}`);
  }
  assert.match(metrics, /bulwark_traces_recorded_total 1\b/);
});
