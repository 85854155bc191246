import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { WebhookDelivery } from './delivery.js';
import { signatureHeader, verifySignature } from './signing.js';
import { checkUrl, classifyAddress, resolveTarget } from './target-guard.js';

const strict = { allowHttp: false, allowPrivateTargets: false };

describe('webhook targets (SSRF guard)', () => {
  it('classifies the ranges a webhook may not reach, and passes public addresses', () => {
    const cases: [string, string | null][] = [
      ['127.0.0.1', 'loopback'],
      ['127.8.9.1', 'loopback'],
      ['::1', 'loopback'],
      ['10.1.2.3', 'private'],
      ['172.16.0.1', 'private'],
      ['172.31.255.255', 'private'],
      ['192.168.1.1', 'private'],
      ['fd12:3456::1', 'private'],
      ['fc00::1', 'private'],
      ['100.64.0.1', 'shared'],
      ['100.127.255.254', 'shared'],
      ['169.254.169.254', 'link_local'],
      ['fe80::1', 'link_local'],
      ['0.0.0.0', 'unspecified'],
      ['::', 'unspecified'],
      ['224.0.0.1', 'multicast'],
      ['ff02::1', 'multicast'],
      ['255.255.255.255', 'reserved'],
      ['::ffff:127.0.0.1', 'loopback'],
      ['::ffff:a9fe:a9fe', 'link_local'],
      ['64:ff9b::10.0.0.1', 'private'],
      ['8.8.8.8', null],
      ['172.32.0.1', null],
      ['100.128.0.1', null],
      ['2606:4700::1111', null],
      ['::ffff:8.8.8.8', null],
    ];
    for (const [address, kind] of cases) assert.equal(classifyAddress(address), kind, address);
  });

  it('refuses URLs that are not https, carry credentials or are not URLs, with stable codes', () => {
    assert.throws(() => checkUrl('http://example.com/hook', strict), { code: 'BULWARK_ERR_WEBHOOK_URL_REFUSED', details: { reason: 'not_https' } });
    assert.throws(() => checkUrl('https://u:p@example.com/hook', strict), { code: 'BULWARK_ERR_WEBHOOK_URL_REFUSED', details: { reason: 'credentials' } });
    assert.throws(() => checkUrl('ftp://example.com/', strict), { code: 'BULWARK_ERR_WEBHOOK_URL_REFUSED', details: { reason: 'malformed' } });
    assert.throws(() => checkUrl('not a url', strict), { code: 'BULWARK_ERR_WEBHOOK_URL_REFUSED' });
    assert.equal(checkUrl('http://example.com/hook', { ...strict, allowHttp: true }).hostname, 'example.com');
  });

  it('refuses a name when any address it resolves to is private, unless allowed', async () => {
    const dns = (answers: string[]) => async () => answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    assert.equal((await resolveTarget('hooks.example', strict, dns(['93.184.216.34']))).length, 1);
    await assert.rejects(resolveTarget('rebind.example', strict, dns(['93.184.216.34', '10.0.0.7'])), { code: 'BULWARK_ERR_WEBHOOK_TARGET_REFUSED', details: { reason: 'private' } });
    await assert.rejects(resolveTarget('[::1]', strict), { code: 'BULWARK_ERR_WEBHOOK_TARGET_REFUSED', details: { reason: 'loopback' } });
    await assert.rejects(resolveTarget('169.254.169.254', strict), { details: { reason: 'link_local' } });
    await assert.rejects(
      resolveTarget('gone.example', strict, async () => {
        throw new Error('ENOTFOUND');
      }),
      { details: { reason: 'unresolvable' } },
    );
    assert.equal((await resolveTarget('127.0.0.1', { ...strict, allowPrivateTargets: true })).length, 1);
  });

  it('a delivery whose name resolves to loopback at send time is refused before connecting', async () => {
    let answer = '93.184.216.34';
    const delivery = new WebhookDelivery({ ...strict, timeoutMs: 1000, userAgent: 'test' }, new ManualClock(), async () => [{ address: answer, family: 4 }]);
    answer = '127.0.0.1';
    const result = await delivery.deliver({ url: 'https://hooks.example/x', secret: 's', webhookId: 'w', deliveryId: 'd', attempt: 1, body: '{}' });
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.refused, 'loopback');
  });

  it('deliveries to one receiver reuse a kept-alive connection, and close() ends it', async (t) => {
    let connections = 0;
    const bodies: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        bodies.push(body);
        res.writeHead(204).end();
      });
    });
    server.on('connection', () => (connections += 1));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    const delivery = new WebhookDelivery({ allowHttp: true, allowPrivateTargets: true, timeoutMs: 5000, userAgent: 'test' }, new ManualClock());
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    for (let i = 0; i < 5; i += 1) {
      const result = await delivery.deliver({ url, secret: 's', webhookId: 'w', deliveryId: `d${i}`, attempt: 1, body: `{"n":${i}}` });
      assert.equal(result.ok, true, JSON.stringify(result));
    }
    assert.deepEqual(
      bodies,
      [0, 1, 2, 3, 4].map((i) => `{"n":${i}}`),
    );
    assert.equal(connections, 1);
    const closed = new Promise<void>((r) => server.once('close', () => r()));
    delivery.close();
    server.close();
    await closed;
  });
});

describe('webhook signatures', () => {
  const now = Date.UTC(2026, 0, 1);
  const body = '{"id":"whd_1","readings":[]}';

  it('verify with the secret, over the exact body, within the replay window', () => {
    const header = signatureHeader('whsec_a', body, now);
    assert.match(header, /^t=\d+,v1=[0-9a-f]{64}$/);
    assert.deepEqual(verifySignature('whsec_a', header, body, now + 60_000), { ok: true, t: now / 1000 });
    assert.deepEqual(verifySignature('whsec_b', header, body, now), { ok: false, reason: 'mismatch' });
    assert.deepEqual(verifySignature('whsec_a', header, `${body} `, now), { ok: false, reason: 'mismatch' });
    assert.deepEqual(verifySignature('whsec_a', header, body, now + 301_000), { ok: false, reason: 'too_old' });
    assert.deepEqual(verifySignature('whsec_a', header, body, now - 301_000), { ok: false, reason: 'in_future' });
    assert.deepEqual(verifySignature('whsec_a', 'v1=abc', body, now), { ok: false, reason: 'malformed' });
    // A timestamp changed by a replayer breaks the signature.
    assert.deepEqual(verifySignature('whsec_a', header.replace(/t=\d+/, `t=${now / 1000 + 200}`), body, now + 200_000), { ok: false, reason: 'mismatch' });
  });

  it('the example receiver (examples/webhook-receiver) accepts what the platform signs and refuses the rest', async () => {
    const example = new URL('../../../../examples/webhook-receiver/verify.mjs', import.meta.url).href;
    const { checkSignature } = (await import(example)) as { checkSignature: (secret: string, header: string, body: string | Buffer, nowMs?: number) => string | null };
    const header = signatureHeader('whsec_a', body, now);
    assert.equal(checkSignature('whsec_a', header, Buffer.from(body), now + 1000), null);
    assert.equal(checkSignature('whsec_b', header, body, now), 'signature does not match');
    assert.equal(checkSignature('whsec_a', header, body, now + 400_000), 'timestamp outside the replay window');
    assert.equal(checkSignature('whsec_a', 'nonsense', body, now), 'malformed signature header');
  });
});
