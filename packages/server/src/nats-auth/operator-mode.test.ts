import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { AckPolicy, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, connect, credsAuthenticator, headers } from '@nats-io/transport-node';
import { describeWith, engineFor, startNatsWithConfig } from '../testing/services.js';
import { TELEMETRY_STREAM, schemaSubjects, streamMsgId, telemetrySubject } from '../stream/subjects.js';
import { pushAccountJwt } from './account-push.js';
import { NatsIssuer } from './issuer.js';
import { writeOperatorSetup } from './operator.js';
import { applicationNatsAccess } from './permissions.js';

const S = TELEMETRY_STREAM;
const enc = new TextEncoder();
const creds = (text: string) => credsAuthenticator(enc.encode(text));

/** Publishes a stored reading as the stream carries it. */
async function publishReading(nc: NatsConnection, schemaId: string, deviceId: string, msgId: string): Promise<void> {
  const h = headers();
  h.set('Nats-Msg-Id', streamMsgId(deviceId, msgId));
  const record = { deviceId, msgId, schemaId, seq: 1, boot: 'b1', deviceTs: 1, receivedAt: 2, ts: 2, skewMs: 1, data: { v: 1 } };
  await jetstream(nc).publish(telemetrySubject(schemaId, deviceId), JSON.stringify(record), { headers: h });
}

/** Runs `f` on a fresh connection with `text`, and returns what the server said: an error message or 'ok'. */
async function refusal(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
    return 'ok';
  } catch (err) {
    return (err as Error).message;
  }
}

