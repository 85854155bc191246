import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { type TestServer, startTestServer, tempDir } from '../packages/server/src/testing/harness.js';
import { closed, connectDevice, enrollDevice } from '../packages/server/src/testing/devices.js';
import { schema } from '../packages/server/src/testing/telemetry.js';
import { firmwareKit, uploadFirmware } from '../packages/server/src/testing/firmware.js';
import { SCREENSHOTS, openBrowser, shot, signIn, watchedPage } from './support/browser.js';

/**
 * The operator dashboard in Debian's Chromium against the real server on port 0, with real
 * devices publishing over mutual TLS.
 */

const RATE = 50;
const BURST_S = 4;
const LIMITS = { rateLimit: { perPrincipalPerMinute: 100_000, perAddressPerMinute: 100_000 }, mqtt: { publishRatePerSecond: 500, publishBurst: 1000 } };

async function viewerKey(s: TestServer, admin: string): Promise<string> {
  const user = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'vera', role: 'viewer' } });
  const key = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'browser', principalId: user.body.id } });
  assert.equal(key.status, 201, key.text);
  return key.body.key as string;
}

const text = (page: Page, testId: string) => page.locator(`[data-testid="${testId}"]`).first().innerText();

describe('dashboard in a browser', () => {
  it('signs in, watches the fleet and a device live, measures publish→screen latency, replays a dead letter, revokes the device', { timeout: 90_000 }, async (t) => {
    const context = await openBrowser(t);
    if (!context) return;
    const s = await startTestServer(t, { config: { ...LIMITS, twin: { driftThresholdMs: 1000 } } });
    const admin = await s.tokenFor(s.adminKey);
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    const device = await enrollDevice(s, admin, 'sensor-1', { model: 'env-sensor', firmwareVersion: '1.4.2', tags: ['roof'] });

    // A device with problems, connected before anyone looks: in a restart loop, and drifting.
    const troubled = await enrollDevice(s, admin, 'sensor-0', { model: 'env-sensor', firmwareVersion: '1.3.9' });
    const troubledClient = await connectDevice(s, troubled);
    t.after(() => troubledClient.end(true));
    const send = (topic: string, body: unknown) => new Promise<void>((resolve, reject) => troubledClient.publish(topic, JSON.stringify(body), { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    await send('devices/sensor-0/events', { id: 'ev-1', type: 'crash', ts: Date.now(), data: { reason: 'watchdog' } });
    await send('devices/sensor-0/health', { ts: Date.now(), boot: 'b9', uptimeS: 4, restartReason: 'watchdog', recentRestarts: 7, restartLoop: true });
    assert.equal((await s.api('PUT', '/api/v1/devices/sensor-0/twin/desired', { token: admin, body: { config: { rateS: 5, mode: 'eco' } } })).status, 200);
    await send('devices/sensor-0/twin/reported', { version: 1, status: 'applied', config: { rateS: 60, mode: 'eco' }, ts: Date.now() });
    await waitFor(async () => (await s.api('GET', '/api/v1/devices/sensor-0/health', { token: admin })).body.restartLoop === true);

    const page = await context.newPage();
    const problems = watchedPage(page);
    await page.goto(s.url);
    const headers = (await page.request.get(s.url)).headers();
    assert.match(headers['content-security-policy'] ?? '', /script-src 'self'/);
    await page.waitForSelector('#api-key');
    await shot(page, '01-sign-in');
    await page.fill('#api-key', 'bwk.key_nope.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    await page.click('button[type=submit]');
    await page.waitForSelector('[role=alert]');
    assert.match(await page.locator('[role=alert]').innerText(), /BULWARK_ERR_INVALID_CREDENTIALS/);
    await signIn(page, s.url, s.adminKey);
    assert.match(await text(page, 'who'), /admin/);

    // Fleet counts change when the device connects.
    await page.waitForSelector('[data-testid=count-online]');
    assert.equal(await text(page, 'count-online'), '1');
    assert.equal(await text(page, 'count-provisioned'), '1');
    const client = await connectDevice(s, device);
    t.after(() => client.end(true));
    await page.waitForFunction(() => document.querySelector('[data-testid=count-online]')?.textContent === '2', null, { timeout: 15_000 });
    assert.equal(await text(page, 'count-active'), '2');
    // The drift threshold (1 s) has passed by now: both problems are listed, with links.
    await page.waitForFunction(() => /restart loop/.test(document.querySelector('[data-testid=problems]')?.textContent ?? '') && /configuration drift/.test(document.querySelector('[data-testid=problems]')?.textContent ?? ''), null, { timeout: 15_000 });
    await shot(page, '02-fleet');
    await page.click('[data-testid=problems] a:has-text("sensor-0")');
    await page.waitForSelector('[data-testid=drifted]');
    await page.waitForSelector('[data-testid=restart-loop]');
    assert.match(await text(page, 'device-events'), /crash/);
    assert.deepEqual(await page.locator('table.twin tr.differs td:first-child').allInnerTexts(), ['rateS'], 'only the key that differs is highlighted');
    await shot(page, '03-device-problems');

    await page.click('header a:has-text("Devices")');
    await page.waitForSelector('[data-testid=devices-table]');
    await shot(page, '03-devices-list');
    await page.click('[data-testid=devices-table] a:has-text("sensor-1")');
    await page.waitForFunction(() => document.querySelector('[data-testid=live-status]')?.textContent === 'live', null, { timeout: 10_000 });

    // 50 messages a second for a few seconds; the page measures each point's latency.
    let seq = 0;
    const publishOne = () =>
      new Promise<void>((resolve, reject) => {
        seq++;
        const payload = JSON.stringify({ id: `m-${seq}`, seq, ts: Date.now(), schema: 'env-sensor@1', data: { temp_c: 20 + Math.sin(seq / 8) * 3 } });
        client.publish('devices/sensor-1/telemetry', payload, { qos: 1 }, (err) => (err ? reject(err) : resolve()));
      });
    await publishOne();
    await page.waitForSelector('[data-testid=live-chart-temp_c]');
    const started = Date.now();
    const pending: Promise<void>[] = [];
    for (let i = 0; i < RATE * BURST_S; i++) {
      const due = started + (i * 1000) / RATE;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(publishOne());
    }
    await Promise.all(pending);
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid=latency]')?.getAttribute('data-count')) >= n, RATE * BURST_S * 0.9, { timeout: 10_000 });
    const latency = await page.locator('[data-testid=latency]').evaluate((el) => ({
      p50: Number(el.getAttribute('data-p50')),
      p99: Number(el.getAttribute('data-p99')),
      n: Number(el.getAttribute('data-count')),
      ingestP50: Number(el.getAttribute('data-ingest-p50')),
      ingestP99: Number(el.getAttribute('data-ingest-p99')),
    }));
    console.log(
      `# publish→screen latency at ${RATE} msg/s over ${latency.n} points: p50 ${latency.p50.toFixed(1)} ms, p99 ${latency.p99.toFixed(1)} ms (publish→received by the server: p50 ${latency.ingestP50.toFixed(1)} ms, p99 ${latency.ingestP99.toFixed(1)} ms)`,
    );
    // Printed, not asserted: a timing depends on what else the machine runs (the test measures; it does not judge).
    assert.ok(Number.isFinite(latency.p99) && latency.n >= RATE * BURST_S * 0.9, `latency measured over ${latency.n} points`);
    const drawn = Number(await page.locator('[data-testid=live-chart-temp_c] .uplot').getAttribute('data-points'));
    assert.ok(drawn >= RATE * BURST_S * 0.9, `the chart holds ${drawn} points`);
    assert.match(await text(page, 'latest-values'), /degC/);
    await shot(page, '04-device-live');

    // A message for a schema not registered yet is dead-lettered; register it, replay it.
    const late = { $id: 'late@1', type: 'object', additionalProperties: false, properties: { level: { type: 'number', 'x-unit': 'percent' } } };
    client.publish('devices/sensor-1/telemetry', JSON.stringify({ id: 'late-1', seq: 9999, ts: Date.now(), schema: 'late@1', data: { level: 42 } }), { qos: 1 });
    await waitFor(async () => ((await s.api('GET', '/api/v1/dead-letters?reason=unknown_schema', { token: admin })).body as unknown[]).length === 1);
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: late })).status, 201);
    await page.click('header a:has-text("Dead letters")');
    await page.waitForSelector('[data-testid=dead-letters]');
    await page.selectOption('[data-testid=reason-filter]', 'unknown_schema');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=dead-letters] tbody tr').length === 1);
    await page.click('button:has-text("inspect")');
    await shot(page, '05-dead-letters');
    await page.click('[data-testid=replay]');
    await page.waitForFunction(() => document.querySelector('[data-testid=replay-result]')?.textContent?.includes('stored'), null, { timeout: 10_000 });

    await page.click('header a:has-text("Schemas")');
    await page.waitForSelector('[data-testid="schema-late@1"]');
    await shot(page, '06-schemas');

    await page.click('header a:has-text("Audit log")');
    await page.waitForSelector('[data-testid=audit-table]');
    await page.click('[data-testid=verify]');
    await page.waitForSelector('[data-testid=verify-result]');
    assert.match(await text(page, 'verify-result'), /verif/i);
    await shot(page, '07-audit');
    await page.click('header a:has-text("Fleet")');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=ingest-chart]')?.getAttribute('data-points')) >= 3);
    await shot(page, '02b-fleet-rates');

    // Revoke from the device page: confirmation, then the session ends and the page says offline.
    await page.goto(`${s.url}/#/devices/sensor-1`);
    await page.waitForSelector('[data-testid=revoke]');
    const gone = closed(client);
    await page.click('[data-testid=revoke]');
    await page.click('[data-testid=revoke-confirm]');
    await gone;
    await page.waitForFunction(() => document.querySelector('[data-testid=device-online]')?.textContent?.startsWith('offline'), null, { timeout: 10_000 });
    await page.waitForSelector('.pill.revoked');
    await shot(page, '09-device-revoked');

    await page.click('[data-testid=sign-out]');
    await page.waitForSelector('#api-key');
    assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0, 'signing out forgets the key; nothing in localStorage ever');
    assert.deepEqual(problems, []);
    console.log(`# screenshots in ${SCREENSHOTS}`);
  });

  it('pauses and resumes a rollout with a reason; a viewer sees no write action, and the API refuses the viewer anyway', { timeout: 60_000 }, async (t) => {
    const context = await openBrowser(t);
    if (!context) return;
    const kit = firmwareKit(tempDir(t));
    const s = await startTestServer(t, { config: { ...LIMITS, ota: { rootKeysFile: kit.rootFile, tickIntervalMs: 0 }, webhooks: { allowHttp: true, allowPrivateTargets: true } } });
    const admin = await s.tokenFor(s.adminKey);
    await enrollDevice(s, admin, 'sensor-2');
    for (let i = 1; i <= 3; i++) await enrollDevice(s, admin, `gw-${i}`, { model: 'gw-1', hardwareRevision: 'C', firmwareVersion: '1.0.0' });
    const image = randomBytes(4096);
    const fw = await uploadFirmware(s, admin, kit.release(image), image);
    assert.equal(fw.status, 200, fw.text);
    const rollout = await s.api('POST', '/api/v1/rollouts', { token: admin, body: { name: 'gw 2.0.0', artifactId: fw.body.id, target: { model: 'gw-1' }, strategy: { waves: [{ count: 1 }, { percent: 100 }] }, gates: { minDevices: 1, onFailure: 'pause' } } });
    assert.equal(rollout.status, 201, rollout.text);

    const page = await context.newPage();
    const problems = watchedPage(page);
    await signIn(page, s.url, s.adminKey);
    await page.click('header a:has-text("Rollouts")');
    await page.waitForSelector('[data-testid=rollouts-table]');
    await page.click('[data-testid=rollouts-table] a:has-text("gw 2.0.0")');
    await page.waitForSelector('[data-testid=rollout-state]');
    assert.equal(await text(page, 'rollout-state'), 'running');
    await page.click('[data-testid=rollout-pause]');
    assert.ok(await page.locator('[data-testid=rollout-pause-confirm]').isDisabled(), 'a pause needs a reason');
    await page.fill('[data-testid=rollout-reason]', 'waiting for the canary report');
    await page.click('[data-testid=rollout-pause-confirm]');
    await page.waitForFunction(() => document.querySelector('[data-testid=rollout-state]')?.textContent === 'paused');
    await page.waitForFunction(() => document.querySelector('[data-testid=rollout-history]')?.textContent?.includes('waiting for the canary report'));
    await shot(page, '10-rollout-paused');
    await page.click('[data-testid=rollout-resume]');
    await page.fill('[data-testid=rollout-reason]', 'canary looks fine');
    await page.click('[data-testid=rollout-resume-confirm]');
    await page.waitForFunction(() => document.querySelector('[data-testid=rollout-state]')?.textContent === 'running');
    const audit = (await s.api('GET', '/api/v1/audit?action=rollout.pause', { token: admin })).body as { details: { reason?: string } }[];
    assert.equal(audit[0]?.details.reason, 'waiting for the canary report');
    await page.click('header a:has-text("Rollouts")');
    await page.waitForSelector('[data-testid=rollouts-table]');
    await shot(page, '11-rollouts');

    // Webhooks: listed with state and lag; paused and resumed from the page.
    const hook = await s.api('POST', '/api/v1/webhooks', { token: admin, body: { name: 'crm', url: 'http://127.0.0.1:9/hook', filter: { tags: ['north'] } } });
    assert.equal(hook.status, 201, hook.text);
    await page.click('header a:has-text("Webhooks")');
    await page.waitForSelector('[data-testid=webhooks-table]');
    const row = `[data-testid=webhook-${hook.body.id as string}]`;
    assert.equal(await page.locator(`${row} [data-testid=webhook-state]`).innerText(), 'active');
    assert.equal(await page.locator(`${row} [data-testid=webhook-lag]`).innerText(), '0');
    await page.click(`${row} [data-testid=webhook-pause]`);
    await page.click(`${row} [data-testid=webhook-pause-confirm]`);
    await page.waitForFunction((sel) => document.querySelector(`${sel} [data-testid=webhook-state]`)?.textContent === 'paused', row);
    assert.equal((await s.api('GET', `/api/v1/webhooks/${hook.body.id as string}`, { token: admin })).body.state, 'paused');
    await shot(page, '11b-webhooks');
    await page.click(`${row} [data-testid=webhook-resume]`);
    await page.waitForFunction((sel) => document.querySelector(`${sel} [data-testid=webhook-state]`)?.textContent === 'active', row);

    const key = await viewerKey(s, admin);
    const viewerPage = await context.newPage();
    const viewerProblems = watchedPage(viewerPage);
    await signIn(viewerPage, s.url, key);
    assert.match(await text(viewerPage, 'who'), /viewer.*read-only/);
    await viewerPage.goto(`${s.url}/#/devices/sensor-2`);
    await viewerPage.waitForSelector('[data-testid=device-state]');
    await viewerPage.waitForSelector('[data-testid=live-status]');
    for (const id of ['revoke', 'suspend', 'decommission', 'lifecycle-actions']) assert.equal(await viewerPage.locator(`[data-testid=${id}]`).count(), 0, id);
    assert.equal(await viewerPage.locator('button:has-text("Revoke")').count(), 0);
    await shot(viewerPage, '12-viewer-device');
    await viewerPage.goto(`${s.url}/#/dead-letters`);
    await viewerPage.waitForSelector('h2:has-text("Dead letters")');
    assert.equal(await viewerPage.locator('[data-testid=replay]').count(), 0);
    await viewerPage.goto(`${s.url}/#/webhooks`);
    await viewerPage.waitForSelector('main[data-page=webhooks] p:has-text("webhooks:read")');
    await viewerPage.goto(`${s.url}/#/rollouts/${rollout.body.id as string}`);
    await viewerPage.waitForSelector('[data-testid=rollout-state]');
    assert.equal(await viewerPage.locator('[data-testid=rollout-actions]').count(), 0);
    const viewer = await s.tokenFor(key);
    assert.equal((await s.api('POST', '/api/v1/devices/sensor-2/revoke', { token: viewer, body: {} })).status, 403);
    assert.equal((await s.api('POST', '/api/v1/devices/sensor-2/suspend', { token: viewer })).status, 403);
    assert.equal((await s.api('POST', `/api/v1/rollouts/${rollout.body.id as string}/pause`, { token: viewer, body: { reason: 'no' } })).status, 403);
    assert.deepEqual([...problems, ...viewerProblems], []);
  });

  it('renders the first screen of the devices page within a second with 10,000 devices in the store', { timeout: 60_000 }, async (t) => {
    const context = await openBrowser(t);
    if (!context) return;
    const s = await startTestServer(t, { config: { ...LIMITS, auth: { accessTokenTtlMs: 10_000 } } });
    const page = await context.newPage();
    const problems = watchedPage(page);
    // A new installation first: the empty states say what to do.
    await signIn(page, s.url, s.adminKey);
    await page.waitForSelector('.empty-title:has-text("No devices yet")');
    assert.match(await page.locator('.empty').first().innerText(), /bulwark devices create/);
    await shot(page, '00-fleet-empty');
    await page.goto(`${s.url}/#/devices`);
    await page.waitForSelector('.empty-title:has-text("No devices yet")');
    await page.goto(`${s.url}/#/dead-letters`);
    await page.waitForSelector('.empty-title:has-text("No dead letters")');

    const now = Date.now();
    const devices = Array.from({ length: 10_000 }, (_, i) => ({ id: `dev-${String(i).padStart(5, '0')}`, model: i % 3 === 0 ? 'gateway' : 'env-sensor', firmwareVersion: `1.${i % 4}.0`, tags: i % 2 ? ['north'] : ['south'] }));
    for (let i = 0; i < devices.length; i += 2000) await s.server.registry.createMany(devices.slice(i, i + 2000));
    console.log(`# stored 10,000 devices in ${Date.now() - now} ms`);
    await page.goto(`${s.url}/#/`);
    await page.waitForFunction(() => document.querySelector('[data-testid=count-total]')?.textContent === '10000');
    assert.match(await text(page, 'firmware-counts'), /1\.0\.0\s*2500/, 'the counts are the whole fleet, from one request');
    assert.match(await text(page, 'model-counts'), /env-sensor\s*6666/);
    // A dynamic group narrows the device list, chosen from the filter bar.
    const admin = await s.tokenFor(s.adminKey);
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'gateways-north', kind: 'dynamic', query: { model: ['gateway'], tags: ['north'] } } })).status, 201);
    await page.goto(`${s.url}/#/devices?group=gateways-north`);
    await page.waitForSelector('[data-testid=devices-table] tbody tr:first-child a:has-text("dev-00003")');
    assert.equal(await page.locator('select[name=group]').inputValue(), 'gateways-north');
    assert.match(await page.locator('select[name=group]').innerText(), /gateways-north \(dynamic\)/);
    const t0 = Date.now();
    await page.goto(`${s.url}/#/devices`);
    await page.waitForSelector('[data-testid=devices-table] tbody tr:nth-child(50)');
    const firstScreenMs = Date.now() - t0;
    console.log(`# devices page, 10,000 devices in the store: first screen (50 rows) in ${firstScreenMs} ms after navigation`);
    assert.ok(firstScreenMs < 3000, `first screen took ${firstScreenMs} ms (target 1 s)`);
    // Cold: a reload loads the scripts, renews the session from the tab's key, then lists.
    const t1 = Date.now();
    await page.reload();
    await page.waitForSelector('[data-testid=devices-table] tbody tr:nth-child(50)');
    const coldMs = Date.now() - t1;
    console.log(`# devices page, 10,000 devices in the store: first screen after a full reload (scripts, key exchange, whoami, list) in ${coldMs} ms`);
    assert.ok(coldMs < 3000, `first screen after a reload took ${coldMs} ms`);
    await shot(page, '13-devices-10k');
    // The access token lives 10 s here: past that, the page has renewed it from the key.
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + 11_000 - Date.now())));
    await page.click('[data-testid=next-page]');
    await page.waitForSelector('[data-testid=devices-table] a:has-text("dev-00050")');
    await page.goto(`${s.url}/#/devices?search=dev-0999`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=devices-table] tbody tr').length === 10);
    const exchanges = (await s.api('GET', '/api/v1/audit?action=auth.token&result=ok', { token: await s.tokenFor(s.adminKey) })).body as unknown[];
    assert.ok(exchanges.length >= 3, `the key was exchanged ${exchanges.length} times (sign-in, renewal, this check)`);
    assert.match(await text(page, 'who'), /admin/, 'still signed in');
    assert.deepEqual(problems, []);
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
