import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { send } from '../packages/server/src/testing/device-messages.js';
import { connectDevice, enrollDevice } from '../packages/server/src/testing/devices.js';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { openBrowser, shot, signIn, watchedPage } from './support/browser.js';

/**
 * A device's posture on its dashboard page, in Debian's Chromium against the real server: the
 * findings (an open debug port first), what the device reported part by part, and the
 * security page's device-posture check failing.
 */
describe('device posture in the dashboard', () => {
  it('shows the findings and the reported posture on the device page, and the failing check on the security page', { timeout: 30_000 }, async (t) => {
    const context = await openBrowser(t);
    if (!context) return;
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const client = await connectDevice(s, await enrollDevice(s, admin, 'gw-posture'));
    t.after(() => client.end(true));
    await send(client, 'devices/gw-posture/health', {
      ts: Date.now(),
      boot: 'b1',
      uptimeS: 60,
      posture: {
        listening: [
          { proto: 'tcp', port: 23, address: '0.0.0.0' },
          { proto: 'tcp', port: 8443, address: '0.0.0.0' },
        ],
        listeningTotal: 2,
        debugPorts: [{ proto: 'tcp', port: 23, address: '0.0.0.0', service: 'telnet' }],
        ssh: { enabled: true, passwordAuth: false, rootLogin: 'no' },
        serialConsole: { enabled: true, consoles: ['ttyS0'] },
        boot: { slot: 'b', verified: true },
      },
    });

    const page = await context.newPage();
    const problems = watchedPage(page);
    await signIn(page, s.url, s.adminKey);
    await page.goto(`${s.url}/#/devices/gw-posture`);
    await page.waitForSelector('[data-testid=posture-findings]');
    const findings = await page.locator('[data-testid=posture-findings] li').allInnerTexts();
    assert.deepEqual(
      findings.map((f) => f.replace(/\s+/g, ' ').trim()),
      ['fail telnet listening on tcp 0.0.0.0:23', 'warn serial console on ttyS0'],
    );
    const table = await page.locator('[data-testid=posture] table').innerText();
    assert.match(table, /Debug ports open\s+1/);
    assert.match(table, /SSH\s+listening; password login off; root login no/);
    assert.match(table, /Boot image\s+slot b: verified against its signed manifest/);
    await shot(page, '21-device-posture');

    await page.click('header a:has-text("Security")');
    await page.waitForSelector('[data-testid=check-device-posture]');
    const cells = await page.locator('[data-testid=check-device-posture] td').allInnerTexts();
    assert.equal(cells[0], 'fail');
    assert.match(cells[3] ?? '', /gw-posture: FAIL telnet listening on tcp 0\.0\.0\.0:23; warn serial console on ttyS0/);
    assert.deepEqual(problems, []);
  });
});
