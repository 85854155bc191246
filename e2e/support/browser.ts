import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { type BrowserContext, type Page, chromium } from 'playwright-core';

/** Debian's Chromium (installed by .ci/run); never a downloaded browser. */
export const CHROMIUM = '/usr/bin/chromium';
const ROOT = new URL('../..', import.meta.url).pathname;
const DASHBOARD = join(ROOT, 'packages/dashboard');
export const SCREENSHOTS = join(ROOT, 'e2e/results/dashboard');
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Builds the dashboard when it has never been built, or when its sources changed since. */
export function ensureDashboardBuilt(): void {
  const index = join(DASHBOARD, 'dist/index.html');
  const sources = Math.max(newest(join(DASHBOARD, 'src')), statSync(join(DASHBOARD, 'index.html')).mtimeMs, statSync(join(DASHBOARD, 'vite.config.ts')).mtimeMs);
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  const started = Date.now();
  execFileSync('npm', ['run', '-s', 'build:dashboard'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  console.log(`# built the dashboard in ${Date.now() - started} ms`);
}

/**
 * Chromium with a fresh profile, or a skipped test when it is missing locally. Under CI a
 * missing Chromium fails: .ci/run installs it.
 */
export async function openBrowser(t: TestContext): Promise<BrowserContext | undefined> {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: .ci/run installs the Debian chromium package`);
    t.skip(`${CHROMIUM} is missing: install it with "apt-get install -y chromium" to run the dashboard browser tests`);
    return undefined;
  }
  ensureDashboardBuilt();
  const profile = mkdtempSync(join(tmpdir(), 'bulwark-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1360, height: 900 } });
  t.after(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  mkdirSync(SCREENSHOTS, { recursive: true });
  return context;
}

/** A page that fails the test on any console error or CSP violation. */
export function watchedPage(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (err) => problems.push(String(err)));
  return problems;
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

export async function signIn(page: Page, url: string, key: string): Promise<void> {
  await page.goto(url);
  await page.fill('#api-key', key);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=who]');
}
