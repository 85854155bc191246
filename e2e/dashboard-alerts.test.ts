import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { type TestServer, startTestServer } from '../packages/server/src/testing/harness.js';
import { closed, connectDevice, enrollDevice } from '../packages/server/src/testing/devices.js';
import { eventually } from '../packages/server/src/testing/eventually.js';
import { env, schema } from '../packages/server/src/testing/telemetry.js';
import { openBrowser, shot, signIn, watchedPage } from './support/browser.js';

/**
 * The dashboard's alerts in Debian's Chromium against the real server on port 0: alerts fired
 * by real devices over mutual TLS (a threshold crossed by a published reading, and the built-in
 * offline rule when the devices disconnect), then acknowledged, silenced and resolved from the
 * pages, and seen read-only by a viewer.
 */

const LIMITS = { rateLimit: { perPrincipalPerMinute: 100_000, perAddressPerMinute: 100_000 } };
/** Offline after 1 s; two devices offline together make an incident. */
const ALERTS = { offlineAfterMs: 1000, groupWaitMs: 200, groupMinAlerts: 2 };

interface AlertRow {
  id: string;
  ruleId: string;
  deviceId: string;
  state: string;
  incidentId: string | null;
}

const openAlerts = async (s: TestServer, token: string) => (await s.api('GET', '/api/v1/alerts?state=open', { token })).body as AlertRow[];
const text = (page: Page, selector: string) => page.locator(selector).first().innerText();
const row = (id: string) => `[data-testid="alert-${id}"]`;

async function keyFor(s: TestServer, admin: string, user: Record<string, unknown>): Promise<string> {
  const created = await s.api('POST', '/api/v1/users', { token: admin, body: user });
  assert.equal(created.status, 201, created.text);
  const key = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'browser', principalId: created.body.id } });
  assert.equal(key.status, 201, key.text);
  return key.body.key as string;
}

