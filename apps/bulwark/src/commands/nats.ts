import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { positiveInt } from '../args.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { printJson, printTable } from '../output.js';

interface SchemaGrant {
  readonly name: string;
  readonly version?: number;
}
interface Application {
  readonly id: string;
  readonly name: string;
  readonly schemas: SchemaGrant[];
  readonly createdAt: number;
}
interface Issued {
  readonly creds: string;
  readonly inboxPrefix: string;
  readonly stream: string;
  readonly credential: { readonly id: string; readonly userKey: string; readonly expiresAt: number };
  readonly consumers: { readonly name: string; readonly filter: string }[];
}

/** `env-sensor` or `env-sensor@2`. */
function schemaGrant(text: string, previous: SchemaGrant[] = []): SchemaGrant[] {
  const [name = '', version] = text.split('@');
  return [...previous, version === undefined ? { name } : { name, version: Number(version) }];
}

/** `bulwark nats init | node-creds` (operator mode, offline) and `bulwark apps …` (applications reading the telemetry stream, through the API). */
export function addNatsCommands(program: Command, env: Env): void {
  const nats = program.command('nats').description("NATS in operator mode: Bulwark's operator, accounts and node credentials (docs/guides/cluster.md)");

  nats
    .command('init')
    .description('make a new operator, system account and Bulwark account; writes operator.nk, nats-issuer.json and bulwark-node.creds (mode 0600) and nats-auth.conf for every NATS server')
    .requiredOption('--out <dir>', 'directory to write to (created with mode 0700; existing files are never overwritten)')
    .option('--json', 'print what was written as JSON')
    .action(async (opts: { out: string; json?: boolean }) => {
      // The server package loads on demand: every other command starts without it.
      const { writeOperatorSetup } = await import('@bulwark/server');
      const written = await writeOperatorSetup(resolve(opts.out));
      if (opts.json) return printJson(written);
      console.log(`Operator ${written.operatorPublicKey}, Bulwark account ${written.accountPublicKey}, system account ${written.systemAccountPublicKey}.`);
      console.log(`- ${written.files.serverConfig}: copy beside every NATS server's config and add \`include nats-auth.conf\`.`);
      console.log(`- ${written.files.nodeCreds} and ${written.files.issuer}: give every Bulwark node (cluster.natsCredsFile, cluster.natsIssuerFile), mode 0600.`);
      console.log(`- ${written.files.operatorSeed}: the operator's own key; keep it offline, no node needs it.`);
    });

  nats
    .command('node-creds')
    .description('a new credential for Bulwark nodes (full rights on the Bulwark account), from nats-issuer.json')
    .requiredOption('--issuer <file>', 'nats-issuer.json')
    .requiredOption('--out <file>', 'where to write the .creds file (mode 0600, never overwritten)')
    .action(async (opts: { issuer: string; out: string }) =>
      (await import('@bulwark/server')).NatsIssuer.fromFile(opts.issuer, '--issuer')
        .nodeCreds('bulwark-node')
        .then((creds) => {
          writeFileSync(opts.out, creds, { mode: 0o600, flag: 'wx' });
          console.log(`Wrote ${opts.out}.`);
        }),
    );

  const apps = program.command('apps').description('applications that read the telemetry stream over NATS, limited to schemas (docs/reference/stream.md)');

  apps
    .command('list')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const list = await openSession(env).call<Application[]>('GET', '/api/v1/applications');
      if (opts.json) return printJson(list);
      printTable(
        ['id', 'name', 'schemas'],
        list.map((a) => [a.id, a.name, a.schemas.map((s) => `${s.name}@${s.version ?? '*'}`).join(', ')]),
        'No applications.',
      );
    });

  apps
    .command('create <name>')
    .description('an application (a service account that can read only the given schemas from the stream)')
    .requiredOption('--schema <name[@version]>', 'a schema it may read (repeat for more)', schemaGrant)
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { schema: SchemaGrant[]; json?: boolean }) => {
      const app = await openSession(env).call<Application>('POST', '/api/v1/applications', { body: { name, schemas: opts.schema } });
      if (opts.json) return printJson(app);
      console.log(`Application ${app.id} (${app.name}) may read ${app.schemas.map((s) => `${s.name}@${s.version ?? '*'}`).join(', ')}.`);
    });

  apps
    .command('credentials <id>')
    .description('issue a NATS .creds file for the application (shown once; expires)')
    .requiredOption('--out <file>', 'where to write the .creds file (mode 0600, never overwritten)')
    .option('--ttl-hours <hours>', 'lifetime (default 24, at most 720)', positiveInt(720))
    .option('--json', 'print the consumers and inbox prefix as JSON')
    .action(async (id: string, opts: { out: string; ttlHours?: number; json?: boolean }) => {
      const issued = await openSession(env).call<Issued>('POST', `/api/v1/applications/${encodeURIComponent(id)}/nats-credentials`, { body: opts.ttlHours ? { ttlHours: opts.ttlHours } : {} });
      writeFileSync(opts.out, issued.creds, { mode: 0o600, flag: 'wx' });
      const { creds: _secret, ...rest } = issued;
      if (opts.json) return printJson(rest);
      console.log(`Wrote ${opts.out} (user ${issued.credential.userKey}, expires ${new Date(issued.credential.expiresAt).toISOString()}).`);
      console.log(`Connect with inboxPrefix ${issued.inboxPrefix}; consumers on ${issued.stream}:`);
      printTable(
        ['consumer', 'filter'],
        issued.consumers.map((c) => [c.name, c.filter]),
        'none',
      );
    });

  apps
    .command('revoke <id>')
    .description('revoke every live NATS credential of the application (NATS closes its connections)')
    .action(async (id: string) => {
      const { revoked } = await openSession(env).call<{ revoked: unknown[] }>('POST', `/api/v1/applications/${encodeURIComponent(id)}/nats-credentials/revoke`);
      console.log(`${revoked.length} credential(s) revoked.`);
    });
}
