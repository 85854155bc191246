import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import type { ClusterNode } from '@bulwark/server';
import { positiveInt } from '../args.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { printJson, printTable, relative } from '../output.js';

interface ClusterStatus {
  readonly mode: 'embedded' | 'cluster';
  readonly self: string;
  readonly nodes: readonly ClusterNode[];
}

/** `bulwark cluster status | drain`. */
export function addClusterCommands(program: Command, env: Env): void {
  const cluster = program.command('cluster').description('the nodes of a cluster: status and draining for rolling restarts');

  cluster
    .command('status')
    .description('every node with its heartbeat, version, sessions and the singletons it leads')
    .option('--json', 'print the answer as JSON')
    .action(async (opts: { json?: boolean }) => {
      const status = await openSession(env).call<ClusterStatus>('GET', '/api/v1/cluster');
      if (opts.json) return printJson(status);
      console.log(`${status.mode === 'cluster' ? 'Cluster' : 'Embedded (one node)'}; this answer came from ${status.self}.`);
      printTable(
        ['node', 'state', 'version', 'sessions', 'leads', 'heartbeat', 'started'],
        status.nodes.map((n) => [n.id, !n.alive ? 'gone' : n.draining ? 'draining' : 'up', n.version, n.sessions, n.leads.join(', ') || '-', relative(n.heartbeatAt), relative(n.startedAt)]),
        'No nodes.',
      );
    });

  cluster
    .command('drain <node>')
    .description('take a node out of the load balancer, then move its devices to the other nodes one by one; stop it once it holds no session')
    .option('--spread <seconds>', 'end the sessions over this many seconds (default 30)', positiveInt(3600))
    .option('--no-wait', 'return at once instead of following the drain to its end')
    .option('--json', 'print the final state of the node as JSON (and no progress bar)')
    .action(async (node: string, opts: { spread?: number; wait: boolean; json?: boolean }) => {
      const session = openSession(env);
      await session.call('POST', `/api/v1/cluster/nodes/${encodeURIComponent(node)}/drain`, { body: { spreadS: opts.spread ?? 30 } });
      const read = async () => (await session.call<ClusterStatus>('GET', '/api/v1/cluster')).nodes.find((n) => n.id === node);
      const start = await read();
      if (!opts.wait) {
        if (opts.json) return printJson(start);
        console.log(`${node} is draining: ${start?.sessions ?? 0} sessions to move.`);
        return;
      }
      const total = Math.max(1, start?.sessions ?? 0);
      const bar = opts.json ? undefined : new cliProgress.SingleBar({ format: `draining ${node} |{bar}| {value}/{total} sessions moved`, hideCursor: true }, cliProgress.Presets.shades_classic);
      bar?.start(total, 0);
      let now = start;
      // The node's heartbeat carries its session count; a gone node holds none.
      while (now && now.alive && now.sessions > 0) {
        await new Promise((r) => setTimeout(r, 1_000));
        now = await read();
        bar?.update(Math.min(total, total - (now?.sessions ?? 0)));
      }
      bar?.update(total);
      bar?.stop();
      if (opts.json) return printJson(now);
      console.log(`${node} holds no device session: stop it now (its /readyz stays 503 until it restarts).`);
    });
}
