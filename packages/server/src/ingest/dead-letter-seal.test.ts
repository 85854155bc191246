import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { TelemetryEnvelope } from '@bulwark/protocol';
import type { SchemaService } from '../schemas/index.js';
import { DeadLetterSeal } from './dead-letter-seal.js';
import type { DeadLetter, Sensitivity } from './ingest.js';
import type { FieldProtection } from './steps/mask.js';

/** AES-GCM bound to its context, like the vault's values: a value moved to another place does not open. */
function protection(): FieldProtection {
  const key = randomBytes(32);
  return {
    pseudonymKey: randomBytes(32),
    encrypt(plaintext, context) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(context));
      const body = Buffer.concat([c.update(plaintext), c.final()]);
      return `enc:k1:${Buffer.concat([iv, c.getAuthTag(), body]).toString('base64')}`;
    },
    async decrypt(text, context) {
      const raw = Buffer.from(text.slice('enc:k1:'.length), 'base64');
      const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12)).setAAD(Buffer.from(context)).setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([d.update(raw.subarray(28)), d.final()]);
    },
  };
}

const schemas = (fields: Record<string, Sensitivity>) => ({ sensitiveFields: () => new Map(Object.entries(fields)) }) as unknown as SchemaService;

function clear(id: string, reason: DeadLetter['reason'], payload: string, problems: DeadLetter['problems']): Omit<DeadLetter, 'protection'> {
  return { id, deviceId: 'd1', transport: 'mqtt', topic: null, receivedAt: 1, reason, problems, schemaId: 'kiosk@1', msgId: 'm1', payload, replayedAt: null, replayResult: null };
}

describe('DeadLetterSeal', () => {
  it('seals every sensitive field whatever its mode, and shows each in clear as a stored reading would', async () => {
    const seal = new DeadLetterSeal(schemas({ pin: 'mask', card: 'encrypt', name: 'hash' }), protection());
    const envelope = { id: 'm1', schema: 'kiosk@1', data: { pin: '9911', card: '4111-2222', name: 'Bo', door: 'x' }, stray: 'secret-stray' } as unknown as TelemetryEnvelope;
    // The text repeats `pin`: only the parsed value counts, and no copy of either is kept.
    const text = '{"id":"m1","schema":"kiosk@1","data":{"pin":"0000","pin":"9911","card":"4111-2222","name":"Bo","door":"x"},"stray":"secret-stray"}';
    const problems = [
      { path: '/pin', expected: 'pattern', got: '"9911"' },
      { path: '/', expected: 'minProperties', got: 'an object' },
      { path: '/door', expected: 'enum', got: '"x"' },
    ];
    const stored = await seal.seal(clear('dl_1', 'schema_violation', text, problems), envelope);
    for (const secret of ['9911', '0000', '4111-2222', '"Bo"', 'secret-stray']) assert.ok(!JSON.stringify(stored).includes(secret), `${secret} is stored in clear`);
    assert.deepEqual(stored.protection, { kind: 'fields', fields: { pin: 'mask', card: 'encrypt', name: 'hash' }, problems: ['mask', 'mask', null] });

    const masked = seal.mask(stored);
    assert.deepEqual(JSON.parse(masked.payload), { id: 'm1', schema: 'kiosk@1', data: { pin: '***', card: '***', name: '***', door: 'x' } });
    assert.deepEqual(
      masked.problems.map((p) => p.got),
      ['***', '***', '"x"'],
      'a problem about the whole data quotes the sensitive fields too',
    );

    const shown = await seal.reveal(stored);
    const data = JSON.parse(shown.payload).data;
    assert.deepEqual([data.pin, data.card, data.door], ['***', '4111-2222', 'x'], 'a masked field stays masked even in clear');
    assert.match(data.name, /^h:[0-9a-f]{32}$/);
    assert.deepEqual(
      shown.problems.map((p) => p.got),
      ['***', '***', '"x"'],
    );

    const replay = JSON.parse((await seal.open(stored)).toString('utf8'));
    assert.deepEqual(replay.data, { pin: '9911', card: '4111-2222', name: 'Bo', door: 'x' }, 'a replay gets every value back');
  });

  it('keeps a letter whose schema marks nothing as received, and binds a whole-sealed letter to its id', async () => {
    const p = protection();
    const none = await new DeadLetterSeal(schemas({}), p).seal(clear('dl_2', 'schema_violation', 'base64:oWI=', []), { id: 'm1', schema: 'kiosk@1', data: {} });
    assert.deepEqual([none.payload, none.protection.kind], ['base64:oWI=', 'fields']);
    const seal = new DeadLetterSeal(schemas({ pin: 'encrypt' }), p);
    const whole = await seal.seal(clear('dl_3', 'malformed_json', '{"pin":"77', [{ path: '/', expected: 'JSON', got: '"77' }]), undefined);
    assert.equal((await seal.open(whole)).toString(), '{"pin":"77');
    const moved = { ...whole, id: 'dl_4' };
    assert.match((await seal.reveal(moved)).decryptError ?? '', /damaged|CORRUPT/);
    await assert.rejects(seal.open(moved), /cannot be decrypted/);
  });
});
