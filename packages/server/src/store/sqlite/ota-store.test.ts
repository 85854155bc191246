import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { describe } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { describeFirmwareRepository, describeRolloutRepository } from '../contract/ota-repository.contract.js';
import { type Store, openStore } from '../store.js';

async function sqliteStore(t: TestContext): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-sqlite-ota-'));
  const store = await openStore({ engine: 'sqlite', location: join(dir, 'bulwark.db') }, new ManualClock());
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

describe('SQLite store: firmware and rollouts (real file)', () => {
  describeFirmwareRepository(sqliteStore);
  describeRolloutRepository(sqliteStore);
});
