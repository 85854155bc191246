import type { TestContext } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { describePg, freshPgSchema } from '../../testing/pg.js';
import { describeTelemetryExport } from '../contract/telemetry-export.contract.js';
import { type Store, openStore } from '../store.js';

/** The export's store queries on a real PostgreSQL (BULWARK_TEST_PG_URL), one schema per test. */
describePg('PostgreSQL telemetry export (real server, one schema per test)', (url) => {
  async function pgStore(t: TestContext): Promise<Store> {
    const store = await openStore({ engine: 'postgres', location: url, schema: await freshPgSchema(t, url) }, new ManualClock());
    t.after(() => store.close());
    return store;
  }

  describeTelemetryExport(pgStore);
});
