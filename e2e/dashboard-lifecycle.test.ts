import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { send } from '../packages/server/src/testing/device-messages.js';
import { connectDevice, enrollDevice } from '../packages/server/src/testing/devices.js';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { env, schema } from '../packages/server/src/testing/telemetry.js';
import { openBrowser, shot, signIn, watchedPage } from './support/browser.js';

/**
 * End of life and least privilege from the dashboard, in Debian's Chromium against the real
 * server: decommission with erase (the receipt's counts are what the API says went), an
 * erasure request, a transfer showing the new claim token, a refusal shown with its code, and a
 * service account limited to a device group, then given the whole fleet again.
 */
describe('dashboard end of life and device groups in a browser', () => {
  it('decommissions with erase, erases, transfers with a claim token, and sets a service account\'s device groups', { timeout: 90_000 }, async (t) => {
    const context = await openBrowser(t);
    if (!context) return;
    const s = await startTestServer(t, { config: { rateLimit: { perPrincipalPerMinute: 100_000, perAddressPerMinute: 100_000 } } });
    const admin = await s.tokenFor(s.adminKey);
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    for (const id of ['eol-1', 'eol-2']) {
      const client = await connectDevice(s, await enrollDevice(s, admin, id));
      t.after(() => client.end(true));
      for (let i = 0; i < 3; i += 1) await send(client, `devices/${id}/telemetry`, env(`${id}-${i}`, { temp_c: 20 + i }));
    }
    assert.equal((await s.api('POST', '/api/v1/devices', { token: admin, body: { id: 'eol-3' } })).status, 201);
    const bot = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'site-bot', kind: 'service', scopes: ['devices:read'] } });
    assert.equal(bot.status, 201, bot.text);
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'site-a', kind: 'static', members: ['eol-2'] } })).status, 201);

    const page = await context.newPage();
    const problems = watchedPage(page);
    await signIn(page, s.url, s.adminKey);

    // Decommission with erase: asked once more with the policy spelled out, then the receipt.
    await page.goto(`${s.url}/#/devices/eol-1`);
    await page.selectOption('[data-testid=eol-policy]', 'erase');
    await page.click('[data-testid=decommission]');
    await page.waitForSelector('[role=dialog]:has-text("Decommission eol-1 for good and erase everything held about it?")');
    await page.click('[data-testid=decommission-confirm]');
    await page.waitForSelector('[data-testid=receipt]:has-text("decommission of eol-1")');
    assert.equal(await page.locator('[data-testid=receipt-telemetry]').innerText(), '3');
    await page.waitForSelector('[data-testid=device-state]:text-is("decommissioned")');
    assert.equal(await page.locator('[data-testid=receipt-download]').getAttribute('download') !== null, true);
    await shot(page, '40-decommission-receipt');
    assert.deepEqual((await s.api('GET', '/api/v1/devices/eol-1/telemetry', { token: admin })).body, [], 'its readings are gone');

    // An erasure request: the device stays in service, its readings go.
    await page.goto(`${s.url}/#/devices/eol-2`);
    await page.click('[data-testid=erase]');
    await page.click('[data-testid=erase-confirm]');
    await page.waitForSelector('[data-testid=receipt]:has-text("erasure of eol-2")');
    assert.equal(await page.locator('[data-testid=receipt-telemetry]').innerText(), '3');
    assert.equal((await s.api('GET', '/api/v1/devices/eol-2', { token: admin })).body.state, 'active');

    // Transfer: an unknown owner is refused with its code; a real one gets a fresh claim token.
    await page.goto(`${s.url}/#/devices/eol-3`);
    await page.fill('[data-testid=transfer-owner]', 'usr_nobody');
    await page.click('[data-testid=transfer]');
    await page.click('[data-testid=transfer-confirm]');
    await page.waitForSelector('[data-testid=end-of-life] [role=alert][data-code=BULWARK_ERR_NOT_FOUND]');
    await page.click('[data-testid=end-of-life] [role=dialog] button:has-text("Cancel")');
    await page.fill('[data-testid=transfer-owner]', bot.body.id as string);
    await page.click('[data-testid=transfer]');
    await page.waitForSelector(`[role=dialog]:has-text("Hand eol-3 to ${bot.body.id as string}")`);
    await page.click('[data-testid=transfer-confirm]');
    const token = (await page.locator('[data-testid=claim-token] code').innerText()).trim();
    assert.ok(token.length > 20, token);
    assert.equal((await s.api('GET', '/api/v1/devices/eol-3', { token: admin })).body.owner, bot.body.id);
    await shot(page, '41-transfer-claim-token');

    // Users: limit the service account to site-a, see an unknown group refused with its code, lift the limit.
    await page.click('header a:has-text("Users")');
    const row = page.locator(`[data-testid=user-${bot.body.id as string}]`);
    await row.locator('[data-testid=groups]:has-text("whole fleet")').waitFor();
    await row.locator('[data-testid=groups-input]').fill('site-a');
    await row.locator('[data-testid=groups-set]').click();
    await row.locator('[data-testid=groups-set-confirm]').click();
    await row.locator('[data-testid=groups]:text-is("site-a")').waitFor();
    assert.deepEqual((await s.api('GET', `/api/v1/users/${bot.body.id as string}`, { token: admin })).body.deviceGroups, ['site-a']);
    await row.locator('[data-testid=groups-input]').fill('site-a, nowhere');
    await row.locator('[data-testid=groups-set]').click();
    await row.locator('[data-testid=groups-set-confirm]').click();
    await row.locator('[role=alert][data-code=BULWARK_ERR_NOT_FOUND]').waitFor();
    await shot(page, '42-users-device-groups');
    await row.locator('[data-testid=groups-clear]').click();
    await row.locator('[data-testid=groups-clear-confirm]').click();
    await row.locator('[data-testid=groups]:has-text("whole fleet")').waitFor();
    assert.equal((await s.api('GET', `/api/v1/users/${bot.body.id as string}`, { token: admin })).body.deviceGroups, null);
    assert.deepEqual(problems.filter((p) => !/40[34]/.test(p)), []);
  });
});
