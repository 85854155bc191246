import { type Command, InvalidArgumentError, Option } from 'commander';
import { commaList, jsonObject, positiveInt } from '../args.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { usageError } from '../errors.js';
import { printFields, printJson, printTable, time } from '../output.js';

interface Rule {
  readonly id: string;
  readonly name: string;
  readonly severity: string;
  readonly enabled: boolean;
  readonly builtIn: boolean;
  readonly scope: { deviceIds: string[]; tags: string[]; models: string[]; groups?: string[]; schemas: string[] };
  readonly condition: Record<string, unknown>;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}
interface Alert {
  readonly id: string;
  readonly ruleId: string;
  readonly deviceId: string;
  readonly type: string;
  readonly severity: string;
  readonly state: string;
  readonly summary: string;
  readonly firedAt: number;
  readonly acknowledgedAt: number | null;
  readonly acknowledgedBy: string | null;
  readonly resolvedAt: number | null;
  readonly silenced: boolean;
  readonly incidentId: string | null;
  readonly runbook: string;
  readonly details: Record<string, unknown>;
}
interface Incident {
  readonly id: string;
  readonly ruleId: string;
  readonly openedAt: number;
  readonly closedAt: number | null;
  readonly alerts: number;
}
interface Silence {
  readonly id: string;
  readonly ruleId: string | null;
  readonly deviceId: string | null;
  readonly reason: string;
  readonly createdBy: string;
  readonly expiresAt: number;
}
interface Channel {
  readonly id: string;
  readonly name: string;
  readonly url: string;
  readonly minSeverity: string;
  readonly batch?: boolean;
  readonly createdAt: number;
  readonly secret?: string;
}

const KINDS = ['threshold', 'rate', 'absence', 'anomaly', 'offline', 'flapping', 'restart_loop', 'dead_letters', 'clock_skew', 'firmware_security', 'queue_dropping', 'rollout_stopped', 'twin_drift', 'cert_expiry', 'cohort', 'link_quality'];
const SEVERITIES = ['info', 'warning', 'critical'];

/** `80`, `-3.5` → numbers, for --value and --max-per-minute. */
function number(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('must be a number');
  return n;
}

const conditionText = (c: Record<string, unknown>) => {
  switch (c.kind) {
    case 'threshold':
      return `${String(c.field)} ${String(c.op)} ${String(c.value)}${c.for && c.for !== '0ms' ? ` for ${String(c.for)}` : ''}${c.hysteresis ? ` (±${String(c.hysteresis)})` : ''}`;
    case 'rate':
      return `${String(c.field)} changes > ${String(c.maxPerMinute)}/min`;
    case 'absence':
      return `no ${c.field ? `${String(c.field)} ` : ''}reading for ${String(c.for)}`;
    case 'anomaly':
      return `${String(c.field)} anomalies (warm-up ${String(c.warmup)})`;
    case 'offline':
      return `offline for ${String(c.for)}`;
    case 'flapping':
      return `more than ${String(c.connects)} connections within ${String(c.within)}`;
    case 'dead_letters':
      return `more than ${String(c.perMinute)} dead letters a minute`;
    case 'clock_skew':
      return `device clock off by more than ${String(c.max)}`;
    case 'restart_loop':
      return 'the device reports a restart loop';
    case 'firmware_security':
      return 'firmware below the minimum security version';
    case 'queue_dropping':
      return 'the agent drops readings';
    case 'rollout_stopped':
      return 'a rollout paused or aborted itself';
    case 'twin_drift':
      return `configuration out of sync for ${String(c.for)}`;
    case 'cert_expiry':
      return `certificate ends within ${String(c.within)}`;
    case 'link_quality':
      return `more than ${String(c.lost)} readings lost or ${String(c.duplicates)} repeated within ${String(c.within)}`;
    case 'cohort':
      return `${String(c.field)} over ${String(c.window)} ${String(c.sigma)}σ from its ${String(c.by)} peers (${String(c.minPeers)} or more)`;
    default:
      return JSON.stringify(c);
  }
};
const scopeText = (s: Rule['scope']) =>
  [
    s.deviceIds.length ? `devices ${s.deviceIds.join(',')}` : '',
    s.tags.length ? `tags ${s.tags.join(',')}` : '',
    s.models.length ? `models ${s.models.join(',')}` : '',
    s.groups?.length ? `groups ${s.groups.join(',')}` : '',
    s.schemas.length ? `schemas ${s.schemas.join(',')}` : '',
  ]
    .filter(Boolean)
    .join('; ') || 'every device';

