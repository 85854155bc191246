import type { Command } from 'commander';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { EXIT, Exit } from '../errors.js';
import { printJson, printTable, time } from '../output.js';

interface Check {
  id: string;
  title: string;
  status: 'pass' | 'warn' | 'fail';
  evidence: string[];
  remediation: string;
  etsi: string[];
}
interface Report {
  at: number;
  checks: Check[];
  summary: { pass: number; warn: number; fail: number };
}

/** ETSI EN 303 645 clause titles, for the Markdown report (a provision such as 5.6-4 takes its clause's). */
const ETSI: Readonly<Record<string, string>> = {
  5.3: 'Keep software updated',
  5.4: 'Securely store sensitive security parameters',
  5.5: 'Communicate securely',
  5.6: 'Minimize exposed attack surfaces',
  5.7: 'Ensure software integrity',
  5.8: 'Ensure that personal data is secure',
  '5.10': 'Examine system telemetry data',
  5.11: 'Make it easy for users to delete user data',
};
const MARK = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' } as const;

/**
 * Text for one table cell: evidence carries what devices said (a boot check's detail), so HTML is
 * escaped (the report is often rendered), and line breaks and pipes cannot end the cell or the row.
 */
export const markdownCell = (text: string): string =>
  text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\r\n|[\r\n\u2028\u2029]/g, ' ')
    .replace(/\|/g, '\\|');

export function checklistMarkdown(r: Report): string {
  const rows = r.checks.map((c) => `| ${MARK[c.status]} | ${c.title} (\`${c.id}\`) | ${c.etsi.map((e) => `${e} ${ETSI[e.split('-')[0] ?? e] ?? ''}`.trim()).join('; ')} | ${c.evidence.map(markdownCell).join('<br>')} | ${markdownCell(c.remediation)} |`);
  return [`# Security checklist, ${new Date(r.at).toISOString()}`, '', `${r.summary.pass} pass, ${r.summary.warn} warn, ${r.summary.fail} fail.`, '', '| result | check | ETSI EN 303 645 | evidence | what to do |', '|---|---|---|---|---|', ...rows, ''].join(
    '\n',
  );
}

/** `bulwark audit`: the security checklist on the live deployment, as a table, JSON or Markdown; the exit code gates a CI job. */
export function addSecurityAuditCommand(program: Command, env: Env): void {
  program
    .command('audit')
    .description(`evaluate the security checklist on the deployment with evidence (exit ${EXIT.checklistFailed} when a check fails, or warns with --strict)`)
    .option('--json', 'print the report as JSON')
    .option('--markdown', 'print the report as Markdown (a table per check, with ETSI EN 303 645 provisions)')
    .option('--strict', 'a warning fails the run too')
    .action(async (opts: { json?: boolean; markdown?: boolean; strict?: boolean }) => {
      const report = await openSession(env).call<Report>('GET', '/api/v1/security/checklist');
      if (opts.json) printJson(report);
      else if (opts.markdown) console.log(checklistMarkdown(report));
      else {
        console.log(`Security checklist at ${time(report.at)}: ${report.summary.pass} pass, ${report.summary.warn} warn, ${report.summary.fail} fail`);
        printTable(
          ['result', 'check', 'ETSI', 'evidence'],
          report.checks.map((c) => [MARK[c.status], c.id, c.etsi.join(' '), c.evidence[0] ?? '']),
          'No checks.',
        );
        for (const c of report.checks.filter((x) => x.status !== 'pass')) {
          console.log('', `${MARK[c.status]} ${c.title}`);
          for (const e of c.evidence) console.log(`  ${e}`);
          console.log(`  what to do: ${c.remediation}`);
        }
      }
      if (report.summary.fail > 0 || (opts.strict && report.summary.warn > 0)) throw new Exit(EXIT.checklistFailed);
    });
}
