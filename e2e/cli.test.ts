import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import { BIN, type CliResult, parseJson, runCli, tempDir } from './support/cli.js';
import { KEY_PATTERN, startServer } from './support/server.js';

/**
 * The operator's first day, through the real `bulwark` command: start on an empty data
 * directory, log in with the key the first start wrote to <data>/admin.key, create a viewer and a key for it, see the
 * viewer refused, read and verify the audit log, rotate the master key, stop, start again
 * on the same data, and finally catch an edited audit entry.
 */

const mode = (path: string) => statSync(path).mode & 0o777;
const ok = (r: CliResult, what: string) => assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);

it('runs the platform and manages it from the command line, across a restart', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const dataDir = join(dir, 'data');
  const credentials = join(dir, 'cli', 'credentials.json');
  const admin = { BULWARK_CLI_CONFIG: credentials };
  const bulwark = (args: readonly string[], env: Record<string, string> = admin) => runCli(t, args, { env });

  // First start: the banner shows the real port, where the admin key file is (never the key), and the master key file.
  const first = await startServer(t, dataDir, { env: admin });
  const adminKey = first.adminKey;
  assert.equal(first.adminKeyFile, join(dataDir, 'admin.key'), first.banner);
  assert.ok(adminKey, `no admin key in ${first.adminKeyFile}`);
  assert.ok(!first.banner.includes(adminKey), first.banner);
  assert.ok(first.banner.includes(`npx bulwark login --url ${first.url} --key "$(cat ${join(dataDir, 'admin.key')})"`), first.banner);
  assert.ok(first.banner.includes(`Created the master key: ${join(dataDir, 'master.key')}`), first.banner);
  assert.ok(first.banner.includes(`data directory  ${dataDir}`), first.banner);
  assert.equal(mode(join(dataDir, 'master.key')), 0o600);

  await t.test('login checks the key and saves it readable by its owner only', async () => {
    const refused = await bulwark(['login', '--url', first.url, '--key', `${adminKey.slice(0, -4)}AAAA`]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error BULWARK_ERR_INVALID_CREDENTIALS: /m);

    const r = await bulwark(['login', '--url', first.url, '--key', adminKey]);
    ok(r, 'login');
    assert.match(r.stdout, /Logged in to .* as admin/);
    assert.equal(mode(credentials), 0o600);
    assert.equal(mode(dirname(credentials)), 0o700);
    const saved = JSON.parse(readFileSync(credentials, 'utf8'));
    assert.equal(saved.url, first.url);
    assert.equal(saved.key, adminKey);
  });

  await t.test('whoami --json names the admin', async () => {
    const me = parseJson(await bulwark(['whoami', '--json']));
    assert.equal(me.principal.name, 'admin');
    assert.deepEqual(me.scopes, ['*']);
    assert.equal(me.url, first.url);
  });

  let viewerId = '';
  let viewerKey = '';
  await t.test('creates a viewer and an API key for it', async () => {
    ok(await bulwark(['users', 'create', 'viewer1', '--role', 'viewer']), 'users create');
    const users = parseJson<{ id: string; name: string; role: string }[]>(await bulwark(['users', 'list', '--json']));
    const viewer = users.find((u) => u.name === 'viewer1');
    assert.ok(viewer, JSON.stringify(users));
    assert.equal(viewer.role, 'viewer');
    viewerId = viewer.id;

    const created = await bulwark(['keys', 'create', '--name', 'ci', '--for', viewerId]);
    ok(created, 'keys create');
    assert.match(created.stdout, /shown once/i);
    viewerKey = KEY_PATTERN.exec(created.stdout)?.[0] ?? '';
    assert.notEqual(viewerKey, '', created.stdout);

    const keys = parseJson<{ name: string; principalId: string }[]>(await bulwark(['keys', 'list', '--for', viewerId, '--json']));
    assert.deepEqual(
      keys.map((k) => [k.name, k.principalId]),
      [['ci', viewerId]],
    );
  });

  await t.test('the viewer key, through BULWARK_URL and BULWARK_KEY, may read but not create users', async () => {
    const viewerEnv = { BULWARK_URL: first.url, BULWARK_KEY: viewerKey, BULWARK_CLI_CONFIG: join(dir, 'viewer-none.json') };
    const me = parseJson(await bulwark(['whoami', '--json'], viewerEnv));
    assert.equal(me.principal.id, viewerId);
    const refused = await bulwark(['users', 'create', 'mallory', '--role', 'admin'], viewerEnv);
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /^error BULWARK_ERR_FORBIDDEN: .*users:write/m);
    assert.equal(refused.stdout, '');
  });

  await t.test('the audit log shows the creation and the refusal, and verifies', async () => {
    const entries = parseJson<{ actor: string; action: string; result: string; target: string | null; details: { code?: string } | null }[]>(await bulwark(['audit-log', 'list', '--json']));
    assert.ok(
      entries.some((e) => e.action === 'user.create' && e.result === 'ok' && e.target === viewerId),
      JSON.stringify(entries, null, 1),
    );
    assert.ok(
      entries.some((e) => e.action === 'user.create' && e.result === 'denied' && e.actor === viewerId && e.details?.code === 'BULWARK_ERR_FORBIDDEN'),
      JSON.stringify(entries, null, 1),
    );
    const denied = parseJson<{ result: string }[]>(await bulwark(['audit-log', 'list', '--result', 'denied', '--json']));
    assert.ok(denied.length >= 1 && denied.every((e) => e.result === 'denied'), JSON.stringify(denied));

    const table = await bulwark(['audit-log', 'list', '--action', 'user.create', '--limit', '5']);
    ok(table, 'audit-log list');
    assert.match(table.stdout, /user\.create.*denied.*BULWARK_ERR_FORBIDDEN/);

    const verified = await bulwark(['audit-log', 'verify']);
    ok(verified, 'audit-log verify');
    assert.match(verified.stdout, /Audit log verified/);
  });

  await t.test('rotates the master key; the key file stays 0600', async () => {
    const before = readFileSync(join(dataDir, 'master.key'), 'utf8');
    const r = await bulwark(['keys', 'rotate-master']);
    ok(r, 'keys rotate-master');
    const m = /Master key rotated: (\w+) → (\w+); (\d+) data keys? re-wrapped/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.notEqual(m[1], m[2]);
    assert.ok(Number(m[3]) >= 1);
    assert.notEqual(readFileSync(join(dataDir, 'master.key'), 'utf8'), before);
    assert.equal(mode(join(dataDir, 'master.key')), 0o600);
  });

  await t.test('SIGTERM stops the server with exit code 0', async () => {
    const end = await first.process.stop('SIGTERM');
    assert.equal(end.code, 0, end.stderr);
    assert.match(end.stdout, /Bulwark stopped\./);
  });

  // Second start on the same data, through the installed entry point this time.
  const second = await startServer(t, dataDir, { env: admin, bin: BIN });
  await t.test('a second start prints no key and keeps every user, key and audit entry', async () => {
    assert.equal(second.adminKeyFile, undefined, second.banner);
    assert.doesNotMatch(second.banner, /admin\.key|ADMIN API KEY|Created the master key/i);
    ok(await bulwark(['login', '--url', second.url, '--key', adminKey]), 'login after restart');
    const users = parseJson<{ name: string }[]>(await bulwark(['users', 'list', '--json']));
    assert.ok(
      users.some((u) => u.name === 'viewer1'),
      JSON.stringify(users),
    );
    ok(await bulwark(['audit-log', 'verify']), 'audit-log verify after restart');
    const end = await second.process.stop('SIGINT');
    assert.equal(end.code, 0, end.stderr);
  });

  await t.test('an edited audit entry fails verify with exit code 3, naming the entry', async () => {
    const db = new Database(join(dataDir, 'bulwark.db'));
    try {
      const changed = db.prepare("UPDATE audit_log SET actor = 'mallory' WHERE action = 'user.create' AND result = 'ok'").run();
      assert.equal(changed.changes, 1);
    } finally {
      db.close();
    }
    const third = await startServer(t, dataDir, { env: admin });
    ok(await bulwark(['login', '--url', third.url, '--key', adminKey]), 'login');
    const broken = await bulwark(['audit-log', 'verify']);
    assert.equal(broken.code, 3, broken.stdout + broken.stderr);
    assert.match(broken.stdout, /AUDIT LOG BROKEN at entry \d+/);
    assert.match(broken.stdout, /actor\s+mallory/);
    const report = parseJson(await bulwark(['audit-log', 'verify', '--json']));
    assert.equal(report.ok, false);
    assert.equal(report.firstBadEntry.actor, 'mallory');
    assert.equal(report.firstBadSeq, report.firstBadEntry.seq);
  });
});