interface RuleFlags {
  file?: string;
  name?: string;
  severity?: string;
  kind?: string;
  field?: string;
  op?: string;
  value?: number;
  for?: string;
  hysteresis?: number;
  maxPerMinute?: number;
  warmup?: number;
  within?: string;
  by?: string;
  window?: string;
  sigma?: number;
  minPeers?: number;
  devices?: string[];
  tags?: string[];
  models?: string[];
  groups?: string[];
  schemas?: string[];
  disabled?: boolean;
  json?: boolean;
}

/** A rule from --file (a JSON object or a file holding one), with the flags given on top. */
function ruleBody(o: RuleFlags, creating: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = o.file === undefined ? {} : jsonObject(o.file, '--file');
  if (o.name !== undefined) body.name = o.name;
  if (o.severity !== undefined) body.severity = o.severity;
  if (o.disabled) body.enabled = false;
  const scope = {
    ...((body.scope as object | undefined) ?? {}),
    ...(o.devices ? { deviceIds: o.devices } : {}),
    ...(o.tags ? { tags: o.tags } : {}),
    ...(o.models ? { models: o.models } : {}),
    ...(o.groups ? { groups: o.groups } : {}),
    ...(o.schemas ? { schemas: o.schemas } : {}),
  };
  if (Object.keys(scope).length > 0) body.scope = scope;
  if (o.kind !== undefined) {
    body.condition = {
      kind: o.kind,
      ...(o.field !== undefined ? { field: o.field } : {}),
      ...(o.op !== undefined ? { op: o.op } : {}),
      ...(o.value !== undefined ? { value: o.value } : {}),
      ...(o.for !== undefined ? { for: o.for } : {}),
      ...(o.hysteresis !== undefined ? { hysteresis: o.hysteresis } : {}),
      ...(o.maxPerMinute !== undefined ? { maxPerMinute: o.maxPerMinute } : {}),
      ...(o.warmup !== undefined ? { warmup: o.warmup } : {}),
      ...(o.within !== undefined ? { within: o.within } : {}),
      ...(o.by !== undefined ? { by: o.by } : {}),
      ...(o.window !== undefined ? { window: o.window } : {}),
      ...(o.sigma !== undefined ? { sigma: o.sigma } : {}),
      ...(o.minPeers !== undefined ? { minPeers: o.minPeers } : {}),
    };
  } else if ([o.field, o.op, o.value, o.for, o.hysteresis, o.maxPerMinute, o.warmup, o.within, o.by, o.window, o.sigma, o.minPeers].some((v) => v !== undefined)) {
    throw usageError('--field, --op, --value, --for, --hysteresis, --max-per-minute, --warmup, --within, --by, --window, --sigma and --min-peers describe a condition: give --kind too');
  }
  if (creating && (body.name === undefined || body.condition === undefined)) throw usageError('a rule needs a name and a condition: --name and --kind (with its settings), or --file');
  return body;
}

