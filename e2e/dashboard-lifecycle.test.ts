import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { type SignedReceipt, verifyReceipt } from '../packages/server/src/lifecycle/index.js';
import { send } from '../packages/server/src/testing/device-messages.js';
import { connectDevice, enrollDevice, makeDeviceKeys } from '../packages/server/src/testing/devices.js';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { env, schema } from '../packages/server/src/testing/telemetry.js';
import { openBrowser, shot, signIn, watchedPage } from './support/browser.js';

/**
 * End of life and device groups from the dashboard, in Debian's Chromium against the real
 * server on port 0: decommission with erase after readings were stored (the receipt shown has
 * the counts the API answered, the downloaded receipt verifies with the platform's receipt
 * key, the readings are gone), an erasure request on a device that stays in service, a
 * transfer refused with its code for an unknown owner and then done, its claim token shown
 * and good for enrolment; and on the Users page a service account limited to a group, an
 * unknown group refused with its code, the limit lifted (and no such form on your own row).
 */

const LIMITS = { rateLimit: { perPrincipalPerMinute: 100_000, perAddressPerMinute: 100_000 } };

/** Clicks a confirmation button and returns the JSON body of the POST it sends to `route`. */
async function confirmAndRead(page: Page, testId: string, route: string): Promise<Record<string, unknown>> {
  const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === route), page.click(`[data-testid=${testId}]`)]);
  return (await response.json()) as Record<string, unknown>;
}

/** The receipt's counts as the page shows them: every kind of data with a count above zero. */
async function shownCounts(page: Page): Promise<Record<string, number>> {
  const cells = await page.locator('[data-testid=receipt-counts] td[data-testid^=receipt-]').evaluateAll((tds) => tds.map((td) => [td.getAttribute('data-testid'), td.textContent]));
  return Object.fromEntries(cells.map(([id, n]) => [String(id).slice('receipt-'.length), Number(n)]));
}

const nonZero = (data: Record<string, number>) => Object.fromEntries(Object.entries(data).filter(([, n]) => n > 0));

