import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { it } from 'node:test';
import { pgTestUrl } from '../packages/server/src/testing/pg.js';
import { BIN, ROOT, runCli, tempDir } from './support/cli.js';

/** What the CLI says when it cannot do its job: exit codes and messages people act on. */

const noStackTrace = (text: string) => assert.doesNotMatch(text, /^\s+at /m, `stack trace printed:\n${text}`);

/** A port that nothing listens on: taken from the kernel, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

it('refuses a bad flag with exit code 2, naming the setting, before touching the disk', async (t) => {
  const dataDir = join(tempDir(t), 'data');
  const r = await runCli(t, ['start', '--data', dataDir, '--http-port', '99999']);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /BULWARK_ERR_CONFIG_INVALID/);
  assert.match(r.stderr, /--http-port: "http\.port" must be between 0 and 65535 \(got 99999\)/);
  assert.equal(existsSync(dataDir), false);
  noStackTrace(r.stderr);
});

it('refuses malformed cluster URLs with exit code 2, naming each engine, before touching the disk', async (t) => {
  const dataDir = join(tempDir(t), 'data');
  const r = await runCli(t, ['start', '--data', dataDir, '--store', 'postgres://root@127.0.0.1:5432/test', '--bus', 'nats:/broken', '--counters', 'http://cache:6379', '--node-id', 'a b']);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /bus: "nats:\/broken" is not memory or a comma-separated list of nats:\/\/host:port \(or tls:\/\/host:port\) URLs/);
  assert.match(r.stderr, /counters: "http:\/\/cache:6379" is not memory or a redis:\/\/host:port\[\/db\] URL/);
  assert.match(r.stderr, /nodeId: "a b" must be/);
  const sqlite = await runCli(t, ['start', '--data', dataDir, '--bus', 'nats://127.0.0.1:4222']);
  assert.equal(sqlite.code, 2);
  assert.match(sqlite.stderr, /a NATS bus \(cluster mode\) needs a postgres:\/\/ store/);
  assert.equal(existsSync(dataDir), false);
  noStackTrace(r.stderr);
});

it('exits 1 naming the engine when NATS or Redis does not answer at start', async (t) => {
  const store = pgTestUrl(t);
  if (store === undefined) return;
  const port = await closedPort();
  const nats = await runCli(t, ['start', '--data', join(tempDir(t), 'n'), '--store', store, '--bus', `nats://127.0.0.1:${port}`, '--http-port', '0', '--mqtt-port', '0', '--device-http-port', '0']);
  assert.equal(nats.code, 1, nats.stdout + nats.stderr);
  assert.match(nats.stderr, new RegExp(`BULWARK_ERR_BUS_UNAVAILABLE: NATS at nats://127\\.0\\.0\\.1:${port} is unreachable`));
  const redis = await runCli(t, ['start', '--data', join(tempDir(t), 'r'), '--store', store, '--counters', `redis://127.0.0.1:${port}`, '--http-port', '0', '--mqtt-port', '0', '--device-http-port', '0']);
  assert.equal(redis.code, 1, redis.stdout + redis.stderr);
  assert.match(redis.stderr, new RegExp(`BULWARK_ERR_COUNTERS_UNAVAILABLE: Redis at redis://127\\.0\\.0\\.1:${port} is unreachable`));
  noStackTrace(nats.stderr + redis.stderr);
});

it('lists every bad environment variable at once', async (t) => {
  const dataDir = join(tempDir(t), 'data');
  const r = await runCli(t, ['start', '--data', dataDir], { env: { BULWARK_HTTP_PORT: 'abc', BULWARK_NOPE: '1' } });
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /BULWARK_HTTP_PORT: "http\.port" must be a whole number \(got "abc"\)/);
  assert.match(r.stderr, /BULWARK_NOPE: unknown environment variable/);
  noStackTrace(r.stderr);
});

it('reports a config file it cannot parse together with the other problems', async (t) => {
  const dir = tempDir(t);
  const r = await runCli(t, ['start', '--data', join(dir, 'data'), '--config', join(dir, 'missing.json'), '--log-level', 'loud']);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /missing\.json: cannot be read/);
  assert.match(r.stderr, /--log-level: "log\.level" must be one of/);
});

it('exits 1 with the error code, not a stack trace, when the port is taken', async (t) => {
  const blocker = createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  t.after(() => blocker.close());
  const { port } = blocker.address() as AddressInfo;
  const r = await runCli(t, ['start', '--data', join(tempDir(t), 'data'), '--http-port', String(port), '--log-level', 'warn']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`^error EADDRINUSE: 127\\.0\\.0\\.1:${port} is already in use`, 'm'));
  noStackTrace(r.stderr);
});

it('names the URL of a server it cannot reach', async (t) => {
  const url = `http://127.0.0.1:${await closedPort()}`;
  const key = `bwk.key_nothing.${'A'.repeat(43)}`;
  const r = await runCli(t, ['whoami'], { env: { BULWARK_URL: url, BULWARK_KEY: key, BULWARK_CLI_CONFIG: join(tempDir(t), 'none.json') } });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^error BULWARK_CLI_UNREACHABLE: cannot reach the Bulwark server at /m);
  assert.ok(r.stderr.includes(url), r.stderr);
  noStackTrace(r.stderr);
});

it('says how to log in when there are no credentials', async (t) => {
  const r = await runCli(t, ['users', 'list'], { env: { BULWARK_CLI_CONFIG: join(tempDir(t), 'none.json') } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error BULWARK_CLI_NOT_LOGGED_IN: not logged in: run "bulwark login/m);
});

it('rejects contradictory user options with exit code 2 before calling the server', async (t) => {
  const env = { BULWARK_CLI_CONFIG: join(tempDir(t), 'none.json') };
  const r = await runCli(t, ['users', 'create', 'robot', '--service'], { env });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /needs --scopes/);
  const bad = await runCli(t, ['audit-log', 'list', '--result', 'maybe'], { env });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--result/);
});

it('runs from a node_modules/.bin-style symlink to bin/bulwark.mjs', async (t) => {
  // Run from a project of the user's whose tsconfig.json remaps "commander": tsx must not apply it to Bulwark's sources.
  const project = tempDir(t);
  writeFileSync(join(project, 'tsconfig.json'), '{"compilerOptions": {"baseUrl": ".", "paths": {"commander": ["./hijack.js"]}}}');
  writeFileSync(join(project, 'hijack.js'), 'throw new Error("the user project tsconfig was applied");\n');
  const binDir = join(project, 'node_modules', '.bin');
  const link = join(binDir, 'bulwark');
  mkdirSync(binDir, { recursive: true });
  symlinkSync(BIN, link);
  const { version } = JSON.parse(readFileSync(join(ROOT, 'apps/bulwark/package.json'), 'utf8')) as { version: string };
  // The shebang finds node on PATH, as npm's .bin links do.
  const env = { PATH: [dirname(process.execPath), process.env.PATH ?? ''].join(delimiter) };
  const r = await runCli(t, ['--version'], { bin: link, env, cwd: project });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), version);
  const help = await runCli(t, ['start', '--help'], { bin: link, env, cwd: project });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /--http-port <n>/);
});