describeWith('NATS operator mode with Bulwark-minted credentials (nats-server 2.9)', ['nats-server'], () => {
  it('an application credential reads the schemas it is granted, and NATS refuses everything else', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-operator-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const written = await writeOperatorSetup(join(dir, 'nats'));
    assert.equal(statSync(written.files.operatorSeed).mode & 0o777, 0o600);
    assert.equal(statSync(written.files.issuer).mode & 0o777, 0o600);
    assert.equal(statSync(written.files.nodeCreds).mode & 0o777, 0o600);
    await assert.rejects(writeOperatorSetup(join(dir, 'nats')), /already exist/);
    const nats = await engineFor(t, () => startNatsWithConfig('include nats-auth.conf', [written.files.serverConfig]));

    await assert.rejects(connect({ servers: nats.url, reconnect: false }), /Authorization Violation/i, 'operator mode: no anonymous clients');
    const node = await connect({ servers: nats.url, authenticator: creds(readFileSync(written.files.nodeCreds, 'utf8')) });
    t.after(() => node.close());
    const jsm = await jetstreamManager(node);
    await jsm.streams.add({ name: S, subjects: ['bulwark.telemetry.>'], duplicate_window: 60_000_000_000 });
    for (const d of ['dev-1', 'dev.2']) {
      await publishReading(node, 'env-sensor@2', d, 'm1');
      await publishReading(node, 'env-sensor@2', d, 'm1'); // a repeat: dropped by Nats-Msg-Id
      await publishReading(node, 'door@1', d, 'm2');
    }
    assert.equal((await jsm.streams.info(S)).state.messages, 4);
    // Bulwark's own consumer, which an application must not read from.
    await jsm.consumers.add(S, { durable_name: 'store-writer-0', ack_policy: AckPolicy.Explicit });

    const issuer = NatsIssuer.fromFile(written.files.issuer);
    const access = applicationNatsAccess('svc_app1', [{ name: 'env-sensor' }]);
    const issued = await issuer.user({ name: 'app1', permissions: access.permissions, expiresAtMs: Date.now() + 3_600_000 });
    const app = await connect({ servers: nats.url, authenticator: creds(issued.creds), inboxPrefix: access.inboxPrefix });
    t.after(() => app.close());
    const violations: string[] = [];
    void (async () => {
      for await (const s of app.status()) if (s.type === 'error') violations.push(String(s.error.message));
    })();
    const ajsm: JetStreamManager = await jetstreamManager(app);
    const mine = access.consumers[0];
    assert.ok(mine);
    assert.equal(mine.filter, schemaSubjects('env-sensor'));

    // Schema A: created, read, acknowledged.
    await ajsm.consumers.add(S, { name: mine.name, durable_name: mine.name, filter_subject: mine.filter, ack_policy: AckPolicy.Explicit });
    const consumer = await jetstream(app).consumers.get(S, mine.name);
    const got: string[] = [];
    for await (const m of await consumer.fetch({ max_messages: 10, expires: 1_000 })) {
      got.push(m.subject);
      m.ack();
    }
    assert.deepEqual(got.sort(), [telemetrySubject('env-sensor@2', 'dev-1'), telemetrySubject('env-sensor@2', 'dev.2')].sort());
    assert.equal((await consumer.info(true)).num_ack_pending, 0, 'acknowledgements reach the server');

    // Schema B, the whole stream, another consumer, reads by sequence or subject, stream changes, publishing.
    const refused = {
      schemaB: await refusal(() => ajsm.consumers.add(S, { name: mine.name, durable_name: mine.name, filter_subject: schemaSubjects('door'), ack_policy: AckPolicy.Explicit })),
      unfiltered: await refusal(() => ajsm.consumers.add(S, { name: mine.name, durable_name: mine.name, ack_policy: AckPolicy.Explicit })),
      otherName: await refusal(() => ajsm.consumers.add(S, { name: 'mine-too', durable_name: 'mine-too', filter_subject: mine.filter, ack_policy: AckPolicy.Explicit })),
      ordered: await refusal(async () => {
        const oc = await jetstream(app).consumers.get(S, { filter_subjects: [mine.filter] });
        return oc.next({ expires: 1_000 });
      }),
      bulwarkConsumer: await refusal(() => app.request(`$JS.API.CONSUMER.MSG.NEXT.${S}.store-writer-0`, JSON.stringify({ batch: 1 }), { timeout: 1_000 })),
      msgGet: await refusal(() => ajsm.streams.getMessage(S, { seq: 3 })),
      directGet: await refusal(() => app.request(`$JS.API.DIRECT.GET.${S}`, JSON.stringify({ seq: 3 }), { timeout: 1_000 })),
      lastBySubject: await refusal(() => ajsm.streams.getMessage(S, { last_by_subj: telemetrySubject('door@1', 'dev-1') })),
      streamInfo: await refusal(() => ajsm.streams.info(S)),
      purge: await refusal(() => ajsm.streams.purge(S)),
      deleteStream: await refusal(() => ajsm.streams.delete(S)),
      subscribeReadings: await refusal(async () => {
        const sub = app.subscribe('bulwark.telemetry.>');
        await app.flush();
        const err = await Promise.race([sub.closed, new Promise((r) => setTimeout(() => r(undefined), 1_000))]);
        if (err instanceof Error) throw err;
      }),
    };
    for (const [what, message] of Object.entries(refused)) assert.match(message, /permission|timeout|no responders/i, `${what}: ${message}`);
    // A filter whose body differs from the permitted subject: NATS compares the two.
    const mismatch = await app.request(`$JS.API.CONSUMER.CREATE.${S}.${mine.name}.${mine.filter}`, JSON.stringify({ stream_name: S, config: { name: mine.name, durable_name: mine.name, filter_subject: schemaSubjects('door'), ack_policy: 'explicit' } }), {
      timeout: 1_000,
    });
    assert.match(mismatch.string(), /did not match filtered subject/);

    // Publishing a reading is refused (a publish has no reply: the refusal comes as an asynchronous error).
    app.publish(telemetrySubject('env-sensor@2', 'dev-9'), '{}');
    await app.flush();
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(
      violations.some((v) => v.includes('Publish') && v.includes('bulwark.telemetry.env-sensor')),
      violations.join('\n'),
    );
    assert.equal((await jsm.streams.info(S)).state.messages, 4, 'nothing was published, purged or deleted');
    assert.equal((await jsm.consumers.info(S, 'store-writer-0')).num_pending, 4, "Bulwark's consumer lost nothing");
  });

  it('revocation reaches running servers, expiry is enforced, and a restarted server needs the push again', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-operator-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const written = await writeOperatorSetup(dir);
    const nats = await engineFor(t, () => startNatsWithConfig('include nats-auth.conf', [written.files.serverConfig]));
    const issuer = NatsIssuer.fromFile(written.files.issuer);
    const access = applicationNatsAccess('svc_app2', [{ name: 'env-sensor', version: 2 }]);
    const expiresAtMs = Date.now() + 3_600_000;
    const issued = await issuer.user({ name: 'app2', permissions: access.permissions, expiresAtMs });
    const app = await connect({ servers: nats.url, authenticator: creds(issued.creds), inboxPrefix: access.inboxPrefix, reconnect: false });
    const closed = app.closed();

    const answer = await pushAccountJwt(issuer, await issuer.accountJwt({ [issued.userKey]: Math.ceil(expiresAtMs / 1000) }), { servers: nats.url }, Date.now());
    assert.equal(answer, 'jwt updated');
    assert.match(String(await closed), /authorization|revoked/i, 'the live connection is closed');
    await assert.rejects(connect({ servers: nats.url, authenticator: creds(issued.creds), reconnect: false }), /Authorization Violation/i);
    const fresh = await issuer.user({ name: 'app2', permissions: access.permissions, expiresAtMs });
    const again = await connect({ servers: nats.url, authenticator: creds(fresh.creds), inboxPrefix: access.inboxPrefix, reconnect: false });
    await again.close();

    // A server (re)started from the config file knows only the preloaded JWT: until Bulwark
    // pushes the current one (on every reconnect), a revoked but unexpired credential gets in.
    const restarted = await engineFor(t, () => startNatsWithConfig('include nats-auth.conf', [written.files.serverConfig]));
    const early = await connect({ servers: restarted.url, authenticator: creds(issued.creds), reconnect: false });
    const earlyClosed = early.closed();
    await pushAccountJwt(issuer, await issuer.accountJwt({ [issued.userKey]: Math.ceil(expiresAtMs / 1000) }), { servers: restarted.url }, Date.now());
    assert.match(String(await earlyClosed), /authorization|revoked/i);
    // The snippet written with the revocations keeps them across restarts.
    assert.match(await issuer.serverConfig({ [issued.userKey]: 1 }), /resolver_preload/);

    const expired = await issuer.user({ name: 'app2', permissions: access.permissions, expiresAtMs: Date.now() - 10_000 });
    await assert.rejects(connect({ servers: nats.url, authenticator: creds(expired.creds), reconnect: false }), /Authorization Violation/i);

    // An issuer file others can read is refused.
    const { chmodSync } = await import('node:fs');
    chmodSync(written.files.issuer, 0o644);
    assert.throws(() => NatsIssuer.fromFile(written.files.issuer), /readable by its owner only/);
  });
});