describe('dashboard end of life and device groups in a browser', () => {
  it('decommissions with erase, takes an erasure request, transfers with a claim token, and limits a service account to device groups', { timeout: 60_000 }, async (t) => {
    const context = await openBrowser(t);
    if (!context) return;
    const s = await startTestServer(t, { config: LIMITS });
    const admin = await s.tokenFor(s.adminKey);
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    for (const id of ['eol-1', 'eol-2']) {
      const client = await connectDevice(s, await enrollDevice(s, admin, id));
      t.after(() => client.end(true));
      for (let i = 0; i < 3; i += 1) await send(client, `devices/${id}/telemetry`, env(`${id}-${i}`, { temp_c: 20 + i }));
    }
    assert.equal((await s.api('GET', '/api/v1/devices/eol-1/telemetry', { token: admin })).body.length, 3, 'readings stored before the decommission');
    assert.equal((await s.api('POST', '/api/v1/devices', { token: admin, body: { id: 'eol-3' } })).status, 201);
    const bot = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'site-bot', kind: 'service', scopes: ['devices:read'] } });
    assert.equal(bot.status, 201, bot.text);
    const botId = bot.body.id as string;
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'site-a', kind: 'static', members: ['eol-2'] } })).status, 201);
    const receiptKey = (await s.api('GET', '/api/v1/system/receipt-key', { token: admin })).body as { keyId: string; publicKeyPem: string };

    const page = await context.newPage();
    const problems = watchedPage(page);
    await signIn(page, s.url, s.adminKey);

    // Decommission with erase: asked once more with the device and the policy spelled out.
    await page.goto(`${s.url}/#/devices/eol-1`);
    await page.selectOption('[data-testid=eol-policy]', 'erase');
    await page.click('[data-testid=decommission]');
    await page.waitForSelector('[role=dialog]:has-text("Decommission eol-1 with data policy \\"erase\\": everything held about it is erased.")');
    await page.waitForSelector('[role=dialog]:has-text("This cannot be undone.")');
    const decommissioned = await confirmAndRead(page, 'decommission-confirm', '/api/v1/devices/eol-1/decommission');
    const receipt = decommissioned.receipt as SignedReceipt;
    assert.equal(receipt.data.telemetry, 3);
    await page.waitForSelector('[data-testid=receipt]:has-text("Decommission of eol-1")');
    assert.deepEqual(await shownCounts(page), nonZero({ ...receipt.data }), 'the page shows every count the API answered');
    assert.equal(await page.locator('[data-testid=receipt-key]').innerText(), receiptKey.keyId);
    assert.match(await page.locator('[data-testid=receipt-revoked]').innerText(), /^1 certificate revoked/);
    await page.waitForSelector('[data-testid=device-state]:text-is("decommissioned")');
    assert.equal(await page.locator('[data-testid=decommission]').count(), 0, 'no second decommission');
    // The download is the receipt as signed: it verifies with the platform's published key.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=receipt-download]')]);
    assert.equal(download.suggestedFilename(), `${receipt.id}.json`);
    const downloaded = JSON.parse(await readFile(await download.path(), 'utf8')) as SignedReceipt;
    assert.deepEqual(downloaded, receipt);
    assert.ok(verifyReceipt(downloaded, receiptKey.publicKeyPem), 'the downloaded receipt verifies');
    await shot(page, '40-decommission-receipt');
    assert.deepEqual((await s.api('GET', '/api/v1/devices/eol-1/telemetry', { token: admin })).body, [], 'its readings are gone');

    // An erasure request: keep is not offered; the device stays in service, its readings go.
    await page.goto(`${s.url}/#/devices/eol-2`);
    await page.waitForSelector('[data-testid=erase-policy]');
    assert.deepEqual(await page.locator('[data-testid=erase-policy] option').evaluateAll((os) => os.map((o) => o.getAttribute('value'))), ['erase', 'pseudonymise']);
    await page.click('[data-testid=erase]');
    await page.waitForSelector('[role=dialog]:has-text("Erasure request for eol-2 with data policy \\"erase\\"")');
    const erased = (await confirmAndRead(page, 'erase-confirm', '/api/v1/devices/eol-2/erase')).receipt as SignedReceipt;
    await page.waitForSelector('[data-testid=receipt]:has-text("Erasure of eol-2")');
    assert.equal(erased.data.telemetry, 3);
    assert.deepEqual(await shownCounts(page), nonZero({ ...erased.data }));
    assert.equal((await s.api('GET', '/api/v1/devices/eol-2', { token: admin })).body.state, 'active');
    assert.deepEqual((await s.api('GET', '/api/v1/devices/eol-2/telemetry', { token: admin })).body, []);

    // Transfer: an unknown owner is refused with its code; a real one gets a fresh claim token.
    await page.goto(`${s.url}/#/devices/eol-3`);
    assert.ok(await page.locator('[data-testid=transfer]').isDisabled(), 'no transfer without an owner');
    await page.fill('[data-testid=transfer-owner]', 'usr_nobody');
    await page.click('[data-testid=transfer]');
    await page.click('[data-testid=transfer-confirm]');
    await page.waitForSelector('[data-testid=end-of-life] [role=alert][data-code=BULWARK_ERR_NOT_FOUND]');
    await page.click('[data-testid=end-of-life] [role=dialog] button:has-text("Cancel")');
    await page.fill('[data-testid=transfer-owner]', botId);
    await page.selectOption('[data-testid=transfer-policy]', 'pseudonymise');
    await page.click('[data-testid=transfer]');
    await page.waitForSelector(`[role=dialog]:has-text("Transfer eol-3 to ${botId} with data policy \\"pseudonymise\\"")`);
    const transferred = await confirmAndRead(page, 'transfer-confirm', '/api/v1/devices/eol-3/transfer');
    const token = (await page.locator('[data-testid=claim-token] code').first().innerText()).trim();
    assert.equal(token, (transferred.claimToken as { token: string }).token);
    await page.waitForSelector('[data-testid=claim-token]:has-text("shown this once")');
    await page.waitForSelector('[data-testid=receipt]:has-text("Transfer of eol-3")');
    assert.equal((await s.api('GET', '/api/v1/devices/eol-3', { token: admin })).body.owner, botId);
    await shot(page, '41-transfer-claim-token');
    // The token shown is the one the device enrols with.
    const enrolled = await s.api('POST', '/api/v1/enroll', { body: { token, csr: (await makeDeviceKeys('eol-3')).csrPem } });
    assert.equal(enrolled.status, 201, enrolled.text);

    // Users: limit the service account to site-a, see an unknown group refused with its code, lift the limit.
    await page.click('header a:has-text("Users")');
    const row = page.locator(`[data-testid=user-${botId}]`);
    await row.locator('[data-testid=groups]:has-text("whole fleet")').waitFor();
    assert.equal(await row.locator('[data-testid=access]').innerText(), 'devices:read');
    // Not on your own row: once limited, you could not lift it again yourself.
    const me = (await s.api('GET', '/api/v1/auth/whoami', { token: admin })).body.principal.id as string;
    await page.locator(`[data-testid=user-${me}] [data-testid=groups]:has-text("whole fleet")`).waitFor();
    assert.equal(await page.locator(`[data-testid=user-${me}] [data-testid=groups-input]`).count(), 0);
    await row.locator('[data-testid=groups-input]').fill('site-a');
    await row.locator('[data-testid=groups-set]').click();
    await row.locator('[data-testid=groups-set-confirm]').click();
    await row.locator('[data-testid=groups]:text-is("site-a")').waitFor();
    assert.deepEqual((await s.api('GET', `/api/v1/users/${botId}`, { token: admin })).body.deviceGroups, ['site-a']);
    await row.locator('[data-testid=groups-input]').fill('site-a, nowhere');
    await row.locator('[data-testid=groups-set]').click();
    await row.locator('[data-testid=groups-set-confirm]').click();
    await row.locator('[role=alert][data-code=BULWARK_ERR_NOT_FOUND]:has-text("nowhere")').waitFor();
    assert.deepEqual((await s.api('GET', `/api/v1/users/${botId}`, { token: admin })).body.deviceGroups, ['site-a'], 'a refused change changes nothing');
    await shot(page, '42-users-device-groups');
    await row.locator('[data-testid=groups-clear]').click();
    await row.locator('[data-testid=groups-clear-confirm]').click();
    await row.locator('[data-testid=groups]:has-text("whole fleet")').waitFor();
    assert.equal((await s.api('GET', `/api/v1/users/${botId}`, { token: admin })).body.deviceGroups, null);
    // The refusals above answered 404, which the browser logs as a failed load (left out by watchedPage).
    assert.deepEqual(problems, []);
  });
});
