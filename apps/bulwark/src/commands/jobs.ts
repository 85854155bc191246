import { type Command, InvalidArgumentError } from 'commander';
import { commaList, duration, jsonObject, parseWindow, percent, positiveInt } from '../args.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { usageError } from '../errors.js';
import { printJson, printTable, time } from '../output.js';
import { DEVICE_STATES, JOB_STATES, type Job, type JobDevice, type Operation, type Window, failUnlessClean, followJob, operationText, renderJob } from './job-view.js';

/** The API lists at most this many devices of a job a page, and this many jobs. */
const DEVICE_PAGE = 5000;
const JOB_PAGE = 500;
const POLL_MS = 1000;
const path = (id: string, rest = '') => `/api/v1/jobs/${encodeURIComponent(id)}${rest}`;

export interface OperationOptions {
  twinPatch?: string;
  command?: string;
  params?: string;
  ttl?: number;
  rotateCertificates?: boolean;
  suspend?: boolean;
  resume?: boolean;
  decommission?: boolean;
}

export interface CreateOptions extends OperationOptions {
  group: string;
  name: string;
  rate?: number;
  concurrency?: number;
  window?: Window;
  timeout?: number;
  retries?: number;
  abortFailedPercent?: number;
  abortMinFinished?: number;
}

/** The one operation the flags name; a usage error for none, two, or a malformed JSON object. */
export function operationOf(o: OperationOptions): Operation {
  const flags: [string, boolean][] = [
    ['--twin-patch', o.twinPatch !== undefined],
    ['--command', o.command !== undefined],
    ['--rotate-certificates', o.rotateCertificates === true],
    ['--suspend', o.suspend === true],
    ['--resume', o.resume === true],
    ['--decommission', o.decommission === true],
  ];
  const given = flags.filter(([, on]) => on).map(([flag]) => flag);
  if (given.length === 0) throw usageError(`name what the job does, with one of ${flags.map(([flag]) => flag).join(', ')}`);
  if (given.length > 1) throw usageError(`a job does one thing: ${given.join(' and ')} are two operations (make two jobs)`);
  if (o.command === undefined && (o.params !== undefined || o.ttl !== undefined)) throw usageError('--params and --ttl go with --command');
  if (o.twinPatch !== undefined) return { type: 'twin-patch', patch: jsonObject(o.twinPatch, '--twin-patch') };
  if (o.command !== undefined) return { type: 'command', name: o.command, params: o.params === undefined ? {} : jsonObject(o.params, '--params'), ...(o.ttl !== undefined ? { ttlS: o.ttl } : {}) };
  if (o.rotateCertificates) return { type: 'rotate-certificate' };
  return { type: o.suspend ? 'suspend' : o.resume ? 'resume' : 'decommission' };
}

/** The body of POST /api/v1/jobs: what is not given is left to the server's defaults. */
export function jobBody(o: CreateOptions): Record<string, unknown> {
  const operation = operationOf(o);
  if (o.abortMinFinished !== undefined && o.abortFailedPercent === undefined) throw usageError('--abort-min-finished goes with --abort-failed-percent');
  const pacing = Object.fromEntries(Object.entries({ ratePerSecond: o.rate, maxConcurrent: o.concurrency, window: o.window }).filter(([, v]) => v !== undefined));
  return {
    name: o.name,
    group: o.group,
    operation,
    ...(Object.keys(pacing).length > 0 ? { pacing } : {}),
    ...(o.timeout !== undefined ? { deviceTimeoutMs: o.timeout } : {}),
    ...(o.retries !== undefined ? { maxRetries: o.retries } : {}),
    ...(o.abortFailedPercent !== undefined ? { abort: { failedPercent: o.abortFailedPercent, minFinished: o.abortMinFinished ?? 10 } } : {}),
  };
}

