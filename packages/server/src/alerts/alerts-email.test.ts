import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { type TestContext, describe, it } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { tempDir } from '../testing/harness.js';
import { eventually } from '../testing/eventually.js';
import { env, setup } from '../testing/telemetry.js';
import { receiverCertificate } from '../testing/webhook-receiver.js';

interface Mail {
  from: string;
  to: string[];
  raw: string;
  secure: boolean;
}

/** A real SMTP server on 127.0.0.1:0 that offers STARTTLS with a certificate from a test CA, and keeps what it receives. */
async function startSmtp(t: TestContext, tls: { cert: string; key: string }, down = false) {
  const mails: Mail[] = [];
  let refusing = down;
  const server = new SMTPServer({
    secure: false,
    key: tls.key,
    cert: tls.cert,
    authOptional: true,
    logger: false,
    disabledCommands: ['AUTH'],
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (refusing) return callback(Object.assign(new Error('mailbox busy, try later'), { responseCode: 451 }));
        mails.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8'), secure: session.secure });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    port: (server.server.address() as AddressInfo).port,
    mails,
    accept: () => {
      refusing = false;
    },
  };
}

/** The decoded text of a quoted-printable or plain body. */
const decoded = (raw: string) =>
  raw
    .replace(/=\r?\n/g, '')
    .replace(/\r/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

describe('alert notifications by e-mail through a real SMTP server', () => {
  it('a firing alert is mailed over STARTTLS with the summary, next step and runbook; a server that refuses is retried until it takes the mail', { timeout: 60_000 }, async (t) => {
    const ca = receiverCertificate(tempDir(t));
    const smtp = await startSmtp(t, ca, true);
    const { s, admin, client } = await setup(t, {
      config: { alerts: { smtpUrl: `smtp://localhost:${smtp.port}`, smtpCaFile: ca.caFile, smtpFrom: 'Bulwark <alerts@bulwark.test>', retryBaseMs: 100, retryMaxMs: 300, notifyPollIntervalMs: 100, groupWaitMs: 0 } },
    });
    const channel = await s.api('POST', '/api/v1/alerts/channels', { token: admin, body: { name: 'ops mail', email: 'ops@example.com, oncall@example.com', minSeverity: 'warning' } });
    assert.equal(channel.status, 201, channel.text);
    assert.equal((channel.body as { kind: string; url: string }).url, 'mailto:ops@example.com,oncall@example.com');
    assert.equal((channel.body as { secret?: string }).secret, undefined, 'an e-mail channel has no signing secret');
    const rule = await s.api('POST', '/api/v1/alerts/rules', { token: admin, body: { name: 'Too hot', severity: 'critical', condition: { kind: 'threshold', field: 'temp_c', op: '>', value: 80 } } });
    assert.equal(rule.status, 201, rule.text);
    await client.publishAsync('devices/sensor-1/telemetry', env('hot-1', { temp_c: 90 }), { qos: 1 });

    // The server refuses for a while (451): the notifier retries.
    await eventually(
      async () => Number(/bulwark_alert_notifications_total\{outcome="failed"\} (\d+)/.exec((await s.api('GET', '/metrics')).text)?.[1] ?? 0),
      (n) => n >= 2,
    );
    smtp.accept();
    const [mail] = await eventually(
      async () => smtp.mails,
      (m) => m.length === 1,
    );
    assert.equal(mail?.secure, true, 'sent over STARTTLS');
    assert.equal(mail?.from, 'alerts@bulwark.test');
    assert.deepEqual(mail?.to, ['ops@example.com', 'oncall@example.com']);
    const text = decoded(mail?.raw ?? '');
    assert.match(text, /^Subject: \[Bulwark\] CRITICAL Too hot on sensor-1: temp_c 90 > 80$/m);
    assert.match(text, /Next step: Look at the device's recent readings/);
    assert.match(text, /Runbook: docs\/runbooks\/threshold\.md/);
    assert.match(text, /^X-Bulwark-Delivery-Id: ntf_/im);
  });

  it('refuses an e-mail channel without an SMTP server, bad addresses, and a channel with both a URL and addresses', async (t) => {
    const { s, admin } = await setup(t);
    const add = (body: unknown) => s.api('POST', '/api/v1/alerts/channels', { token: admin, body });
    const noSmtp = await add({ name: 'mail', email: 'ops@example.com' });
    assert.equal(noSmtp.status, 409, noSmtp.text);
    assert.match(noSmtp.text, /alerts\.smtpUrl/);
    assert.equal((await add({ name: 'both', email: 'ops@example.com', url: 'https://example.com/x' })).status, 400);
    assert.equal((await add({ name: 'none' })).status, 400);
  });

  it('refuses bad recipients when an SMTP server is set', async (t) => {
    const { s, admin } = await setup(t, { config: { alerts: { smtpUrl: 'smtp://localhost:2525' } } });
    const bad = await s.api('POST', '/api/v1/alerts/channels', { token: admin, body: { name: 'mail', email: 'ops@example.com, not-an-address' } });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.text, /not an address: not-an-address/);
  });
});
