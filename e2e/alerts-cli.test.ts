import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { startReceiver } from '../packages/server/src/testing/webhook-receiver.js';
import { parseJson, runCli, tempDir } from './support/cli.js';
import { show } from './support/devices.js';

/** Alert rules, silences and channels through the real `bulwark` command, against a real server. */
it('creates, lists, updates, disables and deletes alert rules, silences and channels from the command line', { timeout: 240_000 }, async (t) => {
  const receiver = await startReceiver(t);
  const s = await startTestServer(t, { config: { webhooks: { allowHttp: true, allowPrivateTargets: true } } });
  const env = { BULWARK_URL: s.url, BULWARK_KEY: s.adminKey, BULWARK_CLI_CONFIG: join(tempDir(t), 'credentials.json') };
  const bulwark = (args: readonly string[]) => runCli(t, args, { env });

  const created = await bulwark(['alerts', 'rules', 'create', '--name', 'Too hot', '--severity', 'critical', '--kind', 'threshold', '--field', 'temp_c', '--op', '>', '--value', '80', '--for', '5m', '--tags', 'site-7', '--json']);
  assert.equal(created.code, 0, show(created));
  const rule = parseJson(created);
  assert.deepEqual(rule.condition, { kind: 'threshold', field: 'temp_c', op: '>', value: 80, for: '5m', hysteresis: 0 });
  assert.deepEqual(rule.scope.tags, ['site-7']);

  const cohort = await bulwark(['alerts', 'rules', 'create', '--name', 'Far from its peers', '--kind', 'cohort', '--field', 'temp_c', '--by', 'tag', '--window', '15m', '--sigma', '6', '--min-peers', '8', '--json']);
  assert.equal(cohort.code, 0, show(cohort));
  assert.deepEqual(parseJson(cohort).condition, { kind: 'cohort', field: 'temp_c', by: 'tag', window: '15m', sigma: 6, minPeers: 8 });
  const expiry = await bulwark(['alerts', 'rules', 'update', 'builtin-cert-expiry', '--kind', 'cert_expiry', '--within', '60d', '--json']);
  assert.deepEqual(parseJson(expiry).condition, { kind: 'cert_expiry', within: '60d' }, show(expiry));

  // Scoped to device groups: an unknown one is refused with its path; the list shows the scope.
  assert.equal((await s.api('POST', '/api/v1/groups', { token: await s.tokenFor(s.adminKey), body: { id: 'site-7', kind: 'dynamic', query: { tags: ['site-7'] } } })).status, 201);
  const noGroup = await bulwark(['alerts', 'rules', 'create', '--name', 'x', '--kind', 'offline', '--for', '10m', '--groups', 'site-7,site-9']);
  assert.equal(noGroup.code, 1, show(noGroup));
  assert.match(noGroup.stderr, /BULWARK_ERR_VALIDATION.*scope\.groups\[1\]: no group site-9/);
  const grouped = await bulwark(['alerts', 'rules', 'create', '--name', 'Site 7 offline', '--kind', 'offline', '--for', '10m', '--groups', 'site-7', '--json']);
  assert.deepEqual(parseJson(grouped).scope.groups, ['site-7'], show(grouped));

  const table = await bulwark(['alerts', 'rules', 'list']);
  assert.match(table.stdout, /Site 7 offline.*groups site-7/);
  assert.match(table.stdout, /builtin-offline.*Device offline.*offline for 5m/);
  assert.match(table.stdout, /builtin-twin-drift.*configuration out of sync for 5m/);
  assert.match(table.stdout, /builtin-cert-expiry.*certificate ends within 60d/);
  assert.match(table.stdout, new RegExp(`${rule.id}.*Too hot.*critical.*temp_c > 80 for 5m`));

  const refused = await bulwark(['alerts', 'rules', 'create', '--name', 'bad', '--kind', 'threshold', '--field', 'temp_c', '--op', '>', '--value', '1', '--for', 'soon']);
  assert.equal(refused.code, 1, show(refused));
  assert.match(refused.stderr, /BULWARK_ERR_VALIDATION.*condition\.for/);
  const usage = await bulwark(['alerts', 'rules', 'create', '--name', 'no condition']);
  assert.equal(usage.code, 2, show(usage));

  const updated = await bulwark(['alerts', 'rules', 'update', rule.id, '--kind', 'threshold', '--field', 'temp_c', '--op', '>=', '--value', '85', '--json']);
  assert.equal(parseJson(updated).condition.value, 85, show(updated));
  assert.equal(parseJson(updated).name, 'Too hot', 'what is not given stays');
  assert.match((await bulwark(['alerts', 'rules', 'disable', rule.id])).stdout, /disabled/);
  assert.equal(parseJson(await bulwark(['alerts', 'rules', 'show', rule.id, '--json'])).enabled, false);

  const silenced = await bulwark(['alerts', 'silence', '--rule', 'builtin-offline', '--reason', 'site visit', '--for', '2h', '--json']);
  assert.equal(silenced.code, 0, show(silenced));
  const silence = parseJson(silenced);
  assert.match((await bulwark(['alerts', 'silences'])).stdout, /builtin-offline.*site visit/);
  assert.equal((await bulwark(['alerts', 'unsilence', silence.id])).code, 0);
  assert.deepEqual(parseJson(await bulwark(['alerts', 'silences', '--json'])), []);

  const channel = await bulwark(['alerts', 'channels', 'add', '--name', 'on-call', '--url', receiver.url, '--min-severity', 'warning']);
  assert.equal(channel.code, 0, show(channel));
  assert.match(channel.stdout, /whsec_/);
  const channels = parseJson(await bulwark(['alerts', 'channels', 'list', '--json']));
  assert.equal(channels.length, 1);
  assert.equal(channels[0].secret, undefined, 'a list never shows the secret');

  assert.match((await bulwark(['alerts', 'list'])).stdout, /No alerts/);
  assert.equal((await bulwark(['alerts', 'rules', 'delete', 'builtin-offline'])).code, 1, 'built-in rules are disabled, not deleted');
  assert.equal((await bulwark(['alerts', 'rules', 'delete', rule.id])).code, 0);
  assert.equal((await bulwark(['alerts', 'channels', 'delete', channels[0].id])).code, 0);
});
