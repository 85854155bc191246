import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { startReceiver } from '../packages/server/src/testing/webhook-receiver.js';
import { verifySignature } from '../packages/server/src/webhooks/index.js';
import { parseJson, runCli, tempDir } from './support/cli.js';
import { show } from './support/devices.js';

/** Webhook subscriptions through the real `bulwark` command, against a real server and receiver. */
it('creates, lists, tests, pauses, resumes, rotates and deletes a webhook from the command line', { timeout: 120_000 }, async (t) => {
  const receiver = await startReceiver(t);
  const s = await startTestServer(t, { config: { webhooks: { allowHttp: true, allowPrivateTargets: true } } });
  const env = { BULWARK_URL: s.url, BULWARK_KEY: s.adminKey, BULWARK_CLI_CONFIG: join(tempDir(t), 'credentials.json') };
  const bulwark = (args: readonly string[]) => runCli(t, args, { env });

  const created = await bulwark(['webhooks', 'create', '--name', 'crm', '--url', receiver.url, '--schemas', 'env@1,env@2', '--tags', 'north', '--json']);
  assert.equal(created.code, 0, show(created));
  const w = parseJson(created);
  assert.match(w.secret, /^whsec_/);
  assert.deepEqual(w.filter, { schemaIds: ['env@1', 'env@2'], deviceIds: [], tags: ['north'] });

  const listed = await bulwark(['webhooks', 'list', '--json']);
  assert.deepEqual(
    parseJson(listed).map((x: { id: string }) => x.id),
    [w.id],
  );
  assert.ok(!listed.stdout.includes(w.secret), 'list never shows the secret');
  const table = await bulwark(['webhooks', 'list']);
  assert.match(table.stdout, new RegExp(`${w.id}.*crm.*active`));

  const arrived = receiver.next();
  const test = await bulwark(['webhooks', 'test', w.id]);
  assert.equal(test.code, 0, show(test));
  assert.match(test.stdout, /Delivered \(HTTP 200\)/);
  const d = await arrived;
  assert.ok(verifySignature(w.secret, String(d.headers['bulwark-signature']), d.raw, Date.now()).ok);

  const paused = await bulwark(['webhooks', 'pause', w.id, '--reason', 'receiver maintenance', '--json']);
  assert.equal(parseJson(paused).state, 'paused');
  const shown = await bulwark(['webhooks', 'show', w.id]);
  assert.match(shown.stdout, /state\s+paused: receiver maintenance/, show(shown));
  assert.equal(parseJson(await bulwark(['webhooks', 'resume', w.id, '--json'])).state, 'active');

  const rotated = await bulwark(['webhooks', 'rotate-secret', w.id]);
  assert.match(rotated.stdout, /whsec_/);
  assert.ok(!rotated.stdout.includes(w.secret));
  assert.deepEqual(parseJson(await bulwark(['webhooks', 'dead-letters', 'list', w.id, '--json'])), []);

  const refused = await bulwark(['webhooks', 'create', '--name', 'bad', '--url', 'ftp://example.com/x']);
  assert.equal(refused.code, 1, show(refused));
  assert.match(refused.stderr, /BULWARK_ERR_WEBHOOK_URL_REFUSED/);

  assert.equal((await bulwark(['webhooks', 'delete', w.id])).code, 0);
  const gone = await bulwark(['webhooks', 'show', w.id]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /BULWARK_ERR_NOT_FOUND/);
});
