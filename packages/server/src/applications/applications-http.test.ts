import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, credsAuthenticator } from '@nats-io/transport-node';
import { type TestServer, newAdminKey, startTestServer, tempDir } from '../testing/harness.js';
import { freshPgSchema, pgTestUrl } from '../testing/pg.js';
import { describeWith, engineFor, startNatsWithConfig } from '../testing/services.js';
import { writeOperatorSetup } from '../nats-auth/index.js';
import { TELEMETRY_STREAM, schemaSubjects, telemetrySubject } from '../stream/subjects.js';

const creds = (text: string) => credsAuthenticator(new TextEncoder().encode(text));

/** A token of a new service account holding only `scopes`. */
async function serviceToken(s: TestServer, admin: string, name: string, scopes: string[]): Promise<string> {
  const svc = await s.api('POST', '/api/v1/users', { token: admin, body: { name, kind: 'service', scopes } });
  assert.equal(svc.status, 201, svc.text);
  const key = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'k', principalId: svc.body.id } });
  return s.tokenFor(key.body.key);
}

it('applications over HTTP: scopes required, creation audited, no NATS credential without operator mode', async (t) => {
  const s = await startTestServer(t);
  const admin = await s.tokenFor(s.adminKey);
  const reader = await serviceToken(s, admin, 'reader', ['applications:read']);
  const body = { name: 'dashboard-feed', schemas: [{ name: 'env-sensor' }, { name: 'door', version: 1 }] };
  const refused = await s.api('POST', '/api/v1/applications', { token: reader, body });
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error.details.requiredScope, 'applications:write');

  const created = await s.api('POST', '/api/v1/applications', { token: admin, body });
  assert.equal(created.status, 201, created.text);
  assert.deepEqual(created.body.schemas, body.schemas);
  const principal = await s.api('GET', `/api/v1/users/${created.body.id}`, { token: admin });
  assert.deepEqual([principal.body.kind, principal.body.scopes], ['service', ['schemas:read']], 'an application is a service account that cannot read telemetry over HTTP');
  assert.equal((await s.api('GET', '/api/v1/applications', { token: reader })).body.length, 1);
  assert.equal((await s.api('POST', '/api/v1/applications', { token: admin, body: { name: 'x', schemas: [{ name: 'a' }, { name: 'a' }] } })).status, 400);

  const denied = await s.api('POST', `/api/v1/applications/${created.body.id}/nats-credentials`, { token: reader, body: {} });
  assert.equal(denied.status, 403);
  const embedded = await s.api('POST', `/api/v1/applications/${created.body.id}/nats-credentials`, { token: admin, body: {} });
  assert.equal(embedded.status, 409);
  assert.match(embedded.body.error.message, /operator mode/);
  const audit = await s.server.audit.list({ limit: 50 });
  assert.ok(audit.some((e) => e.action === 'application.create' && e.target === created.body.id && e.result === 'ok'));
  assert.ok(
    audit.some((e) => e.action === 'application.nats-credentials' && e.result === 'denied'),
    'a refused issuance is audited',
  );
});

describeWith('applications with NATS in operator mode (a cluster node on PostgreSQL)', ['nats-server'], () => {
  it('a credential minted through the API reads its schema only, is audited without its secret, and is revoked through the API', async (t) => {
    const url = pgTestUrl(t);
    if (url === undefined) return;
    const dir = tempDir(t, 'bulwark-operator-');
    const op = await writeOperatorSetup(join(dir, 'nats'));
    // Made before NATS starts, so that its clean-up (hooks run in the order they are added)
    // stops the node while NATS still runs: a node stopping after its bus waits minutes for it.
    const started: TestServer[] = [];
    const schema = await freshPgSchema(t, url, async () => {
      for (const n of started) await n.server.stop();
    });
    const nats = await engineFor(t, () => startNatsWithConfig('include nats-auth.conf', [op.files.serverConfig]));
    const adminKey = newAdminKey();
    const s = await startTestServer(t, {
      config: { store: url, bus: nats.url, nodeId: 'node-a', cluster: { natsCredsFile: op.files.nodeCreds, natsIssuerFile: op.files.issuer } },
      pgSchema: schema,
      adminKey,
      env: { BULWARK_MASTER_KEY: randomBytes(32).toString('hex') },
      keepRunning: true,
    });
    started.push(s);
    const admin = await s.tokenFor(adminKey);

    // The stream as Bulwark keeps it, written with the node's own credential.
    const own = await connect({ servers: nats.url, authenticator: creds(readFileSync(op.files.nodeCreds, 'utf8')) });
    t.after(() => own.close());
    const jsm = await jetstreamManager(own);
    await jsm.streams.info(TELEMETRY_STREAM).catch(() => jsm.streams.add({ name: TELEMETRY_STREAM, subjects: ['bulwark.telemetry.>'] }));
    await jetstream(own).publish(telemetrySubject('env-sensor@2', 'dev-1'), JSON.stringify({ deviceId: 'dev-1', msgId: 'a' }), { msgID: 'dev-1/a' });
    await jetstream(own).publish(telemetrySubject('door@1', 'dev-1'), JSON.stringify({ deviceId: 'dev-1', msgId: 'b' }), { msgID: 'dev-1/b' });

    const app = await s.api('POST', '/api/v1/applications', { token: admin, body: { name: 'feed', schemas: [{ name: 'env-sensor' }] } });
    const issued = await s.api('POST', `/api/v1/applications/${app.body.id}/nats-credentials`, { token: admin, body: { ttlHours: 1 } });
    assert.equal(issued.status, 201, issued.text);
    assert.match(issued.body.creds, /BEGIN NATS USER JWT/);
    assert.equal(issued.body.consumers[0].filter, schemaSubjects('env-sensor'));
    const entry = (await s.server.audit.list({ limit: 50, action: 'application.nats-credentials' }))[0];
    assert.equal(entry?.target, app.body.id);
    assert.equal(JSON.stringify(entry).includes(issued.body.creds.split('\n')[1]), false, 'the audit log never holds the credential');
    assert.equal(JSON.stringify(entry).includes(issued.body.credential.userKey), true);

    const nc = await connect({ servers: nats.url, authenticator: creds(issued.body.creds), inboxPrefix: issued.body.inboxPrefix, reconnect: false });
    const closed = nc.closed();
    const [mine] = issued.body.consumers as { name: string; filter: string }[];
    assert.ok(mine);
    const ajsm = await jetstreamManager(nc);
    await ajsm.consumers.add(TELEMETRY_STREAM, { name: mine.name, durable_name: mine.name, filter_subject: mine.filter, ack_policy: AckPolicy.Explicit });
    const m = await (await jetstream(nc).consumers.get(TELEMETRY_STREAM, mine.name)).next({ expires: 2_000 });
    assert.equal(m?.subject, telemetrySubject('env-sensor@2', 'dev-1'));
    await assert.rejects(ajsm.consumers.add(TELEMETRY_STREAM, { name: mine.name, durable_name: mine.name, filter_subject: schemaSubjects('door'), ack_policy: AckPolicy.Explicit }), /permission/i);

    const revoked = await s.api('POST', `/api/v1/applications/${app.body.id}/nats-credentials/revoke`, { token: admin });
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.body.revoked.length, 1);
    assert.match(String(await closed), /authorization|revoked/i, "NATS closed the revoked credential's connection");
    await assert.rejects(connect({ servers: nats.url, authenticator: creds(issued.body.creds), reconnect: false }), /Authorization Violation/i);
    assert.ok((await s.server.audit.list({ limit: 50, action: 'application.nats-credentials.revoke' })).length === 1);
  });
});
