import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEVICE_TOPICS, type DeviceTopic } from '@bulwark/protocol';
import { Ajv } from 'ajv';
import { startTestServer } from '../testing/harness.js';

const ROOT = new URL('../../../../', import.meta.url).pathname;

/**
 * The committed contract documents: docs/reference/openapi.json is what a running server
 * serves, and docs/reference/asyncapi.json describes every topic of the device contract with
 * references that resolve and payload schemas that accept their own examples.
 */

type Json = Record<string, unknown>;
const read = (file: string) => JSON.parse(readFileSync(join(ROOT, 'docs/reference', file), 'utf8')) as Json;

/** The value a local `#/a/b` reference points at, or undefined. */
function resolve(doc: Json, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  return ref
    .slice(2)
    .split('/')
    .reduce<unknown>((at, key) => (at && typeof at === 'object' ? (at as Json)[key.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), doc);
}

function refsIn(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refsIn(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refsIn(v, out);
    }
  }
  return out;
}

describe('contract documents', () => {
  it('openapi.json is the document a running server serves, with the error body defined once', async (t) => {
    const s = await startTestServer(t);
    const served = await s.api('GET', '/api/v1/openapi.json');
    assert.equal(served.status, 200);
    const committed = read('openapi.json');
    assert.deepEqual(served.body, committed, 'docs/reference/openapi.json is stale: run npm run docs:gen');
    assert.ok((committed.components as Json & { schemas: Json }).schemas.ErrorResponse);
    for (const ref of new Set(refsIn(committed))) assert.ok(resolve(committed, ref) !== undefined, `unresolved ${ref}`);
  });

  it('asyncapi.json has a channel and an operation for every device topic; references resolve; payloads accept their examples', () => {
    const doc = read('asyncapi.json');
    assert.equal(doc.asyncapi, '3.0.0');
    const channels = doc.channels as Record<string, { address: string; parameters: Json; messages: Json }>;
    const operations = Object.values(doc.operations as Record<string, { action: string; channel: { $ref: string }; bindings: { mqtt: { qos: number } } }>);
    for (const [key, topic] of Object.entries(DEVICE_TOPICS) as [string, DeviceTopic][]) {
      const channel = channels[key];
      assert.ok(channel, `no channel for ${key}`);
      assert.equal(channel.address, `devices/{deviceId}/${topic.pattern}`);
      for (const p of channel.address.matchAll(/\{(\w+)\}/g)) assert.ok(channel.parameters[p[1] as string], `${key}: parameter ${p[1]} undescribed`);
      const ops = operations.filter((o) => o.channel.$ref === `#/channels/${key}`);
      assert.equal(ops.length, 1, `${key}: one operation`);
      assert.equal(ops[0]?.action, topic.direction === 'device-to-cloud' ? 'receive' : 'send');
      assert.ok(topic.qos.includes(ops[0]?.bindings.mqtt.qos as 0 | 1));
    }
    assert.equal(Object.keys(channels).length, Object.keys(DEVICE_TOPICS).length);
    for (const ref of new Set(refsIn(doc))) assert.ok(resolve(doc, ref) !== undefined, `unresolved ${ref}`);
    const ajv = new Ajv({ strict: false, allErrors: true });
    const messages = (doc.components as { messages: Record<string, { payload: object; examples: { payload: unknown }[] }> }).messages;
    for (const [name, m] of Object.entries(messages)) {
      const validate = ajv.compile(m.payload);
      for (const example of m.examples) assert.ok(validate(example.payload), `${name}: its example fails its schema: ${ajv.errorsText(validate.errors)}`);
      assert.equal(validate({ definitely: 'not a message' }), false, `${name}: its schema accepts anything`);
    }
  });
});
