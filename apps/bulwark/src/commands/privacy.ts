import { Option, type Command } from 'commander';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { printFields, printJson } from '../output.js';

interface Answer {
  readonly kind: string;
  readonly value: string;
  readonly pseudonym: string;
}

/** `bulwark privacy pseudonym | resolve`: map between identifiers and the pseudonyms exports, webhooks and logs show (scope privacy:resolve; audited). */
export function addPrivacyCommands(program: Command, env: Env): void {
  const privacy = program.command('privacy').description('pseudonyms of device ids, owners and locations (privacy.pseudonymise)');

  privacy
    .command('pseudonym <value>')
    .description('the pseudonym exports, webhooks and logs show for a device id (or, with --kind, an owner or location): what to search them for')
    .addOption(new Option('--kind <kind>', 'what the value is').choices(['devices', 'owners', 'locations']).default('devices'))
    .option('--json', 'print JSON')
    .action(async (value: string, opts: { kind: string; json?: boolean }) => {
      const answer = await openSession(env).call<Answer>('POST', '/api/v1/privacy/pseudonyms', { body: { kind: opts.kind, value } });
      if (opts.json) return printJson(answer);
      console.log(answer.pseudonym);
    });

  privacy
    .command('resolve <pseudonym>')
    .description('the device id, owner or location behind a pseudonym, among the devices in the registry')
    .option('--json', 'print JSON')
    .action(async (pseudonym: string, opts: { json?: boolean }) => {
      const answer = await openSession(env).call<Answer>('POST', '/api/v1/privacy/resolve', { body: { pseudonym } });
      if (opts.json) return printJson(answer);
      printFields([
        ['pseudonym', answer.pseudonym],
        ['kind', answer.kind],
        ['value', answer.value],
      ]);
    });
}
