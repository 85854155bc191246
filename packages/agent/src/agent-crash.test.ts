import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { it } from 'node:test';
import { agentConfig, startPlatform, until } from './testing/platform.js';

const DRIVER = new URL('./testing/send-driver.ts', import.meta.url).pathname;

function runDriver(configFile: string, count: number, onLine: (line: string) => void): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', DRIVER, configFile, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
  createInterface({ input: child.stdout }).on('line', onLine);
  return child;
}

it('kill -9 while sending 5,000 readings, then restart: every accepted reading is stored exactly once', async (t) => {
  const p = await startPlatform(t);
  const config = await agentConfig(t, p, 'crash-1', { logs: { level: 'error' } });
  const configFile = join(config.dataDir, 'agent.json');
  writeFileSync(configFile, JSON.stringify(config));
  const accepted = new Set<string>();
  const first = runDriver(configFile, 5000, (line) => {
    if (line.startsWith('ok ')) accepted.add(line.slice(3));
  });
  t.after(() => first.kill('SIGKILL'));
  // Kill in the middle of the stream, while readings are both queued and on the wire.
  await until('2,000 readings accepted', () => accepted.size >= 2000, 60_000);
  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));
  const storedBeforeRestart = (await p.readings('crash-1')).length;
  let drained = false;
  const second = runDriver(configFile, 0, (line) => {
    if (line === 'drained') drained = true;
  });
  t.after(() => second.kill('SIGKILL'));
  await until('the restarted agent drains its queue', () => drained, 60_000);
  const rows = await p.readings('crash-1');
  const ids = rows.map((r) => r.msgId);
  const missing = [...accepted].filter((id) => !ids.includes(id));
  console.log(
    `kill -9: ${accepted.size} accepted before the kill, ${storedBeforeRestart} stored before the restart, ${rows.length} stored after it, ${missing.length} missing, duplicates at the platform ${await p.metric(/bulwark_ingest_messages_total\{transport="mqtt",outcome="duplicate"\} (\d+)/)}`,
  );
  assert.deepEqual(missing, [], 'every accepted reading reached the platform');
  assert.equal(new Set(ids).size, ids.length, 'no reading stored twice');
  assert.ok(rows.length >= accepted.size);
  second.kill('SIGTERM');
  await new Promise((resolve) => second.once('exit', resolve));
});