const rate = (value: string) => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('devices a second: a number above 0 (0.5 is one every two seconds)');
  return n;
};
const timeout = (value: string) => {
  const ms = duration(value);
  if (ms < 1000 || ms > 86_400_000) throw new InvalidArgumentError('from 1s to 24h');
  return ms;
};
const retries = (value: string) => {
  if (!/^\d{1,2}$/.test(value) || Number(value) > 10) throw new InvalidArgumentError('a whole number from 0 to 10');
  return Number(value);
};
const states = (all: readonly string[]) => (value: string) => {
  const list = commaList(value);
  const bad = list.filter((s) => !all.includes(s));
  if (list.length === 0 || bad.length > 0) throw new InvalidArgumentError(`${bad.join(', ') || 'nothing'}: use ${all.join(', ')} (comma-separated)`);
  return list.join(',');
};

/** `bulwark jobs create | list | show | devices | wait | cancel | pause | resume`. */
export function addJobCommands(program: Command, env: Env): void {
  const jobs = program.command('jobs').description("jobs over device groups: one operation (twin patch, command, certificate renewal, suspend, resume, decommission) over a group's members, paced, with a status per device");

  jobs
    .command('create')
    .description('start a job over the members of a group now; exactly one operation flag')
    .requiredOption('--group <id>', 'the group whose devices (when the job is made) it acts on')
    .requiredOption('--name <name>', 'a name for people')
    .option('--twin-patch <json>', "operation: merge this JSON object (or file holding one) over each device's desired configuration; a null removes a key")
    .option('--command <name>', 'operation: send this command to each device (with --params, --ttl)')
    .option('--params <json>', 'with --command: its parameters, a JSON object or a file holding one')
    .option('--ttl <s>', 'with --command: how long each command waits for its device, in seconds', positiveInt(604_800))
    .option('--rotate-certificates', "operation: ask each device's agent to renew its certificate now")
    .option('--suspend', 'operation: suspend each device')
    .option('--resume', 'operation: resume each suspended device')
    .option('--decommission', "operation: revoke each device's certificates and retire it (for good)")
    .option('--rate <n>', "devices dispatched a second, at most (default: the server's jobs.defaultRatePerSecond)", rate)
    .option('--concurrency <n>', 'devices dispatched and not answered yet, at most (default 1000)', positiveInt(100_000))
    .option('--window <HH:MM-HH:MM>', 'dispatch only inside this daily UTC window', parseWindow)
    .option('--timeout <duration>', "a device that has not answered within this times out: 30s, 2m (default: the server's jobs.defaultDeviceTimeoutMs)", timeout)
    .option('--retries <n>', 'dispatch a timed-out device again, this many times (default 0)', retries)
    .option('--abort-failed-percent <p>', 'abort when this share of the finished devices failed or timed out', percent)
    .option('--abort-min-finished <n>', 'with --abort-failed-percent: once at least this many finished (default 10)', positiveInt(1_000_000))
    .option('--wait', 'follow the job with a progress bar until it settles, then print its summary (exit 1 if it was aborted or devices failed or timed out)')
    .option('--json', 'print the job as JSON (with --wait: once it settled)')
    .action(async (o: CreateOptions & { wait?: boolean; json?: boolean }) => {
      const body = jobBody(o);
      const session = openSession(env);
      let j = await session.call<Job>('POST', '/api/v1/jobs', { body });
      if (o.wait) j = await followJob(j, () => session.call<Job>('GET', path(j.id)), POLL_MS, !o.json);
      if (o.json) printJson(j);
      else renderJob(j);
      if (o.wait) failUnlessClean(j);
      else if (!o.json) console.log(`Follow it: bulwark jobs wait ${j.id}`);
    });

  jobs
    .command('list')
    .description('jobs with their progress, newest first')
    .option('--state <states>', `only jobs in these states (comma-separated: ${JOB_STATES.join(', ')})`, states(JOB_STATES))
    .option('--limit <n>', 'at most this many (default 50)', positiveInt(100_000))
    .option('--json', 'print a JSON array')
    .action(async (o: { state?: string; limit?: number; json?: boolean }) => {
      const session = openSession(env);
      const want = o.limit ?? 50;
      const all: Job[] = [];
      for (let before: string | undefined; all.length < want;) {
        const limit = Math.min(JOB_PAGE, want - all.length);
        const page = await session.call<Job[]>('GET', '/api/v1/jobs', { query: { state: o.state, limit, before } });
        all.push(...page);
        if (page.length < limit) break;
        before = page.at(-1)?.id;
      }
      if (o.json) return printJson(all);
      printTable(
        ['id', 'name', 'operation', 'group', 'state', 'finished', 'succeeded', 'failed', 'timed out', 'created'],
        all.map((j) => [j.id, j.name, operationText(j.operation), j.group, j.state, `${j.progress.finished}/${j.progress.total}`, j.counts.succeeded, j.counts.failed, j.counts.timed_out, time(j.createdAt)]),
        'No jobs: bulwark jobs create --help',
      );
    });

  jobs
    .command('show')
    .description('a job: state, progress, devices in each state, why devices failed, timed out or were cancelled, and its history')
    .argument('<id>', 'job id')
    .option('--json', 'print the job as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const j = await openSession(env).call<Job>('GET', path(id));
      if (o.json) return printJson(j);
      renderJob(j);
    });

  jobs
    .command('devices')
    .description('the devices of a job with their state, attempts and reason (every page)')
    .argument('<id>', 'job id')
    .option('--state <states>', `only devices in these states (comma-separated: ${DEVICE_STATES.join(', ')})`, states(DEVICE_STATES))
    .option('--json', 'print a JSON array')
    .action(async (id: string, o: { state?: string; json?: boolean }) => {
      const session = openSession(env);
      const list: JobDevice[] = [];
      for (let after: string | undefined; ;) {
        const page = await session.call<JobDevice[]>('GET', path(id, '/devices'), { query: { state: o.state, limit: DEVICE_PAGE, after } });
        list.push(...page);
        if (page.length < DEVICE_PAGE) break;
        after = page.at(-1)?.deviceId;
      }
      if (o.json) return printJson(list);
      printTable(
        ['device', 'state', 'attempts', 'reason', 'detail', 'dispatched', 'finished'],
        list.map((d) => [d.deviceId, d.state, d.attempts, d.reason, d.detail, time(d.dispatchedAt), time(d.finishedAt)]),
        o.state ? `No devices ${o.state.replaceAll(',', ' or ')}.` : 'No devices.',
      );
    });

  jobs
    .command('wait')
    .description('follow a job with a progress bar until it settles, then print its summary (exit 1 if it was aborted or devices failed or timed out)')
    .argument('<id>', 'job id')
    .option('--json', 'print the settled job as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const session = openSession(env);
      const read = () => session.call<Job>('GET', path(id));
      const j = await followJob(await read(), read, POLL_MS, !o.json);
      if (o.json) printJson(j);
      else renderJob(j);
      failUnlessClean(j);
    });

  const verbs = {
    cancel: 'stop for good: no device is dispatched after this; queued devices end as cancelled, dispatched ones still report',
    pause: 'stop dispatching until resumed (dispatched devices still report or time out)',
    resume: 'go on with a paused job',
  } as const;
  for (const [verb, description] of Object.entries(verbs) as [keyof typeof verbs, string][]) {
    jobs
      .command(verb)
      .description(description)
      .argument('<id>', 'job id')
      .option('--reason <text>', "why (kept in the job's history and the audit log)")
      .option('--json', 'print the job as JSON')
      .action(async (id: string, o: { reason?: string; json?: boolean }) => {
        const j = await openSession(env).call<Job>('POST', path(id, `/${verb}`), { body: o.reason === undefined ? {} : { reason: o.reason } });
        if (o.json) return printJson(j);
        console.log(`Job ${j.id} is ${j.state}${j.reason ? `: ${j.reason}` : ''} (${j.progress.finished}/${j.progress.total} finished).`);
      });
  }
}
