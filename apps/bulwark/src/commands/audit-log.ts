import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { positiveInt } from '../args.js';
import { type Session, openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { CliError, EXIT, Exit } from '../errors.js';
import { printFields, printJson, printTable, time } from '../output.js';

export interface AuditEntry {
  readonly seq: number;
  readonly ts: number;
  readonly actor: string;
  readonly action: string;
  readonly target: string | null;
  readonly result: 'ok' | 'denied' | 'error';
  readonly requestId: string | null;
  readonly source: string | null;
  readonly details: Record<string, unknown> | null;
  readonly prevHash: string;
  readonly hash: string;
}

interface VerifyReport {
  readonly ok: boolean;
  readonly entriesChecked: number;
  readonly headSeq: number;
  readonly firstBadSeq: number | null;
  readonly problem: string | null;
  readonly message: string;
  readonly checkpoints?: { readonly checked: number; readonly ok: boolean; readonly pinnedSeq: number; readonly problems: readonly { seq: number | null; problem: string; message: string }[] };
}

/** Checkpoints sent per verification: the newest of the file (each pins every entry up to its own). */
const CHECKPOINTS_SENT = 1000;

/** The last checkpoints of a checkpoint file (JSON lines; a line that is not JSON goes as it is, and is reported malformed). */
function readCheckpoints(file: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError('BULWARK_CLI_FILE', `cannot read the checkpoint file ${file}: ${(err as Error).message}`);
  }
  const lines = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-CHECKPOINTS_SENT);
  if (lines.length === 0) throw new CliError('BULWARK_CLI_FILE', `${file} holds no checkpoints`);
  return lines.map((line) => {
    try {
      return JSON.parse(line) as unknown;
    } catch {
      return line;
    }
  });
}

/** `bulwark audit-log list | verify`. */
export function addAuditCommands(program: Command, env: Env): void {
  const audit = program.command('audit-log').description('the append-only, hash-chained audit log');

  audit
    .command('list')
    .description('audit entries, newest first')
    .option('--actor <id>', 'only entries by this principal id (or anonymous, system)')
    .option('--action <action>', 'only this action, e.g. user.create, auth.token')
    .addOption(new Option('--result <result>', 'only this outcome').choices(['ok', 'denied', 'error']))
    .option('--limit <n>', 'at most this many entries (default 100)', positiveInt(1000))
    .option('--json', 'print a JSON array')
    .action(async (opts: { actor?: string; action?: string; result?: string; limit?: number; json?: boolean }) => {
      const entries = await openSession(env).call<AuditEntry[]>('GET', '/api/v1/audit', {
        query: { actor: opts.actor, action: opts.action, result: opts.result, limit: opts.limit },
      });
      if (opts.json) return printJson(entries);
      printTable(
        ['seq', 'time', 'actor', 'action', 'target', 'result', 'detail'],
        entries.map((e) => [e.seq, time(e.ts), e.actor, e.action, e.target, e.result, detail(e)]),
        'No audit entries match.',
      );
    });

  audit
    .command('verify')
    .description(`walk the hash chain; exit ${EXIT.ok} when it verifies, ${EXIT.auditBroken} at the first edited, removed or truncated entry`)
    .option('--checkpoint <file>', `also check the chain against the signed checkpoints in this file (audit.checkpointFile; its last ${CHECKPOINTS_SENT}): catches a chain rewritten whole`)
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean; checkpoint?: string }) => {
      const session = openSession(env);
      const body = opts.checkpoint === undefined ? undefined : { checkpoints: readCheckpoints(opts.checkpoint) };
      const report = await session.call<VerifyReport>('POST', '/api/v1/audit/verify', body === undefined ? {} : { body });
      const bad = report.ok || report.firstBadSeq === null ? undefined : await entryAt(session, report.firstBadSeq);
      if (opts.json) printJson(bad === undefined ? report : { ...report, firstBadEntry: bad });
      else if (report.ok) console.log(`Audit log verified: ${report.message} (head seq ${report.headSeq}).`);
      else {
        console.log(`AUDIT LOG BROKEN at entry ${report.firstBadSeq ?? '?'}: ${report.problem ?? 'unknown problem'}`);
        console.log(`  ${report.message}`);
        console.log(`  ${report.entriesChecked} entries verified before it; head seq ${report.headSeq}.`);
        for (const p of report.checkpoints?.problems ?? []) console.log(`  checkpoint ${p.seq ?? '?'}: ${p.problem}: ${p.message}`);
        if (bad !== undefined) {
          console.log('First bad entry as stored now:');
          printFields([
            ['seq', bad.seq],
            ['time', time(bad.ts)],
            ['actor', bad.actor],
            ['action', bad.action],
            ['target', bad.target],
            ['result', bad.result],
            ['hash', bad.hash],
            ['prev hash', bad.prevHash],
          ]);
        } else if (report.firstBadSeq !== null) {
          console.log(`  Entry ${report.firstBadSeq} is no longer in the log.`);
        }
      }
      if (!report.ok) throw new Exit(EXIT.auditBroken);
    });
}

function detail(e: AuditEntry): string {
  const d = e.details ?? {};
  const parts = [typeof d.code === 'string' ? d.code : undefined, typeof d.status === 'number' && e.result !== 'ok' ? `HTTP ${d.status}` : undefined];
  return parts.filter((p) => p !== undefined).join(' ');
}

/** The entry with this seq, if it still exists (best effort: the report matters more). */
async function entryAt(session: Session, seq: number): Promise<AuditEntry | undefined> {
  try {
    const [entry] = await session.call<AuditEntry[]>('GET', '/api/v1/audit', { query: { before: seq + 1, limit: 1 } });
    return entry?.seq === seq ? entry : undefined;
  } catch {
    return undefined;
  }
}