function ruleOptions(cmd: Command): Command {
  return cmd
    .option('--file <file-or-json>', 'the rule as JSON (name, severity, scope, condition), inline or a file; flags override it')
    .option('--name <name>', 'a name for people')
    .addOption(new Option('--severity <level>', 'info, warning (default) or critical').choices(SEVERITIES))
    .addOption(new Option('--kind <kind>', 'the condition').choices(KINDS))
    .option('--field <field>', 'the reading field it watches (threshold, rate, anomaly; absence optionally)')
    .option('--op <op>', 'threshold: >, >=, < or <=')
    .option('--value <n>', 'threshold: the limit', number)
    .option('--for <duration>', 'threshold: how long past the limit; absence, offline: how long quiet; twin_drift: how long out of sync (30s, 5m, 2h)')
    .option('--hysteresis <n>', 'threshold: how far back past the limit it must come to resolve', number)
    .option('--max-per-minute <n>', 'rate: the largest change per minute either way', number)
    .option('--warmup <n>', 'anomaly: readings learned before it may fire', positiveInt(10_000))
    .option('--within <duration>', "cert_expiry: how far ahead a certificate's end counts (30d, up to 365d)")
    .addOption(new Option('--by <cohort>', 'cohort: peers are devices of the same model (default) or with the same tag').choices(['model', 'tag']))
    .option('--window <duration>', "cohort: the span each device's mean is taken over (10m)")
    .option('--sigma <n>', "cohort: robust σ from the cohort's median that count as far (5)", number)
    .option('--min-peers <n>', 'cohort: fewest devices with readings for a verdict (5)', positiveInt(100_000))
    .option('--devices <ids>', 'only these devices, comma-separated', commaList)
    .option('--tags <tags>', 'only devices with any of these tags', commaList)
    .option('--models <models>', 'only devices of these models', commaList)
    .option('--groups <ids>', 'only devices in any of these device groups (static or dynamic)', commaList)
    .option('--schemas <ids>', 'only readings of these schemas (name@version); fields are checked against them', commaList)
    .option('--json', 'print the rule as JSON');
}

function renderRule(r: Rule): void {
  console.log(`${r.name} (${r.id})${r.builtIn ? ', built in' : ''}`);
  printFields([
    ['condition', conditionText(r.condition)],
    ['severity', r.severity],
    ['scope', scopeText(r.scope)],
    ['enabled', r.enabled ? 'yes' : 'no'],
    ['created', `${time(r.createdAt)} by ${r.createdBy}`],
    ['updated', time(r.updatedAt)],
  ]);
}

function renderAlert(a: Alert): void {
  console.log(`${a.severity.toUpperCase()} ${a.type} on ${a.deviceId} (${a.id})`);
  printFields([
    ['state', a.silenced ? `${a.state} (silenced: not notified)` : a.state],
    ['summary', a.summary],
    ['rule', a.ruleId],
    ['incident', a.incidentId],
    ['fired', time(a.firedAt)],
    ['acknowledged', a.acknowledgedAt ? `${time(a.acknowledgedAt)} by ${a.acknowledgedBy ?? '?'}` : null],
    ['resolved', time(a.resolvedAt)],
    ['runbook', a.runbook],
  ]);
}

