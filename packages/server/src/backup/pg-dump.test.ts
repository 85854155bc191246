import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { it } from 'node:test';
import { assertDeploymentServed, embeddedDeployment } from '../testing/embedded-deployment.js';
import { startTestServer, tempDir } from '../testing/harness.js';
import { pgTestUrl, withPgConnection } from '../testing/pg.js';
import { describeWith, engineFor, startNats } from '../testing/services.js';
import { copyStore } from '../store/index.js';

/**
 * The cluster's backup as docs/guides/backup.md gives it: `pg_dump --format=custom` of the
 * database, `pg_restore` into a new one, and a cluster node started there (empty data
 * directory, same master key) serves everything, firmware images included.
 */

const tool = (name: string) => spawnSync(name, ['--version'], { stdio: 'ignore' }).status === 0;

describeWith('cluster backup: pg_dump and pg_restore', ['nats-server'], () => {
  it('restores a dumped cluster store into a new database, images and all', { timeout: 120_000, skip: tool('pg_dump') && tool('pg_restore') ? false : 'pg_dump and pg_restore are not installed (apt-get install postgresql-client)' }, async (t) => {
    const url = pgTestUrl(t);
    if (url === undefined) return;
    const suffix = `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
    const [source, restored] = [`bw_dump_src_${suffix}`, `bw_dump_dst_${suffix}`];
    const dbUrl = (name: string) => {
      const u = new URL(url);
      u.pathname = `/${name}`;
      return u.toString();
    };
    const stops: (() => Promise<void>)[] = [];
    await withPgConnection(url, async (c) => {
      await c.query(`CREATE DATABASE ${source}`);
      await c.query(`CREATE DATABASE ${restored}`);
    });
    t.after(async () => {
      for (const stop of stops) await stop();
      await withPgConnection(url, async (c) => {
        for (const db of [source, restored]) await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      });
    });

    const d = await embeddedDeployment(t, { devices: 1, readingsPerDevice: 2 });
    await copyStore({ from: d.dataDir, to: dbUrl(source), masterKey: { text: d.masterKey, origin: 'the test key' } });
    const dump = join(tempDir(t), 'bulwark.dump');
    const run = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
    };
    run('pg_dump', ['--format=custom', `--file=${dump}`, dbUrl(source)]);
    run('pg_restore', ['--no-owner', `--dbname=${dbUrl(restored)}`, dump]);

    const nats = await engineFor(t, startNats);
    const node = await startTestServer(t, {
      dataDir: tempDir(t),
      adminKey: d.adminKey,
      keepRunning: true,
      config: { ...d.config, store: dbUrl(restored), bus: nats.url, nodeId: 'node-r' },
      env: { BULWARK_MASTER_KEY: d.masterKey },
    });
    stops.push(() => node.server.stop());
    await assertDeploymentServed(node, d);
  });
});
