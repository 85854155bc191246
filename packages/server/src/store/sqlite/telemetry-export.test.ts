import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { describeTelemetryExport } from '../contract/telemetry-export.contract.js';
import { type Store, openStore } from '../store.js';

/** The export's store queries on a real SQLite file. */
async function sqliteStore(t: TestContext): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-export-'));
  const store = await openStore({ engine: 'sqlite', location: join(dir, 'bulwark.db') }, new ManualClock());
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

describeTelemetryExport(sqliteStore);