/** `bulwark alerts list | show | ack | resolve | incidents | rules … | silence | silences | unsilence | channels …`. */
export function addAlertCommands(program: Command, env: Env): void {
  const alerts = program.command('alerts').description("alerts: rules on telemetry and the fleet's health, the alerts they fire, silences and notification channels");
  const at = (id: string, rest = '') => `/api/v1/alerts/${encodeURIComponent(id)}${rest}`;

  alerts
    .command('list')
    .description('alerts, newest first (open ones by default)')
    .addOption(new Option('--state <state>', 'which alerts').choices(['open', 'firing', 'acknowledged', 'resolved', 'all']).default('open'))
    .option('--device <id>', 'of one device')
    .option('--rule <id>', 'of one rule')
    .option('--limit <n>', 'at most this many (default 100)', positiveInt(1000))
    .option('--json', 'print a JSON array')
    .action(async (o: { state: string; device?: string; rule?: string; limit?: number; json?: boolean }) => {
      const q = new URLSearchParams({ ...(o.state !== 'all' ? { state: o.state } : {}), ...(o.device ? { deviceId: o.device } : {}), ...(o.rule ? { ruleId: o.rule } : {}), limit: String(o.limit ?? 100) });
      const list = await openSession(env).call<Alert[]>('GET', `/api/v1/alerts?${q}`);
      if (o.json) return printJson(list);
      printTable(
        ['id', 'severity', 'type', 'device', 'state', 'fired', 'summary'],
        list.map((a) => [a.id, a.severity, a.type, a.deviceId, a.silenced ? `${a.state} (silenced)` : a.state, time(a.firedAt), a.summary]),
        'No alerts.',
      );
    });

  alerts
    .command('show')
    .description('one alert')
    .argument('<id>', 'alert id')
    .option('--json', 'print it as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const a = await openSession(env).call<Alert>('GET', at(id));
      if (o.json) return printJson(a);
      renderAlert(a);
    });

  for (const [verb, path, what] of [
    ['ack', '/acknowledge', 'acknowledge a firing alert: someone is on it'],
    ['resolve', '/resolve', 'resolve an open alert by hand'],
  ] as const) {
    alerts
      .command(verb)
      .description(what)
      .argument('<id>', 'alert id')
      .option('--json', 'print the alert as JSON')
      .action(async (id: string, o: { json?: boolean }) => {
        const a = await openSession(env).call<Alert>('POST', at(id, path));
        if (o.json) return printJson(a);
        renderAlert(a);
      });
  }

  alerts
    .command('incidents')
    .description('fleet-wide incidents (many devices firing one rule together), newest first')
    .option('--open', 'only open ones')
    .option('--json', 'print a JSON array')
    .action(async (o: { open?: boolean; json?: boolean }) => {
      const list = await openSession(env).call<Incident[]>('GET', `/api/v1/alerts/incidents${o.open ? '?open=true' : ''}`);
      if (o.json) return printJson(list);
      printTable(
        ['id', 'rule', 'alerts', 'opened', 'closed'],
        list.map((i) => [i.id, i.ruleId, i.alerts, time(i.openedAt), time(i.closedAt)]),
        'No incidents.',
      );
    });

  const rules = alerts.command('rules').description('alert rules: list, show, create, update, enable, disable, delete');
  rules
    .command('list')
    .description('every rule, the built-in ones first')
    .option('--json', 'print a JSON array')
    .action(async (o: { json?: boolean }) => {
      const list = await openSession(env).call<Rule[]>('GET', '/api/v1/alerts/rules');
      if (o.json) return printJson(list);
      printTable(
        ['id', 'name', 'severity', 'condition', 'scope', 'enabled'],
        list.map((r) => [r.id, r.name, r.severity, conditionText(r.condition), scopeText(r.scope), r.enabled ? 'yes' : 'no']),
        'No rules.',
      );
    });
  rules
    .command('show')
    .description('one rule')
    .argument('<id>', 'rule id')
    .option('--json', 'print it as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const r = await openSession(env).call<Rule>('GET', `/api/v1/alerts/rules/${encodeURIComponent(id)}`);
      if (o.json) return printJson(r);
      renderRule(r);
    });
  ruleOptions(rules.command('create').description('create a rule (refused with each problem\'s path and reason); e.g. --name "Too hot" --kind threshold --field temp_c --op ">" --value 80 --for 5m'))
    .option('--disabled', 'create it switched off')
    .action(async (o: RuleFlags) => {
      const r = await openSession(env).call<Rule>('POST', '/api/v1/alerts/rules', { body: ruleBody(o, true) });
      if (o.json) return printJson(r);
      renderRule(r);
    });
  ruleOptions(rules.command('update').description('change a rule: what is given changes, the rest stays').argument('<id>', 'rule id')).action(async (id: string, o: RuleFlags) => {
    const r = await openSession(env).call<Rule>('PATCH', `/api/v1/alerts/rules/${encodeURIComponent(id)}`, { body: ruleBody(o, false) });
    if (o.json) return printJson(r);
    renderRule(r);
  });
  for (const [verb, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    rules
      .command(verb)
      .description(`switch a rule ${enabled ? 'on' : 'off'}`)
      .argument('<id>', 'rule id')
      .action(async (id: string) => {
        const r = await openSession(env).call<Rule>('PATCH', `/api/v1/alerts/rules/${encodeURIComponent(id)}`, { body: { enabled } });
        console.log(`${r.name} (${r.id}) is ${r.enabled ? 'enabled' : 'disabled'}`);
      });
  }
  rules
    .command('delete')
    .description('delete a rule (built-in rules are disabled instead)')
    .argument('<id>', 'rule id')
    .action(async (id: string) => {
      await openSession(env).call('DELETE', `/api/v1/alerts/rules/${encodeURIComponent(id)}`);
      console.log(`deleted ${id}`);
    });

  alerts
    .command('silence')
    .description('stop notifications of a rule, a device or both until it expires (alerts are still recorded)')
    .option('--rule <id>', 'the rule')
    .option('--device <id>', 'the device')
    .requiredOption('--reason <text>', 'why (kept with the silence and in the audit log)')
    .requiredOption('--for <duration>', 'how long: 30m, 2h, 1d')
    .option('--json', 'print the silence as JSON')
    .action(async (o: { rule?: string; device?: string; reason: string; for: string; json?: boolean }) => {
      if (!o.rule && !o.device) throw usageError('a silence names --rule, --device or both');
      const s = await openSession(env).call<Silence>('POST', '/api/v1/alerts/silences', {
        body: { ...(o.rule ? { ruleId: o.rule } : {}), ...(o.device ? { deviceId: o.device } : {}), reason: o.reason, duration: o.for },
      });
      if (o.json) return printJson(s);
      console.log(`silenced (${s.id}) until ${time(s.expiresAt)}`);
    });
  alerts
    .command('silences')
    .description('silences in force')
    .option('--json', 'print a JSON array')
    .action(async (o: { json?: boolean }) => {
      const list = await openSession(env).call<Silence[]>('GET', '/api/v1/alerts/silences');
      if (o.json) return printJson(list);
      printTable(
        ['id', 'rule', 'device', 'until', 'by', 'reason'],
        list.map((s) => [s.id, s.ruleId ?? 'any', s.deviceId ?? 'any', time(s.expiresAt), s.createdBy, s.reason]),
        'No silences.',
      );
    });
  alerts
    .command('unsilence')
    .description('end a silence now')
    .argument('<id>', 'silence id')
    .action(async (id: string) => {
      await openSession(env).call('DELETE', `/api/v1/alerts/silences/${encodeURIComponent(id)}`);
      console.log(`silence ${id} ended`);
    });

  const channels = alerts.command('channels').description('where notifications go: signed webhooks');
  channels
    .command('add')
    .description('add a webhook channel (--url; prints its signing secret once) or an e-mail channel (--email; needs alerts.smtpUrl)')
    .requiredOption('--name <name>', 'a name for people')
    .option('--url <url>', 'https:// URL of the receiver')
    .option('--email <addresses>', 'recipients, comma-separated')
    .addOption(new Option('--min-severity <level>', 'only alerts of this severity or higher').choices(SEVERITIES))
    .option('--batch', 'webhook: the notifications due at once go in one POST ({"event":"batch","notifications":[…]}), for busy fleets')
    .option('--json', 'print the channel (with its secret) as JSON')
    .action(async (o: { name: string; url?: string; email?: string; minSeverity?: string; batch?: boolean; json?: boolean }) => {
      if ((o.url === undefined) === (o.email === undefined)) throw usageError('give --url (a webhook) or --email (addresses), one of them');
      const c = await openSession(env).call<Channel>('POST', '/api/v1/alerts/channels', {
        body: { name: o.name, ...(o.url ? { url: o.url } : {}), ...(o.email ? { email: o.email } : {}), ...(o.minSeverity ? { minSeverity: o.minSeverity } : {}), ...(o.batch ? { batch: true } : {}) },
      });
      if (o.json) return printJson(c);
      console.log(`${c.name} (${c.id}) → ${c.url}, ${c.minSeverity} and above${c.batch ? ', batched' : ''}`);
      if (c.secret) console.log(`\nSigning secret (shown this once; keep it with the receiver):\n  ${c.secret}`);
    });
  channels
    .command('list')
    .description('every channel')
    .option('--json', 'print a JSON array')
    .action(async (o: { json?: boolean }) => {
      const list = await openSession(env).call<Channel[]>('GET', '/api/v1/alerts/channels');
      if (o.json) return printJson(list);
      printTable(
        ['id', 'name', 'url', 'min severity', 'batch', 'created'],
        list.map((c) => [c.id, c.name, c.url, c.minSeverity, c.batch ? 'yes' : 'no', time(c.createdAt)]),
        'No channels: alerts are recorded, nobody is told.',
      );
    });
  channels
    .command('delete')
    .description('delete a channel (its undelivered notifications are given up)')
    .argument('<id>', 'channel id')
    .action(async (id: string) => {
      await openSession(env).call('DELETE', `/api/v1/alerts/channels/${encodeURIComponent(id)}`);
      console.log(`deleted ${id}`);
    });
}
