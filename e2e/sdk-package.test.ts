import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { agentConfig, startPlatform, until } from '../packages/agent/src/testing/platform.js';
import { ROOT, tempDir } from './support/cli.js';

const run = promisify(execFile);

/** The parent's npm and Node settings stay out (under `npm test` they name the repository's workspaces; tsx must not be loaded). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('npm_') || key === 'NODE_OPTIONS' || key === 'INIT_CWD') delete env[key];
  return env;
}

interface PackResult {
  readonly name: string;
  readonly filename: string;
  readonly files: readonly { path: string }[];
}

/** `npm pack` of both SDK packages (their prepack builds dist/ and writes the published package.json). */
async function pack(dest: string): Promise<PackResult[]> {
  const { stdout } = await run('npm', ['pack', '-w', 'packages/protocol', '-w', 'packages/agent', '--pack-destination', dest, '--json'], { cwd: ROOT, env: cleanEnv(), maxBuffer: 16 << 20 });
  return JSON.parse(stdout) as PackResult[];
}

/**
 * An empty project that installs the tarballs from the registry's dependencies, without
 * install scripts: better-sqlite3's native module is copied from the repository's build
 * (the same pinned version and Node) instead of compiled again, which takes minutes.
 */
async function install(project: string, tarballs: string[]): Promise<void> {
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'sdk-consumer', private: true, type: 'module' }));
  await run('npm', ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs], { cwd: project, env: cleanEnv(), maxBuffer: 16 << 20 });
  const repoSqlite = dirname(createRequire(join(ROOT, 'packages/agent/package.json')).resolve('better-sqlite3/package.json'));
  const theirs = join(project, 'node_modules/better-sqlite3');
  const version = (dir: string) => (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  assert.equal(version(theirs), version(repoSqlite), 'the installed better-sqlite3 is the version the repository built');
  mkdirSync(join(theirs, 'build/Release'), { recursive: true });
  copyFileSync(join(repoSqlite, 'build/Release/better_sqlite3.node'), join(theirs, 'build/Release/better_sqlite3.node'));
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** What a device application written against the installed SDK does, run with plain `node`. */
const CONSUMER = `
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { TokenKey, createAgent } from '@bulwark/agent';
import { DEVICE_TOPICS } from '@bulwark/protocol';
import { isDeviceId } from '@bulwark/protocol/device-id';
import { verifyFirmware } from '@bulwark/protocol/firmware';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let pkcs11Error = '';
try {
  TokenKey.open({ library: '/nonexistent/libpkcs11.so', tokenLabel: 't', pin: '1', keyLabel: 'k' });
} catch (err) {
  pkcs11Error = err.message;
}
const agent = await createAgent(config, { posture: false, logSink: () => undefined });
const sent = await agent.send('env-sensor@2', { n: 1, temp_c: 21.5 });
// Acknowledged by the platform once it is stored: the queue is empty again.
while (agent.status().queue.depth > 0 || agent.status().queue.inflight > 0) await sleep(50);
await agent.close();
console.log(JSON.stringify({
  sent, pkcs11Error, deviceIdOk: isDeviceId(config.deviceId),
  subpaths: typeof verifyFirmware === 'function' && typeof DEVICE_TOPICS === 'object',
}));
`;

it('the SDK packs to tarballs that install into an empty project and run on plain node: an agent enrolls, connects and publishes a reading the server stores', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t, 'bulwark-sdk-');
  const packs = join(dir, 'packs');
  const project = join(dir, 'project');
  mkdirSync(packs);
  mkdirSync(project);

  // The server starts while npm packs and installs.
  const [platform, packed] = await Promise.all([startPlatform(t), pack(packs)]);
  const byName = new Map(packed.map((p) => [p.name, p]));
  for (const name of ['@bulwark/protocol', '@bulwark/agent']) {
    const p = byName.get(name);
    assert.ok(p, `${name} packed`);
    const paths = p.files.map((f) => f.path);
    assert.ok(paths.includes('dist/index.js') && paths.includes('dist/index.d.ts'), `${name}: ESM and declarations`);
    for (const path of paths) {
      assert.ok(path === 'package.json' || path.startsWith('dist/'), `${name}: ${path} is outside dist/`);
      assert.ok(!path.endsWith('.ts') || path.endsWith('.d.ts'), `${name}: ${path} is a TypeScript source`);
      assert.doesNotMatch(path, /\.test\.|(^|\/)testing|tsbuildinfo/, `${name}: ${path} is a test file or fixture`);
    }
  }

  const config = await agentConfig(t, platform, 'sdk-1');
  writeFileSync(join(project, 'agent.json'), JSON.stringify(config));
  writeFileSync(join(project, 'main.mjs'), CONSUMER);
  await install(
    project,
    packed.map((p) => join(packs, p.filename)),
  );

  // The installed packages: published manifests, no way into the server, no tsx.
  const installed = (name: string) => join(project, 'node_modules', name);
  const agentManifest = JSON.parse(readFileSync(join(installed('@bulwark/agent'), 'package.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  assert.deepEqual(agentManifest.exports, { '.': { types: './dist/index.d.ts', default: './dist/index.js' } });
  assert.equal(agentManifest.license, 'Apache-2.0');
  assert.equal(agentManifest.dependencies?.tsx, undefined, 'tsx is not a runtime dependency');
  assert.equal(agentManifest.dependencies?.['graphene-pk11'], undefined);
  assert.deepEqual(agentManifest.peerDependenciesMeta, { 'graphene-pk11': { optional: true } });
  const protocolManifest = JSON.parse(readFileSync(join(installed('@bulwark/protocol'), 'package.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(protocolManifest.exports ?? {}), ['.', './device-id', './firmware']);
  for (const name of ['@bulwark/protocol', '@bulwark/agent']) {
    for (const file of filesUnder(installed(name))) {
      assert.doesNotMatch(readFileSync(file, 'utf8'), /@bulwark\/server|server\/src|packages\/|from 'tsx'/, `${name}: ${relative(project, file)} points into the repository`);
    }
  }
  assert.deepEqual(
    readdirSync(join(project, 'node_modules')).filter((n) => ['tsx', 'graphene-pk11', '@bulwark'].includes(n)),
    ['@bulwark'],
    'neither tsx nor graphene-pk11 was installed',
  );

  const { stdout } = await run(process.execPath, ['main.mjs', 'agent.json'], { cwd: project, env: cleanEnv(), timeout: 60_000 });
  const out = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { sent: { id: string; seq: number }; pkcs11Error: string; deviceIdOk: boolean; subpaths: boolean };
  assert.equal(out.deviceIdOk, true);
  assert.equal(out.subpaths, true, 'the ./device-id and ./firmware subpaths load');
  assert.match(out.pkcs11Error, /optional peer dependency graphene-pk11.*npm install graphene-pk11/);

  let rows: Awaited<ReturnType<typeof platform.readings>> = [];
  await until('the reading is stored', async () => (rows = await platform.readings('sdk-1')).length === 1);
  assert.equal(rows[0]?.msgId, out.sent.id);
  assert.deepEqual(rows[0]?.data, { n: 1, temp_c: 21.5 });
});
