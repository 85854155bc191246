import cliProgress from 'cli-progress';
import { type Command, Option } from 'commander';
import { pointInTime, positiveInt } from '../args.js';
import { type Session, openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { CliError, EXIT, Exit, usageError } from '../errors.js';
import { type OutputFlags, formatOf, printList, printOne, withOutput } from '../formats.js';
import { printFields, printJson, time } from '../output.js';

/** `bulwark dlq list | show | replay | purge`: the messages the ingest pipeline refused. */

interface Problem {
  readonly path: string;
  readonly expected: string;
  readonly got: string;
}
interface Letter {
  readonly id: string;
  readonly deviceId: string;
  readonly transport: string;
  readonly topic: string | null;
  readonly receivedAt: number;
  readonly reason: string;
  readonly problems: Problem[];
  readonly schemaId: string | null;
  readonly msgId: string | null;
  readonly payload: string;
  readonly replayedAt: number | null;
  readonly replayResult: string | null;
  readonly protection: string;
  readonly sealedFields: string[];
  readonly revealed: boolean;
  readonly decryptError?: string;
}
interface ReplayAnswer {
  readonly status: string;
  readonly reason?: string;
  readonly deadLetterId?: string;
}
interface ReplayOutcome extends ReplayAnswer {
  readonly id: string;
  readonly error?: string;
}
interface Filters {
  device?: string;
  reason?: string;
  schema?: string;
}

/** Why the pipeline refuses a message (the API's `reason`). */
const REASONS = ['invalid_utf8', 'malformed_json', 'malformed_cbor', 'too_deep', 'forbidden_key', 'forbidden_character', 'bad_envelope', 'unknown_schema', 'schema_violation'];
/** The API's largest page of dead letters. */
const MAX_LIST = 1000;

const problemText = (p: Problem) => `${p.path || '/'}: expected ${p.expected}, got ${p.got}`;
const replayText = (l: Letter) => (l.replayedAt === null ? null : `${time(l.replayedAt)}: ${l.replayResult ?? '?'}`);
const filterQuery = (f: Filters) => ({ device: f.device, reason: f.reason, schema: f.schema });
const letterPath = (id: string, rest = '') => `/api/v1/dead-letters/${encodeURIComponent(id)}${rest}`;

function filterOptions(c: Command): Command {
  return c.option('--device <id>', 'only letters of this device').addOption(new Option('--reason <reason>', 'only letters refused for this reason').choices(REASONS)).option('--schema <schema>', 'only letters naming this schema (name@version)');
}

function render(l: Letter): void {
  console.log(`Dead letter ${l.id}`);
  printFields([
    ['device', l.deviceId],
    ['received', `${time(l.receivedAt)} over ${l.transport}${l.topic ? ` on ${l.topic}` : ''}`],
    ['reason', l.reason],
    ['schema', l.schemaId],
    ['message', l.msgId],
    ['replayed', replayText(l)],
    ['protection', `${l.protection}${l.sealedFields.length ? ` (${l.sealedFields.join(', ')})` : ''}${l.revealed ? ', shown in clear' : ''}`],
    ['decrypt error', l.decryptError],
  ]);
  if (l.problems.length) console.log(['Problems:', ...l.problems.map((p) => `  ${problemText(p)}`)].join('\n'));
  console.log(`Payload:\n  ${l.payload}`);
}

async function replayAll(session: Session, ids: readonly string[], showBar: boolean): Promise<ReplayOutcome[]> {
  const bar = showBar ? new cliProgress.SingleBar({ stream: process.stderr, format: 'replay [{bar}] {value}/{total} | {stored} stored | {failed} refused again', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  const outcomes: ReplayOutcome[] = [];
  let stored = 0;
  bar?.start(ids.length, 0, { stored, failed: 0 });
  try {
    for (const id of ids) {
      try {
        const r = await session.call<ReplayAnswer>('POST', letterPath(id, '/replay'), { body: {} });
        outcomes.push({ id, ...r });
        if (r.status === 'stored' || r.status === 'duplicate') stored += 1;
      } catch (err) {
        if (!(err instanceof CliError) || err.code === 'BULWARK_CLI_UNREACHABLE') throw err;
        outcomes.push({ id, status: 'error', error: `${err.code}: ${err.message}` });
      }
      bar?.increment(1, { stored, failed: outcomes.length - stored });
    }
  } finally {
    bar?.stop();
  }
  return outcomes;
}

function outcomeText(o: ReplayOutcome): string {
  if (o.status === 'stored') return `${o.id}: stored`;
  if (o.status === 'duplicate') return `${o.id}: already stored (duplicate)`;
  if (o.status === 'dead_lettered') return `${o.id}: refused again (${o.reason ?? 'unknown reason'}), new dead letter ${o.deadLetterId ?? '?'}`;
  return `${o.id}: ${o.error ?? o.status}`;
}

export function addDlqCommands(program: Command, env: Env): void {
  const dlq = program.command('dlq').description('dead letters: messages the ingest pipeline refused, with the exact reason; browse, replay after a fix, purge');

  withOutput(
    filterOptions(dlq.command('list').description('dead letters, newest first'))
      .option('--pending', 'only letters never replayed')
      .option('--replayed', 'only letters already replayed')
      .option('--limit <n>', `at most this many (default 100, at most ${MAX_LIST})`, positiveInt(MAX_LIST))
      .option('--decrypt', 'show sealed parts in clear (needs telemetry:decrypt; audited)'),
  ).action(async (o: Filters & OutputFlags & { pending?: boolean; replayed?: boolean; limit?: number; decrypt?: boolean }) => {
    const format = formatOf(o);
    if (o.pending && o.replayed) throw usageError('--pending and --replayed exclude each other');
    const replayed = o.pending ? false : o.replayed ? true : undefined;
    const letters = await openSession(env).call<Letter[]>('GET', '/api/v1/dead-letters', { query: { ...filterQuery(o), replayed, limit: o.limit, decrypt: o.decrypt ? true : undefined } });
    printList(format, letters, {
      head: ['id', 'device', 'received', 'reason', 'schema', 'first problem', 'replayed'],
      row: (l) => [l.id, l.deviceId, time(l.receivedAt), l.reason, l.schemaId, l.problems[0] ? problemText(l.problems[0]) : null, replayText(l)],
      empty: 'No dead letters.',
    });
  });

  withOutput(
    dlq.command('show').description('one dead letter with its problems and payload (sealed parts masked unless --decrypt)').argument('<id>', 'dead letter id').option('--decrypt', 'show sealed parts in clear (needs telemetry:decrypt; audited)'),
  ).action(async (id: string, o: OutputFlags & { decrypt?: boolean }) => {
    const letter = await openSession(env).call<Letter>('GET', letterPath(id), { query: { decrypt: o.decrypt ? true : undefined } });
    printOne(formatOf(o), letter, render);
  });

  filterOptions(
    dlq
      .command('replay')
      .description('run dead letters through the pipeline again (after registering the missing schema, say): the ones named, or those a filter selects that were not replayed yet; a reading is never stored twice. Exit 1 when one is refused again')
      .argument('[ids...]', 'dead letter ids (or select with the filters)'),
  )
    .option('--all', 'every dead letter not replayed yet (when no filter is given)')
    .option('--again', 'with a filter: also letters replayed before')
    .option('--limit <n>', `at most this many letters selected by a filter (default and most ${MAX_LIST})`, positiveInt(MAX_LIST))
    .option('--json', "print each letter's result as a JSON array")
    .action(async (ids: string[], o: Filters & { all?: boolean; again?: boolean; limit?: number; json?: boolean }) => {
      const filtered = o.device !== undefined || o.reason !== undefined || o.schema !== undefined;
      if (ids.length > 0 && (filtered || o.all)) throw usageError('give dead letter ids or a filter (--device, --reason, --schema, --all), not both');
      if (ids.length === 0 && !filtered && !o.all) throw usageError('say which dead letters to replay: their ids, a filter (--device, --reason, --schema), or --all');
      const session = openSession(env);
      const query = { ...filterQuery(o), replayed: o.again ? undefined : false, limit: o.limit ?? MAX_LIST };
      // Oldest first, as they arrived.
      const selected = ids.length > 0 ? ids : (await session.call<Letter[]>('GET', '/api/v1/dead-letters', { query })).map((l) => l.id).reverse();
      const outcomes = await replayAll(session, selected, !o.json && process.stderr.isTTY === true);
      const refused = outcomes.filter((x) => x.status !== 'stored' && x.status !== 'duplicate');
      if (o.json) printJson(outcomes);
      else if (outcomes.length === 0) console.log('No dead letters to replay.');
      else {
        for (const x of outcomes) console.log(outcomeText(x));
        console.log(`Replayed ${outcomes.length}: ${outcomes.length - refused.length} stored, ${refused.length} not.`);
      }
      if (refused.length > 0) throw new Exit(EXIT.failure);
    });

  filterOptions(dlq.command('purge').description('delete the dead letters a filter selects (at least one filter); asks for --yes'))
    .option('--before <time>', 'only letters received before this time: ISO 8601, epoch ms, or a duration ago (7d)', (v) => pointInTime(v))
    .option('--replayed', 'only letters already replayed')
    .option('--yes', 'really delete them')
    .option('--json', 'print {"deleted": N}')
    .action(async (o: Filters & { before?: number; replayed?: boolean; yes?: boolean; json?: boolean }) => {
      if (o.device === undefined && o.reason === undefined && o.schema === undefined && o.before === undefined && !o.replayed) {
        throw usageError('say which dead letters to purge: --device, --reason, --schema, --before or --replayed');
      }
      const session = openSession(env);
      if (!o.yes) {
        const letters = (await session.call<Letter[]>('GET', '/api/v1/dead-letters', { query: { ...filterQuery(o), replayed: o.replayed ? true : undefined, limit: MAX_LIST } })).filter((l) => o.before === undefined || l.receivedAt < o.before);
        const count = letters.length >= MAX_LIST ? `at least ${letters.length}` : String(letters.length);
        throw usageError(`this deletes ${count} dead letter${letters.length === 1 ? '' : 's'} for good: run it again with --yes`);
      }
      const r = await session.call<{ deleted: number }>('DELETE', '/api/v1/dead-letters', { query: { ...filterQuery(o), before: o.before, replayed: o.replayed ? true : undefined } });
      if (o.json) return printJson(r);
      console.log(`Deleted ${r.deleted} dead letter${r.deleted === 1 ? '' : 's'}.`);
    });
}