describe('dashboard alerts in a browser', () => {
  it('lists alerts fired by real devices; acknowledges, silences and resolves them from the alerts and device pages; the fleet page counts them and shows the incident; a viewer sees no write action', { timeout: 60_000 }, async (t) => {
    const context = await openBrowser(t);
    if (!context) return;
    const s = await startTestServer(t, { config: { ...LIMITS, alerts: ALERTS } });
    const admin = await s.tokenFor(s.adminKey);
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    const created = await s.api('POST', '/api/v1/alerts/rules', {
      token: admin,
      body: { name: 'Too hot', severity: 'critical', scope: { schemas: ['env-sensor@1'] }, condition: { kind: 'threshold', field: 'temp_c', op: '>', value: 80 } },
    });
    assert.equal(created.status, 201, created.text);
    const ruleId = created.body.id as string;

    // sensor-1 sends one reading over 80; then both devices go away: two "Device offline" alerts, one incident.
    const clients = await Promise.all(['sensor-1', 'sensor-2'].map(async (id) => connectDevice(s, await enrollDevice(s, admin, id, { model: 'env-sensor' }))));
    t.after(() => clients.forEach((c) => c.end(true)));
    await clients[0]?.publishAsync('devices/sensor-1/telemetry', env('hot-1', { temp_c: 85 }), { qos: 1 });
    const [hot] = await eventually(
      () => openAlerts(s, admin),
      (a) => a.some((x) => x.ruleId === ruleId),
    );
    assert.ok(hot);
    for (const c of clients) {
      c.end(true);
      await closed(c);
    }
    const open = await eventually(
      () => openAlerts(s, admin),
      (a) => a.filter((x) => x.ruleId === 'builtin-offline' && x.incidentId !== null).length === 2,
    );
    const offline1 = open.find((a) => a.ruleId === 'builtin-offline' && a.deviceId === 'sensor-1') as AlertRow;

    const page = await context.newPage();
    const problems = watchedPage(page);
    await signIn(page, s.url, s.adminKey);

    // The fleet page: three open alerts, the incident with its rule and both devices.
    await page.waitForSelector('[data-testid=count-open-alerts]');
    assert.equal(await text(page, '[data-testid=count-open-alerts]'), '3');
    // The fleet counts the server keeps: both devices have alerts nobody acknowledged, and lose health by them.
    await page.waitForFunction(() => document.querySelector('[data-testid=alerts-firing-devices]')?.textContent === '2');
    assert.equal(await text(page, '[data-testid=health-poor]'), '1', 'sensor-1: a critical threshold alert and a warning (offline): 45');
    assert.equal(await text(page, '[data-testid=health-good]'), '1', 'sensor-2: a warning (offline): 85');
    await page.waitForSelector('[data-testid=open-incidents] td:has-text("Device offline")');
    assert.match(await text(page, '[data-testid=incident-devices]'), /sensor-1, sensor-2|sensor-2, sensor-1/);
    await shot(page, '20-fleet-alerts');

    // The alerts page, from the navigation: open alerts, newest first, with severity, rule, device, summary, runbook.
    await page.click('header a:has-text("Alerts")');
    await page.waitForSelector(`${row(hot.id)}`);
    assert.equal(await page.locator('[data-testid=alerts-table] tbody tr').count(), 3);
    const hotRow = await text(page, row(hot.id));
    for (const part of ['critical', 'Too hot', 'threshold', 'sensor-1', 'temp_c 85 > 80', 'firing', 'docs/runbooks/threshold.md']) assert.ok(hotRow.includes(part), `"${part}" in ${hotRow}`);
    assert.equal(await page.locator(`${row(hot.id)} a[href="#/devices/sensor-1"]`).count(), 1);
    const shown = await page.locator('[data-testid=alerts-table] tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-testid')));
    assert.deepEqual(
      shown,
      open.map((a) => `alert-${a.id}`),
      'in the order the API lists them',
    );
    assert.equal(shown[2], `alert-${hot.id}`, 'newest first: the threshold alert fired before the devices went offline');
    assert.equal(await text(page, `[data-testid="rule-${ruleId}"] [data-testid=rule-condition]`), 'temp_c > 80');
    assert.equal(await text(page, '[data-testid="rule-builtin-offline"] [data-testid=rule-condition]'), 'offline for 1s');
    assert.match(await text(page, `[data-testid="rule-${ruleId}"]`), /schemas env-sensor@1/);
    await shot(page, '21-alerts');

    // Acknowledge (confirmed first): it leaves Firing and shows under Acknowledged.
    await page.click(`${row(hot.id)} [data-testid=alert-ack]`);
    await page.click(`${row(hot.id)} [data-testid=alert-ack-confirm]`);
    await page.waitForSelector(`${row(hot.id)} [data-testid=alert-state]:text-is("acknowledged")`);
    assert.equal(((await s.api('GET', `/api/v1/alerts/${hot.id}`, { token: admin })).body as { acknowledgedBy: string }).acknowledgedBy.length > 0, true);
    await page.click('[data-testid=tab-firing]');
    await page.waitForFunction((sel) => !document.querySelector(sel) && document.querySelectorAll('[data-testid=alerts-table] tbody tr').length === 2, row(hot.id));
    await page.click('[data-testid=tab-acknowledged]');
    await page.waitForFunction((sel) => document.querySelector(sel) && document.querySelectorAll('[data-testid=alerts-table] tbody tr').length === 1, row(hot.id));

    // Silence its rule on its device: a reason is required, the duration is prefilled.
    await page.click(`${row(hot.id)} [data-testid=alert-silence]`);
    assert.ok(await page.locator('[data-testid=silence-confirm]').isDisabled(), 'a silence needs a reason');
    assert.equal(await page.inputValue('[data-testid=silence-duration]'), '2h');
    await page.fill('[data-testid=silence-reason]', 'fan replaced on site today');
    await page.click('[data-testid=silence-confirm]');
    await page.waitForSelector('[data-testid=silences] td:has-text("fan replaced on site today")');
    assert.match(await text(page, '[data-testid=silences]'), /Too hot[\s\S]*sensor-1/);
    await page.waitForSelector(`${row(hot.id)} [data-testid=alert-silenced-until]`);
    const silences = (await s.api('GET', '/api/v1/alerts/silences', { token: admin })).body as { ruleId: string; deviceId: string; expiresAt: number; createdAt: number }[];
    assert.equal(silences.length, 1);
    assert.deepEqual([silences[0]?.ruleId, silences[0]?.deviceId, (silences[0]?.expiresAt ?? 0) - (silences[0]?.createdAt ?? 0)], [ruleId, 'sensor-1', 2 * 3_600_000]);
    await shot(page, '22-alerts-acknowledged-silenced');

    // Filters: device and rule, kept in the URL.
    await page.goto(`${s.url}/#/alerts?state=all&device=sensor-2`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=alerts-table] tbody tr').length === 1 && /sensor-2/.test(document.querySelector('[data-testid=alerts-table] tbody')?.textContent ?? ''));
    await page.goto(`${s.url}/#/alerts?state=all`);
    await page.selectOption('[data-testid=alert-rule-filter]', ruleId);
    await page.waitForFunction((sel) => document.querySelector(sel) && document.querySelectorAll('[data-testid=alerts-table] tbody tr').length === 1, row(hot.id));
    assert.match(page.url(), new RegExp(`rule=${ruleId}`));

    // The device list shows each device's health score and sorts by it: sensor-1 (two open alerts) first.
    await page.goto(`${s.url}/#/devices?sort=health`);
    await page.waitForSelector('[data-testid=devices-table] [data-testid=health-score]');
    const listed = await page.locator('[data-testid=devices-table] tbody tr').evaluateAll((rows) => rows.map((r) => [r.querySelector('a')?.textContent ?? '', Number(r.querySelector('[data-testid=health-score]')?.textContent)]));
    assert.equal(listed[0]?.[0], 'sensor-1', JSON.stringify(listed));
    assert.ok((listed[0]?.[1] as number) < 100, JSON.stringify(listed));
    assert.deepEqual(
      listed.map((r) => r[1]),
      [...listed.map((r) => r[1] as number)].sort((a, b) => a - b),
      'worst first',
    );

    // The device page: sensor-1's two open alerts with the same actions; resolve the offline one by hand.
    await page.goto(`${s.url}/#/devices/sensor-1`);
    await page.waitForSelector(`[data-testid=device-alerts] ${row(offline1.id)}`);
    assert.equal(await page.locator('[data-testid=device-alerts] tbody tr').count(), 2);
    assert.match(await text(page, row(hot.id)), /acknowledged[\s\S]*silenced until/);
    await page.click(`${row(offline1.id)} [data-testid=alert-resolve]`);
    await page.click(`${row(offline1.id)} [data-testid=alert-resolve-confirm]`);
    await page.waitForSelector(`${row(offline1.id)} [data-testid=alert-state]:text-is("resolved")`);
    assert.equal(await page.locator(`${row(offline1.id)} [data-testid=alert-resolve]`).count(), 0);
    await shot(page, '23-device-alerts');

    // Back on the fleet page, the count follows.
    await page.click('header a:has-text("Fleet")');
    await page.waitForFunction(() => document.querySelector('[data-testid=count-open-alerts]')?.textContent === '2');

    // A viewer reads everything and is offered no write action; the API refuses the viewer anyway.
    const viewerKey = await keyFor(s, admin, { name: 'vera', role: 'viewer' });
    const viewerPage = await context.newPage();
    const viewerProblems = watchedPage(viewerPage);
    await signIn(viewerPage, s.url, viewerKey);
    const noWriteAction = async (where: string) => {
      for (const id of ['alert-ack', 'alert-resolve', 'alert-silence', 'silence-end']) assert.equal(await viewerPage.locator(`[data-testid=${id}]`).count(), 0, `${id} on ${where}`);
      assert.equal(await viewerPage.locator('main button:has-text("Acknowledge"), main button:has-text("Resolve"), main button:has-text("Silence"), main button:has-text("End")').count(), 0, where);
    };
    await viewerPage.waitForFunction(() => document.querySelector('[data-testid=count-open-alerts]')?.textContent === '2');
    await viewerPage.goto(`${s.url}/#/alerts?state=all`);
    await viewerPage.waitForFunction(() => document.querySelectorAll('[data-testid=alerts-table] tbody tr').length === 3);
    await viewerPage.waitForSelector('[data-testid=silences] td:has-text("fan replaced on site today")');
    await noWriteAction('the alerts page');
    await shot(viewerPage, '24-viewer-alerts');
    await viewerPage.goto(`${s.url}/#/devices/sensor-1`);
    await viewerPage.waitForSelector(`[data-testid=device-alerts] ${row(hot.id)}`);
    await noWriteAction('the device page');
    const viewer = await s.tokenFor(viewerKey);
    assert.equal((await s.api('POST', `/api/v1/alerts/${hot.id}/resolve`, { token: viewer })).status, 403);

    // A service account without alerts:read is told so.
    const narrowKey = await keyFor(s, admin, { name: 'inventory', kind: 'service', scopes: ['devices:read'] });
    const narrowPage = await context.newPage();
    await signIn(narrowPage, s.url, narrowKey);
    await narrowPage.goto(`${s.url}/#/alerts`);
    await narrowPage.waitForSelector('main[data-page=alerts] p:has-text("alerts:read")');
    await narrowPage.goto(`${s.url}/#/`);
    await narrowPage.waitForSelector('[data-testid=count-total]');
    assert.equal(await narrowPage.locator('[data-testid=overview-alerts]').count(), 0);

    // End the silence from the alerts page.
    await page.goto(`${s.url}/#/alerts`);
    await page.click('[data-testid=silence-end]');
    await page.click('[data-testid=silence-end-confirm]');
    await page.waitForSelector('[data-testid=no-silences]');
    assert.deepEqual((await s.api('GET', '/api/v1/alerts/silences', { token: admin })).body, []);
    assert.deepEqual([...problems, ...viewerProblems], []);
  });
});
