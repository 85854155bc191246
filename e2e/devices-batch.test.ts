import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { parseJson } from './support/cli.js';
import { filesIn, opensslCsr, publish, show, startPlatform } from './support/devices.js';
import { describe, runTool } from './support/tools.js';

/**
 * Factory onboarding through `bulwark devices batch`: a thousand devices from a CSV, their
 * one-time claim tokens, devices that bring their own CSR, a chunk the server refuses, and a
 * manifest refused before anything is sent.
 */

const N = 1000;
const SAMPLE = 20;
const rows = (text: string) => text.trim().split('\n');

// Twenty failed enrollments from one address (the second use of each sampled token) would
// lock the address at the default threshold of 10; the lock-out has its own tests.
it('onboards 1,000 devices from a CSV; every token is distinct and enrolls exactly once', { timeout: 300_000 }, async (t) => {
  const p = await startPlatform(t, { BULWARK_AUTH_LOCKOUT_THRESHOLD: '1000' });
  const csv = join(p.dir, 'line-7.csv');
  const out = join(p.dir, 'line-7');
  const ids = Array.from({ length: N }, (_, i) => `f7-${String(i).padStart(4, '0')}`);
  writeFileSync(csv, `id,serial,model,hw_rev\n${ids.map((id, i) => `${id},SN7-${String(i).padStart(6, '0')},env-v3,C`).join('\n')}\n`);

  const started = performance.now();
  const run = await p.bulwark(['devices', 'batch', csv, '--out', out, '--batch-id', 'line-7', '--json']);
  const seconds = (performance.now() - started) / 1000;
  assert.equal(run.code, 0, show(run));
  const summary = parseJson(run);
  t.diagnostic(`devices batch of ${N}: ${seconds.toFixed(2)} s for the whole CLI process, ${summary.seconds} s inside it, ${summary.requests} requests`);
  console.log(`# devices batch of ${N} devices took ${seconds.toFixed(2)} s (CLI process), ${summary.seconds} s of requests`);
  assert.equal(run.stderr, '', 'no progress bar when stderr is not a terminal');
  assert.deepEqual({ devices: summary.devices, tokens: summary.tokens, certificates: summary.certificates, requests: summary.requests }, { devices: N, tokens: N, certificates: 0, requests: 2 });

  const tokensFile = join(out, 'tokens.csv');
  assert.equal(statSync(tokensFile).mode & 0o777, 0o600);
  const [header, ...lines] = rows(readFileSync(tokensFile, 'utf8'));
  assert.equal(header, 'id,token,expires_at');
  assert.equal(lines.length, N);
  const tokens = new Map(
    lines.map((l) => {
      const [id, token, expires] = l.split(',') as [string, string, string];
      assert.ok(Date.parse(expires) > Date.now(), l);
      return [id, token];
    }),
  );
  assert.deepEqual([...tokens.keys()], ids);
  assert.equal(new Set(tokens.values()).size, N, 'every claim token is distinct');

  const listed = parseJson(await p.ok(['devices', 'list', '--model', 'env-v3', '--all', '--json']));
  assert.equal(listed.length, N);
  assert.ok(listed.every((d: { state: string; hardwareRevision: string }) => d.state === 'manufactured' && d.hardwareRevision === 'C'));

  await t.test(`a sample of ${SAMPLE} tokens: each enrolls once, the second use is refused`, async () => {
    const sample = ids.filter((_, i) => i % (N / SAMPLE) === 0);
    const [viaCli, viaHttp] = [sample.slice(0, 2), sample.slice(2)];
    const enroll = async (id: string, csr: string) => {
      const res = await fetch(`${p.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: tokens.get(id), csr }) });
      return { status: res.status, body: (await res.json()) as { deviceId?: string; certificate?: string; error?: { code: string } } };
    };
    await Promise.all(
      viaHttp.map(async (id) => {
        const { csr } = await opensslCsr(t, p.dir, id);
        const pem = readFileSync(csr, 'utf8');
        const first = await enroll(id, pem);
        assert.equal(first.status, 201, JSON.stringify(first.body));
        assert.equal(first.body.deviceId, id);
        const second = await enroll(id, pem);
        assert.equal(second.status >= 400 && second.status < 500, true, JSON.stringify(second));
        assert.equal(second.body.error?.code, 'BULWARK_ERR_CLAIM_TOKEN_INVALID');
      }),
    );
    const noLogin = { BULWARK_CLI_CONFIG: join(p.dir, 'no-login.json') };
    for (const id of viaCli) {
      const token = tokens.get(id) as string;
      const files = filesIn(join(p.dir, 'enrolled', id));
      const first = await p.bulwark(['devices', 'enroll', id, '--out', files.dir, '--url', p.url, '--token', token], noLogin);
      assert.equal(first.code, 0, show(first));
      const second = await p.bulwark(['devices', 'enroll', id, '--out', join(files.dir, 'again'), '--url', p.url, '--token', token], noLogin);
      assert.equal(second.code, 1, show(second));
      assert.match(second.stderr, /^error BULWARK_ERR_CLAIM_TOKEN_INVALID: /m);
      const connected = await publish(t, p, id, files);
      assert.equal(connected.code, 0, describe(connected));
    }
    const states = parseJson(await p.ok(['devices', 'list', '--model', 'env-v3', '--state', 'manufactured', '--all', '--json']));
    assert.equal(states.length, N - SAMPLE);
  });

  await t.test('devices that bring a CSR (a .csr path in CSV, PEM text in JSON) get <id>.crt that OpenSSL verifies', async () => {
    const a = await opensslCsr(t, p.dir, 'csr-a');
    const b = await opensslCsr(t, p.dir, 'csr-b');
    const csvFile = join(p.dir, 'with-csr.csv');
    writeFileSync(csvFile, 'id,serial,csr\ncsr-a,SN-A,csr-a.csr\ntok-a,SN-T,\n');
    const jsonFile = join(p.dir, 'with-csr.json');
    writeFileSync(jsonFile, JSON.stringify([{ id: 'csr-b', hardwareRevision: 'D', tags: ['line-8'], csr: readFileSync(b.csr, 'utf8') }]));
    for (const [file, dir] of [
      [csvFile, join(p.dir, 'out-csv')],
      [jsonFile, join(p.dir, 'out-json')],
    ] as const) {
      const r = await p.bulwark(['devices', 'batch', file, '--out', dir]);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /certificates for the CSRs/);
    }
    for (const [id, dir, key] of [
      ['csr-a', 'out-csv', a.key],
      ['csr-b', 'out-json', b.key],
    ] as const) {
      const cert = join(p.dir, dir, `${id}.crt`);
      const ca = join(p.dir, dir, 'ca.crt');
      const v = await runTool(t, 'openssl', ['verify', '-CAfile', ca, cert]);
      assert.equal(v.code, 0, describe(v));
      assert.equal((await publish(t, p, id, { ca, cert, key })).code, 0, `${id} connects with its own key`);
    }
    assert.deepEqual(
      rows(readFileSync(join(p.dir, 'out-csv', 'tokens.csv'), 'utf8'))
        .slice(1)
        .map((l) => l.split(',')[0]),
      ['tok-a'],
    );
  });

  await t.test('a chunk the server refuses stops the run and says how many were onboarded', async () => {
    const file = join(p.dir, 'clash.csv');
    writeFileSync(file, `id\n${['c-1', 'c-2', 'c-3', 'c-4', 'c-5', 'c-6', ids[3], 'c-8'].join('\n')}\n`);
    const dir = join(p.dir, 'out-clash');
    const r = await p.bulwark(['devices', 'batch', file, '--out', dir, '--chunk-size', '5']);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /Stopped: 5 of 8 devices were onboarded .*; nothing from line 7 on was/);
    assert.match(r.stderr, new RegExp(`^error BULWARK_ERR_CONFLICT: devices already exist: ${ids[3]}`, 'm'));
    assert.equal(rows(readFileSync(join(dir, 'tokens.csv'), 'utf8')).length, 1 + 5);
    assert.equal((await p.bulwark(['devices', 'show', 'c-6'])).code, 1);
  });

  await t.test('a bad manifest is refused whole, with every problem, before anything is sent', async () => {
    const file = join(p.dir, 'bad.csv');
    writeFileSync(file, 'id,serial,colour,csr\nok-1,1,red,\nbad/id,2,blue,\nok-1,3,green,\nok-2,4,grey,missing.csr\n');
    const dir = join(p.dir, 'out-bad');
    const r = await p.bulwark(['devices', 'batch', file, '--out', dir]);
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /BULWARK_CLI_MANIFEST: .*nothing was sent; 4 problems/);
    assert.match(r.stderr, /unknown column "colour"/);
    assert.match(r.stderr, /line 3: "bad\/id" cannot be a device id/);
    assert.match(r.stderr, /line 4: device ok-1 already appears at line 2/);
    assert.match(r.stderr, /line 5: cannot read the CSR file .*missing\.csr/);
    assert.equal(existsSync(join(dir, 'tokens.csv')), false);
    assert.equal((await p.bulwark(['devices', 'show', 'ok-1'])).code, 1);
  });
});
