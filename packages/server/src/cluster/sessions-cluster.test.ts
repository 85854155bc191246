import { after } from 'node:test';
import { describeSessionTable } from '../gateway/sessions-contract.js';
import { type RunningEngine, describeWith, startNats } from '../testing/services.js';
import { ClusterSessionTable } from './cluster-sessions.js';
import { NatsLink } from './nats.js';

/** The session table contract on the cluster table: one node, each table on a nats-server of its own. */
describeWith('ClusterSessionTable on a real nats-server', ['nats-server'], () => {
  const opened: { table: ClusterSessionTable; link: NatsLink; nats: RunningEngine }[] = [];
  after(async () => {
    for (const { table, link, nats } of opened) {
      await table.close();
      await link.close();
      await nats.stop();
    }
  });

  describeSessionTable('ClusterSessionTable', async (deps) => {
    const nats = await startNats();
    const link = await NatsLink.connect(nats.url, 'contract', deps.log);
    const table = await ClusterSessionTable.open({ ...deps, registry: { ...deps.registry, forgetClaimsAbove: async () => 0 }, link, nodeId: 'node-1' });
    await table.load();
    opened.push({ table, link, nats });
    return table;
  });
});
