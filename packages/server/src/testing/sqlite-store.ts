import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Clock } from '@bulwark/core';
import { type Store, openStore } from '../store/index.js';

/** A real SQLite store in a directory of its own, closed and removed when the test ends. */
export async function sqliteStoreFor(t: TestContext, clock: Clock): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-store-'));
  const store = await openStore({ engine: 'sqlite', location: join(dir, 'bulwark.db') }, clock);
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}
