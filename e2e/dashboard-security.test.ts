import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { openBrowser, shot, signIn, watchedPage } from './support/browser.js';

/**
 * The dashboard's security page in Debian's Chromium against the real server: the checklist
 * of `bulwark audit`, failing checks first with their evidence and what to do; "Check again"
 * shows a fix take effect.
 */
describe('dashboard security checklist in a browser', () => {
  it('shows each check with its result, evidence, remediation and ETSI clause, failures first', { timeout: 30_000 }, async (t) => {
    const context = await openBrowser(t);
    if (!context) return;
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const bot = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'ci-bot', kind: 'service', scopes: ['devices:read', 'keys:write'] } });
    assert.equal(bot.status, 201, bot.text);

    const page = await context.newPage();
    const problems = watchedPage(page);
    await signIn(page, s.url, s.adminKey);
    await page.click('header a:has-text("Security")');
    await page.waitForSelector('[data-testid=checklist]');
    assert.match(await page.locator('[data-testid=checklist-summary]').innerText(), /\d+ pass, 0 warn, 1 fail/);
    const first = page.locator('[data-testid=checklist] tbody tr').first();
    assert.equal(await first.getAttribute('data-testid'), 'check-broad-service-accounts', 'the failing check comes first');
    const cells = await first.locator('td').allInnerTexts();
    assert.equal(cells[0], 'fail');
    assert.equal(cells[2], '5.6');
    assert.match(cells[3] ?? '', /service account ci-bot \(\S+\) holds keys:write/);
    assert.match(cells[4] ?? '', /only the scopes its job needs/);
    assert.equal(await page.locator('[data-testid=checklist] tbody tr[data-status=pass]').count(), (await page.locator('[data-testid=checklist] tbody tr').count()) - 1);
    await shot(page, '20-security');

    // Fixed (the account disabled): checking again passes everything.
    const disabled = await s.api('POST', `/api/v1/users/${(bot.body as { id: string }).id}/disable`, { token: admin });
    assert.equal(disabled.status, 200, disabled.text);
    await page.click('button:has-text("Check again")');
    await page.waitForFunction(() => /0 warn, 0 fail/.test(document.querySelector('[data-testid=checklist-summary]')?.textContent ?? ''));
    assert.deepEqual(problems, []);
  });
});
