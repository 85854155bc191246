import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { duration, parseWindow } from '../args.js';
import { CliError, EXIT } from '../errors.js';
import { type CreateOptions, jobBody } from './jobs.js';

const base: CreateOptions = { group: 'site-7', name: 'n' };
const usage = (o: Partial<CreateOptions>, message: RegExp) =>
  assert.throws(
    () => jobBody({ ...base, ...o }),
    (err: unknown) => err instanceof CliError && err.code === 'BULWARK_CLI_USAGE' && err.exitCode === EXIT.usage && message.test(err.message),
  );

describe('jobs create flags', () => {
  it('take exactly one operation, and its settings only with it', () => {
    usage({}, /one of --twin-patch, --command, --rotate-certificates, --suspend, --resume, --decommission/);
    usage({ suspend: true, decommission: true }, /--suspend and --decommission are two operations/);
    usage({ twinPatch: '{}', command: 'reboot' }, /--twin-patch and --command are two operations/);
    usage({ suspend: true, params: '{}' }, /--params and --ttl go with --command/);
    usage({ suspend: true, ttl: 60 }, /--params and --ttl go with --command/);
    usage({ twinPatch: '[1]' }, /--twin-patch must be a JSON object/);
    usage({ command: 'ping', params: '{"n":' }, /--params: not JSON/);
    usage({ suspend: true, abortMinFinished: 5 }, /--abort-min-finished goes with --abort-failed-percent/);
  });

  it('map to the API body, leaving out what the server defaults', () => {
    assert.deepEqual(jobBody({ ...base, rotateCertificates: true }), { name: 'n', group: 'site-7', operation: { type: 'rotate-certificate' } });
    assert.deepEqual(jobBody({ ...base, twinPatch: '{"sampleRateS": 10, "debug": null}', rate: 0.5 }), {
      name: 'n',
      group: 'site-7',
      operation: { type: 'twin-patch', patch: { sampleRateS: 10, debug: null } },
      pacing: { ratePerSecond: 0.5 },
    });
    assert.deepEqual(jobBody({ ...base, command: 'reboot', ttl: 300, concurrency: 20, window: parseWindow('22:00-04:00'), timeout: duration('2m'), retries: 0, abortFailedPercent: 5 }), {
      name: 'n',
      group: 'site-7',
      operation: { type: 'command', name: 'reboot', params: {}, ttlS: 300 },
      pacing: { maxConcurrent: 20, window: { startMinute: 1320, endMinute: 240 } },
      deviceTimeoutMs: 120_000,
      maxRetries: 0,
      abort: { failedPercent: 5, minFinished: 10 },
    });
  });

  it('refuse a window or duration that is not one', () => {
    assert.throws(() => parseWindow('1:00-5:00'), InvalidArgumentError);
    assert.throws(() => parseWindow('24:00-01:00'), InvalidArgumentError);
    assert.throws(() => duration('30'), InvalidArgumentError);
  });
});
