import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fuzzSettings } from '@bulwark/core/testing/fuzz';
import { isPlatformError } from '@bulwark/core';
import { loadConfig } from '../config/index.js';
import { publishDenial, subscribeDenial } from '../gateway/mqtt/acl.js';
import { publicKeyFromCsr } from '../identity/pki.js';
import { CborError, decodeCbor } from './cbor.js';
import type { MessageContext } from './ingest.js';
import { decode } from './steps/decode.js';
import { envelope } from './steps/envelope.js';

/**
 * Every decoder of what arrives from outside, fed what fast-check makes: nothing escapes but
 * the documented refusal, and what comes out is bounded by what went in (no length field in
 * the input makes a decoder allocate more). `npm run fuzz` runs these with a large budget.
 */

const settings = fuzzSettings();

/** A CBOR head (major type, argument) in its shortest form, for building inputs that are almost valid. */
function head(major: number, n: number): number[] {
  if (n < 24) return [(major << 5) | n];
  if (n < 256) return [(major << 5) | 24, n];
  if (n < 65536) return [(major << 5) | 25, n >> 8, n & 255];
  if (n < 2 ** 32) return [(major << 5) | 26, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  const b = Buffer.alloc(9);
  b[0] = (major << 5) | 27;
  b.writeBigUInt64BE(BigInt(n), 1);
  return [...b];
}

/** JSON values as CBOR (integers as integers, other numbers as doubles). */
function encode(v: unknown): number[] {
  if (v === null) return [0xf6];
  if (v === true) return [0xf5];
  if (v === false) return [0xf4];
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return v >= 0 ? head(0, v) : head(1, -1 - v);
    const b = Buffer.alloc(9);
    b[0] = 0xfb;
    b.writeDoubleBE(v, 1);
    return [...b];
  }
  if (typeof v === 'string') {
    const bytes = Buffer.from(v, 'utf8');
    return [...head(3, bytes.length), ...bytes];
  }
  if (Array.isArray(v)) return [...head(4, v.length), ...v.flatMap(encode)];
  const entries = Object.entries(v as Record<string, unknown>);
  return [...head(5, entries.length), ...entries.flatMap(([k, x]) => [...encode(k), ...encode(x)])];
}

const ctxOf = (payload: Uint8Array) => ({ request: { payload } }) as unknown as MessageContext;

describe('decoders under fuzzing', () => {
  it('CBOR: arbitrary bytes decode or are refused with CborError, and never grow past their input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        try {
          const value = decodeCbor(bytes, 32);
          assert.ok((JSON.stringify(value) ?? '').length <= 16 * bytes.length + 16);
        } catch (err) {
          if (!(err instanceof CborError)) throw err;
        }
      }),
      settings,
    );
  });

  it('CBOR: JSON values round-trip, and any one byte changed or cut off is decoded or refused, never thrown otherwise', () => {
    // __proto__ keys are refused by design (see the decoder); the round trip is for everything else.
    const json = fc.jsonValue({ maxDepth: 4 }).filter((v) => JSON.stringify(v) !== undefined && !JSON.stringify(v).includes('"__proto__"'));
    fc.assert(
      fc.property(json, fc.nat(), fc.integer({ min: 0, max: 255 }), (value, at, byte) => {
        const bytes = Uint8Array.from(encode(value));
        assert.deepEqual(decodeCbor(bytes, 32), JSON.parse(JSON.stringify(value)) as unknown);
        for (const changed of [bytes.slice(0, at % (bytes.length + 1)), Uint8Array.from(bytes, (b, i) => (i === at % bytes.length ? byte : b))]) {
          try {
            decodeCbor(changed, 32);
          } catch (err) {
            if (!(err instanceof CborError)) throw err;
          }
        }
      }),
      settings,
    );
  });

  it('JSON envelope: any payload is parsed or refused as a dead letter with a reason, never thrown', () => {
    const payloads = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      fc.string({ unit: 'binary', maxLength: 256 }).map((s) => Buffer.from(s, 'utf8')),
      fc.jsonValue({ maxDepth: 40 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null', 'utf8')),
      fc.record({ id: fc.anything(), schema: fc.anything(), data: fc.anything(), seq: fc.anything(), ts: fc.anything(), boot: fc.anything() }, { requiredKeys: [] }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null', 'utf8')),
    );
    fc.assert(
      fc.property(payloads, (payload) => {
        const ctx = ctxOf(payload);
        const decoded = decode.run(ctx);
        if (decoded !== undefined) {
          assert.ok('reject' in decoded, 'decode refuses or goes on');
          return;
        }
        const checked = envelope.run(ctx);
        assert.ok(checked === undefined || 'reject' in checked);
      }),
      settings,
    );
  });

  it('CSR entry: any text is a P-256 public key or BULWARK_ERR_CSR_INVALID', async () => {
    const pem = (body: string) => `-----BEGIN CERTIFICATE REQUEST-----\n${body}\n-----END CERTIFICATE REQUEST-----`;
    const texts = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 300 }).map((b) => pem(Buffer.from(b).toString('base64'))),
      fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/='), maxLength: 400 }).map(pem),
    );
    await fc.assert(
      fc.asyncProperty(texts, async (text) => {
        try {
          await publicKeyFromCsr(text);
        } catch (err) {
          assert.ok(isPlatformError(err) && err.code === 'BULWARK_ERR_CSR_INVALID', `unexpected ${String(err)}`);
        }
      }),
      { ...settings, numRuns: Math.max(1, Math.floor(settings.numRuns / 3)) },
    );
  });

  it('MQTT topics: a device may publish only to its own device-to-cloud topics and subscribe only within its tree, whatever the topic', () => {
    const level = fc.oneof(fc.constantFrom('devices', 'dev-1', 'dev-2', 'telemetry', 'commands', 'twin', 'reported', 'desired', '+', '#', '', '$SYS'), fc.string({ maxLength: 8 }));
    fc.assert(
      fc.property(fc.array(level, { minLength: 1, maxLength: 7 }), (parts) => {
        const topic = parts.join('/');
        const pub = publishDenial(topic, 'dev-1');
        if (pub === undefined) {
          assert.ok(topic.startsWith('devices/dev-1/') && !/[+#]/.test(topic), `published to ${topic}`);
        }
        if (subscribeDenial(topic, 'dev-1') === undefined) assert.ok(topic.startsWith('devices/dev-1/'), `subscribed to ${topic}`);
      }),
      settings,
    );
  });

  it('config file: any JSON object is a configuration or BULWARK_ERR_CONFIG_INVALID', () => {
    const keys = fc.constantFrom('http', 'mqtt', 'alerts', 'audit', 'log', 'store', 'bus', 'dataDir', 'ingest', 'colour', '__proto__', 'constructor');
    const files = fc.dictionary(keys, fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.dictionary(fc.constantFrom('port', 'host', 'level', 'tls', 'enabled', 'checkpointIntervalMs', 'x'), fc.jsonValue({ maxDepth: 1 }))), { maxKeys: 5 });
    fc.assert(
      fc.property(files, (file) => {
        try {
          loadConfig({ file, fileName: 'fuzzed.json', env: {} });
        } catch (err) {
          assert.ok(isPlatformError(err) && err.code === 'BULWARK_ERR_CONFIG_INVALID', `unexpected ${String(err)}`);
        }
      }),
      settings,
    );
  });
});
