import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { ManualClock } from '@bulwark/core';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { enrollDevice } from '../packages/server/src/testing/devices.js';
import { openBrowser, shot, signIn, watchedPage } from './support/browser.js';

/**
 * The dashboard's certificates page in Debian's Chromium against the real server on port 0.
 * Devices enroll at different times of a manual clock, with 100-day certificates, so that at
 * the clock's end (now, in whole seconds) one certificate ended 10 days ago and the others end
 * in 3, 20, 50 and 100 days. The page's summary, weekly bars and table are checked in the
 * 30-, 90- and 7-day windows, and a device link leads to the device page's warning.
 */

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const VALIDITY_DAYS = 100;
/** How far before now each device enrolls; an hour's margin keeps "in N days" off its boundary. */
const ENROLLED_AGO_MS: Record<string, number> = {
  'old-1': 110 * DAY_MS + HOUR_MS, // ended 10 days ago
  'soon-1': 97 * DAY_MS - HOUR_MS, // ends in 3 days
  'month-1': 80 * DAY_MS - HOUR_MS, // ends in 20 days
  'quarter-1': 50 * DAY_MS - HOUR_MS, // ends in 50 days
  'fresh-1': 0, // ends in 100 days: in no window
};

const text = (page: Page, testId: string) => page.locator(`[data-testid="${testId}"]`).first().innerText();
const summary = (page: Page) => Promise.all(['certs-expired', 'certs-7', 'certs-30', 'certs-window'].map((id) => text(page, id)));
const tableRows = (page: Page) => page.locator('[data-testid=certs-table] tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.innerText.trim())));
const barCounts = (page: Page) => page.locator('[data-testid=cert-weeks] rect').evaluateAll((rects) => rects.map((r) => Number(r.getAttribute('data-count'))));

describe('dashboard certificates in a browser', () => {
  it('shows the expiring certificates by window with their summary, weekly bars and table; a device ending soon warns on its page', { timeout: 30_000 }, async (t) => {
    const context = await openBrowser(t);
    if (!context) return;
    const started = Date.now();
    const now = Math.floor(Date.now() / 1000) * 1000;
    const clock = new ManualClock(now - Math.max(...Object.values(ENROLLED_AGO_MS)));
    const s = await startTestServer(t, { clock, config: { identity: { deviceCertValidityDays: VALIDITY_DAYS } } });
    const serials: Record<string, string> = {};
    // Oldest first, so that the clock only moves forward; access tokens live minutes, so one per step.
    for (const [id, ago] of Object.entries(ENROLLED_AGO_MS).sort(([, a], [, b]) => b - a)) {
      clock.set(now - ago);
      serials[id] = (await enrollDevice(s, await s.tokenFor(s.adminKey), id)).serial;
    }
    clock.set(now);

    const page = await context.newPage();
    const problems = watchedPage(page);
    await signIn(page, s.url, s.adminKey);
    await page.click('header a:has-text("Certificates")');
    await page.waitForSelector('[data-testid=certs-table]');

    // The 30-day window (the default): ended first, then soonest first; fresh-1 and quarter-1 are beyond it.
    assert.equal(await page.getAttribute('[data-testid=window-30]', 'class'), 'active');
    assert.deepEqual(await summary(page), ['1', '1', '2', '2']);
    const rows = await tableRows(page);
    assert.deepEqual(
      rows.map((r) => r[0]),
      ['old-1', 'soon-1', 'month-1'],
    );
    assert.deepEqual(
      rows.map((r) => r[1]),
      [serials['old-1'], serials['soon-1'], serials['month-1']],
    );
    assert.match(rows[0]?.[2] ?? '', /expired 10 days ago$/);
    assert.match(rows[1]?.[2] ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ in 3 days$/);
    assert.match(rows[2]?.[2] ?? '', /in 20 days$/);
    assert.deepEqual(
      rows.map((r) => r[3]),
      ['issuing', 'issuing', 'issuing'],
    );
    // Bars: ended, then weeks (0,7] (7,14] (14,21] (21,28] (28,30].
    assert.deepEqual(await barCounts(page), [1, 1, 0, 1, 0, 0]);
    await shot(page, '40-certificates');

    // 90 days: quarter-1 joins; the window is in the URL.
    await page.click('[data-testid=window-90]');
    await page.waitForSelector('[data-testid="cert-quarter-1"]');
    assert.match(page.url(), /#\/certificates\?days=90$/);
    assert.deepEqual(await summary(page), ['1', '1', '2', '3']);
    assert.deepEqual(
      (await tableRows(page)).map((r) => r[0]),
      ['old-1', 'soon-1', 'month-1', 'quarter-1'],
    );
    assert.match(await text(page, 'cert-quarter-1'), /in 50 days/);
    const weeks = await barCounts(page);
    assert.equal(weeks.length, 1 + 13);
    assert.deepEqual(
      weeks.map((n, i) => (n ? i : -1)).filter((i) => i >= 0),
      [0, 1, 3, 8],
      'ended, then weeks 1, 3 and 8',
    );

    // 7 days: only the ended one and soon-1 are listed; the summary still counts 30 days ahead.
    await page.click('[data-testid=window-7]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=certs-table] tbody tr').length === 2);
    assert.deepEqual(
      (await tableRows(page)).map((r) => r[0]),
      ['old-1', 'soon-1'],
    );
    assert.deepEqual(await summary(page), ['1', '1', '2', '1']);
    assert.deepEqual(await barCounts(page), [1, 1]);

    // A reload keeps the window; the device link leads to its page, which warns and links back.
    await page.reload();
    await page.waitForSelector('[data-testid=window-7].active');
    await page.click('[data-testid="cert-soon-1"] a:has-text("soon-1")');
    await page.waitForURL(/#\/devices\/soon-1$/);
    assert.match(await text(page, 'cert-warning'), /^Its certificate ends \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(in 3 days\)\. Certificates ending within 30 days$/);
    await shot(page, '41-certificate-warning');
    await page.click('[data-testid=cert-warning] a');
    await page.waitForSelector('[data-testid=window-30].active');
    assert.deepEqual(await summary(page), ['1', '1', '2', '2']);

    // A device whose certificate ends beyond 30 days has no warning.
    await page.goto(`${s.url}/#/devices/quarter-1`);
    await page.waitForSelector('[data-testid=certificates]');
    assert.equal(await page.locator('[data-testid=cert-warning]').count(), 0);
    assert.deepEqual(problems, []);
    console.log(`# certificates page test: ${Date.now() - started} ms`);
  });
});
