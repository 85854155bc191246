import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { openBrowser, shot, signIn, watchedPage } from './support/browser.js';

/**
 * The dashboard's jobs page in Debian's Chromium against the real server on port 0: a suspend
 * job started from the form runs to the end over a static group (one member was suspended
 * already and fails), and a slow command job over offline devices is paused, resumed and
 * cancelled with the page's buttons.
 */

const LIMITS = { rateLimit: { perPrincipalPerMinute: 100_000, perAddressPerMinute: 100_000 } };
const DEVICES = ['lab-1', 'lab-2', 'lab-3'];

const text = (page: Page, testId: string) => page.locator(`[data-testid="${testId}"]`).first().innerText();
const stateIs = (page: Page, state: string) => page.waitForSelector(`[data-testid=job-state]:text-is("${state}")`);

describe('dashboard jobs in a browser', () => {
  it('starts a suspend job from the form and sees it complete with its counts, reasons and failed device; pauses, resumes and cancels a slow command job', { timeout: 60_000 }, async (t) => {
    const context = await openBrowser(t);
    if (!context) return;
    const s = await startTestServer(t, { config: LIMITS });
    const admin = await s.tokenFor(s.adminKey);
    for (const id of DEVICES) assert.equal((await s.api('POST', '/api/v1/devices', { token: admin, body: { id } })).status, 201);
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'lab', kind: 'static', members: DEVICES } })).status, 201);
    // Suspended already: the job's suspend fails on it, with the lifecycle error as its reason.
    assert.equal((await s.api('POST', '/api/v1/devices/lab-3/suspend', { token: admin })).status, 200);

    const page = await context.newPage();
    const problems = watchedPage(page);
    await signIn(page, s.url, s.adminKey);
    await page.click('header a:has-text("Jobs")');
    await page.waitForSelector('.empty:has-text("No jobs yet")');

    // The form: a mistake in the JSON is caught before sending; the API's refusal is shown with its code.
    await page.click('[data-testid=new-job]');
    await page.fill('[data-testid=job-group-input]', 'lab');
    await page.fill('[data-testid=job-name-input]', 'quiet the lab');
    await page.fill('[data-testid=job-patch-input]', '{"mode": eco}');
    await page.click('[data-testid=job-create]');
    await page.waitForSelector('[data-testid=job-form] [role=alert]:has-text("The twin patch is not valid JSON")');
    await page.fill('[data-testid=job-group-input]', 'no-such-group');
    await page.selectOption('[data-testid=job-operation-input]', 'suspend');
    await page.fill('[data-testid=job-rate-input]', '20');
    await page.click('[data-testid=job-create]');
    await page.waitForSelector('[data-testid=job-form] [role=alert][data-code=BULWARK_ERR_NOT_FOUND]:has-text("no group no-such-group")');
    await shot(page, '30-job-form');
    // Decommission asks once more, with the group's size; Back leaves everything as it was.
    await page.fill('[data-testid=job-group-input]', 'lab');
    await page.selectOption('[data-testid=job-operation-input]', 'decommission');
    await page.click('[data-testid=job-create]');
    await page.waitForSelector('[data-testid=job-decommission-confirm]:has-text("Decommission all 3 devices of group lab?")');
    await page.click('[data-testid=job-decommission-confirm] button:has-text("Back")');
    await page.selectOption('[data-testid=job-operation-input]', 'suspend');

    // Started: the page goes to the job, which completes: two suspended, one failed.
    await page.click('[data-testid=job-create]');
    await page.waitForURL(/#\/jobs\/job/);
    await stateIs(page, 'completed');
    assert.equal(await page.locator('[data-testid=job-actions]').count(), 0, 'a completed job offers no action');
    assert.deepEqual(await Promise.all(['succeeded', 'failed', 'timed_out', 'cancelled', 'queued', 'in_progress'].map((c) => text(page, `job-count-${c}`))), ['2', '1', '0', '0', '0', '0']);
    assert.match(await text(page, 'job-progress'), /3\/3 finished \(100%\)[\s\S]*1 failed/);
    assert.match(await text(page, 'job-operation'), /^Suspends each device/);
    assert.match(await text(page, 'job-pacing'), /at most 20 devices a second/);
    assert.equal(await page.getAttribute('[data-testid=job-group]', 'href'), '#/devices?group=lab');
    assert.equal(await text(page, 'job-reason-shown'), 'Reason: 2 succeeded, 1 failed');
    assert.deepEqual(await page.locator('[data-testid=job-reasons] tbody td').allInnerTexts(), ['failed', 'lifecycle', '1']);
    const failed = await page.locator('[data-testid=job-devices] tbody tr').allInnerTexts();
    assert.equal(failed.length, 1);
    assert.match(failed[0] ?? '', /lab-3\s+failed\s+1\s+lifecycle\s+cannot suspend device lab-3: it is suspended/);
    assert.equal(await page.getAttribute('[data-testid=job-devices] a', 'href'), '#/devices/lab-3');
    assert.deepEqual(await page.locator('[data-testid=job-history] tbody td:nth-child(2)').allInnerTexts(), ['running', 'completed']);
    const devices = (await s.api('GET', '/api/v1/devices?group=lab', { token: admin })).body as { id: string; state: string }[];
    assert.deepEqual(
      devices.map((d) => d.state),
      ['suspended', 'suspended', 'suspended'],
    );
    await shot(page, '31-job-completed');

    // A slow command job over offline devices (one a second, a long timeout), made through the API.
    const created = await s.api('POST', '/api/v1/jobs', {
      token: admin,
      body: { name: 'ping the lab', group: 'lab', operation: { type: 'command', name: 'diag.ping', params: { n: 1 } }, pacing: { ratePerSecond: 1, maxConcurrent: 1 }, deviceTimeoutMs: 600_000 },
    });
    assert.equal(created.status, 201, created.text);
    const jobId = created.body.id as string;

    // The list: newest first, each with its state and the shares of its progress bar.
    await page.click('a:has-text("← jobs")');
    await page.waitForSelector(`[data-testid="job-${jobId}"]`);
    const rows = await page.locator('[data-testid=jobs-table] tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-testid')));
    assert.equal(rows[0], `job-${jobId}`);
    assert.equal(rows.length, 2);
    const done = page.locator(`[data-testid="${rows[1]}"]`);
    assert.equal(await done.locator('rect.succeeded').getAttribute('data-count'), '2');
    assert.equal(await done.locator('rect.failed').getAttribute('data-count'), '1');
    assert.match(await done.innerText(), /suspend[\s\S]*lab[\s\S]*completed/);
    await shot(page, '32-jobs');

    // Running: Pause and Cancel, no Resume. Paused: Resume and Cancel. Then cancelled for good.
    await page.click(`[data-testid="job-${jobId}"] a:has-text("ping the lab")`);
    await stateIs(page, 'running');
    assert.match(await text(page, 'job-operation'), /Sends command diag\.ping with \{"n":1\}/);
    assert.deepEqual(await page.locator('[data-testid=job-actions] > button').allInnerTexts(), ['Pause', 'Cancel']);
    await page.click('[data-testid=job-pause]');
    await page.fill('[data-testid=job-reason]', 'lunch break');
    await page.click('[data-testid=job-pause-confirm]');
    await stateIs(page, 'paused');
    assert.equal(await text(page, 'job-reason-shown'), 'Reason: lunch break');
    assert.deepEqual(await page.locator('[data-testid=job-actions] > button').allInnerTexts(), ['Resume', 'Cancel']);
    await page.click('[data-testid=job-resume]');
    await page.click('[data-testid=job-resume-confirm]');
    await stateIs(page, 'running');
    await page.click('[data-testid=job-cancel]');
    await page.click('[data-testid=job-cancel-confirm]');
    await stateIs(page, 'cancelled');
    assert.equal(await page.locator('[data-testid=job-actions]').count(), 0, 'a cancelled job offers no action');
    assert.equal((await s.api('GET', '/api/v1/jobs', { token: admin })).body.length, 2, 'the decommission was never sent');
    const job = (await s.api('GET', `/api/v1/jobs/${jobId}`, { token: admin })).body as { state: string; counts: { cancelled: number; in_progress: number }; history: { state: string; actor: string }[] };
    assert.equal(job.state, 'cancelled');
    assert.deepEqual(
      job.history.map((h) => h.state),
      ['running', 'paused', 'running', 'cancelled'],
    );
    // Offline devices never answer: what was dispatched waits for its timeout, the rest is cancelled.
    assert.equal(job.counts.cancelled + job.counts.in_progress, 3, JSON.stringify(job.counts));
    assert.ok(job.counts.cancelled >= 2, `one device at once at most: ${JSON.stringify(job.counts)}`);
    await page.waitForFunction((n) => document.querySelector('[data-testid=job-count-cancelled]')?.textContent === String(n), job.counts.cancelled);
    assert.match(await page.locator('[data-testid=job-reasons]').innerText(), /cancelled\s+job_cancelled/);
    await shot(page, '33-job-cancelled');
    assert.deepEqual(problems, []);
  });
});
