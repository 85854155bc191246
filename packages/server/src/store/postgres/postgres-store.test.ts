import assert from 'node:assert/strict';
import { type TestContext, describe, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { freshPgSchema, describePg, withPgConnection } from '../../testing/pg.js';
import { describeApiKeyRepository } from '../contract/api-key-repository.contract.js';
import { appendEvent, auditEvent, describeAuditRepository, verifyRepository } from '../contract/audit-repository.contract.js';
import { T0, describePrincipalRepository } from '../contract/principal-repository.contract.js';
import { describeSecretRepository } from '../contract/secret-repository.contract.js';
import { describeFleetCounts } from '../contract/fleet-counts.contract.js';
import { describeGroupRepository } from '../contract/group-repository.contract.js';
import { describeJobRepository } from '../contract/job-repository.contract.js';
import { describeTelemetryRepository } from '../contract/telemetry-repository.contract.js';
import { describeCommandRepository, describeDeviceConnectivity, describeHealthRepositories, describeTwinRepository } from '../contract/device-state.contract.js';
import { describeSqlClient, settleAll } from '../contract/sql-client.contract.js';
import { migrate } from '../migrate.js';
import { MIGRATIONS } from '../migrations.js';
import { type Store, openStore, storeOn } from '../store.js';
import { PostgresClient } from './postgres-client.js';

describePg('PostgreSQL store (real server, one schema per test)', (url) => {
  /** A client on a fresh schema; closed when the test ends. */
  async function pgClient(t: TestContext, schema?: string): Promise<PostgresClient> {
    const db = new PostgresClient({ url, schema: schema ?? (await freshPgSchema(t, url)) });
    t.after(() => db.close());
    return db;
  }

  async function pgStore(t: TestContext): Promise<Store> {
    const store = await openStore({ engine: 'postgres', location: url, schema: await freshPgSchema(t, url) }, new ManualClock());
    t.after(() => store.close());
    return store;
  }

  describeSqlClient((t) => pgClient(t));
  describePrincipalRepository(pgStore);
  describeApiKeyRepository(pgStore);
  describeAuditRepository(pgStore);
  describeSecretRepository(pgStore);
  describeTelemetryRepository(pgStore);
  describeTwinRepository(pgStore);
  describeFleetCounts(pgStore);
  describeGroupRepository(pgStore);
  describeJobRepository(pgStore);
  describeDeviceConnectivity(pgStore);
  describeCommandRepository(pgStore);
  describeHealthRepositories(pgStore);

  describe('several nodes on one database', () => {
    it('two stores (two pools) appending at once form one unbroken chain', async (t) => {
      const schema = await freshPgSchema(t, url);
      const [a, b] = [await pgClient(t, schema), await pgClient(t, schema)];
      await migrate(a, new ManualClock());
      const nodeA = storeOn(a, 'node-a');
      const nodeB = storeOn(b, 'node-b');
      const written = await settleAll(Array.from({ length: 60 }, (_, i) => appendEvent((i % 2 === 0 ? nodeA : nodeB).audit, T0 + i, auditEvent({ actor: i % 2 === 0 ? 'node-a' : 'node-b', target: `t${i}` }))));
      assert.deepEqual(
        written.map((e) => e.seq).sort((x, y) => x - y),
        Array.from({ length: 60 }, (_, i) => i + 1),
      );
      for (const node of [nodeA, nodeB]) {
        const report = await verifyRepository(node.audit);
        assert.equal(report.ok, true, report.message);
        assert.equal(report.entriesChecked, 60);
      }
      const actors = new Set((await nodeB.audit.scan(0, 100)).map((e) => e.actor));
      assert.deepEqual([...actors].sort(), ['node-a', 'node-b']);
    });

    it('migrations racing on a fresh schema all succeed and apply each migration once', async (t) => {
      // Nodes of a cluster start together. Connections are opened first so that the racers
      // start in step; three rounds of four make a collision all but certain when one can happen.
      for (let round = 0; round < 3; round += 1) {
        const schema = await freshPgSchema(t, url);
        const nodes = await Promise.all([1, 2, 3, 4].map(() => pgClient(t, schema)));
        await Promise.all(nodes.map((db) => db.ping()));
        const applied = await settleAll(nodes.map((db) => migrate(db, new ManualClock())));
        assert.deepEqual(
          applied.flat().sort((x, y) => x - y),
          MIGRATIONS.map((m) => m.id),
          `round ${round}`,
        );
        const recorded = await nodes[0]?.all<{ id: number }>('SELECT id FROM schema_migrations ORDER BY id');
        assert.deepEqual(
          recorded?.map((r) => r.id),
          MIGRATIONS.map((m) => m.id),
        );
        assert.deepEqual(await nodes[1]?.all('SELECT seq FROM audit_head'), [{ seq: 0 }]);
      }
    });

    it('keeps each schema to itself', async (t) => {
      const [one, two] = [await pgStore(t), await pgStore(t)];
      await appendEvent(one.audit, T0);
      assert.equal((await one.audit.head()).seq, 1);
      assert.equal((await two.audit.head()).seq, 0);
    });
  });

  describe('failures', () => {
    it('reports a server it cannot reach as an unavailable store', async () => {
      const unreachable = url.replace(/@[^/]+/, '@127.0.0.1:1');
      await assert.rejects(openStore({ engine: 'postgres', location: unreachable }, new ManualClock()), (err: Error & { code?: string }) => err.code === 'BULWARK_ERR_STORE_UNAVAILABLE');
    });

    it('drops the test schema when the test ends', async (t) => {
      let schema = '';
      await t.test('inner', async (inner) => {
        schema = await freshPgSchema(inner, url);
      });
      const found = await withPgConnection(url, (c) => c.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [schema]));
      assert.equal(found.rowCount, 0);
    });
  });
});
