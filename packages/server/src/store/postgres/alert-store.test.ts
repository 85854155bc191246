import type { TestContext } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { describePg, freshPgSchema } from '../../testing/pg.js';
import { describeAlertRepository } from '../contract/alert-repository.contract.js';
import { type Store, openStore } from '../store.js';

describePg('PostgreSQL store: alerts (real server, one schema per test)', (url) => {
  async function pgStore(t: TestContext): Promise<Store> {
    const store = await openStore({ engine: 'postgres', location: url, schema: await freshPgSchema(t, url) }, new ManualClock());
    t.after(() => store.close());
    return store;
  }
  describeAlertRepository(pgStore);
});
