import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommandRouter } from './commands.js';
import { Twin } from './twin.js';
import { Validator } from './validator.js';

const REBOOT = { type: 'object', required: ['delayS'], properties: { delayS: { type: 'integer', minimum: 0, maximum: 300 }, mode: { type: 'string', enum: ['soft', 'hard'] } } };
const CONFIG = {
  type: 'object',
  required: ['intervalS'],
  properties: { intervalS: { type: 'integer', minimum: 1, maximum: 3600 }, unit: { type: 'string', enum: ['C', 'F'] }, thresholds: { type: 'object', properties: { high: { type: 'number', maximum: 125 } } } },
};
const ok = (params: unknown, extra: Record<string, unknown> = {}) => JSON.stringify({ id: `c-${Math.random()}`, params, issuedAt: 1, ...extra });

/** 30 commands that must be refused, with the reason each must get. */
export const BAD_COMMANDS: [string, string | Buffer, string][] = [
  ['reboot', Buffer.alloc(16 * 1024 + 1, 0x20), 'too_large'],
  ['reboot', Buffer.from([0xff, 0xfe, 0x7b]), 'invalid_utf8'],
  ['reboot', '{"id":', 'malformed_json'],
  ['reboot', '', 'malformed_json'],
  ['reboot', 'null', 'bad_request'],
  ['reboot', '[]', 'bad_request'],
  ['reboot', '"reboot"', 'bad_request'],
  ['reboot', '{"params":{"delayS":1},"issuedAt":1}', 'bad_request'],
  ['reboot', JSON.stringify({ id: 'x'.repeat(65), params: { delayS: 1 }, issuedAt: 1 }), 'bad_request'],
  ['reboot', JSON.stringify({ id: 'c\u0000', params: { delayS: 1 }, issuedAt: 1 }), 'bad_request'],
  ['reboot', JSON.stringify({ id: 7, params: { delayS: 1 }, issuedAt: 1 }), 'bad_request'],
  ['reboot', JSON.stringify({ id: 'c1', params: [1], issuedAt: 1 }), 'bad_request'],
  ['reboot', JSON.stringify({ id: 'c2', params: null, issuedAt: 1 }), 'bad_request'],
  ['reboot', JSON.stringify({ id: 'c3', params: { delayS: 1 } }), 'bad_request'],
  ['reboot', JSON.stringify({ id: 'c4', params: { delayS: 1 }, issuedAt: '1' }), 'bad_request'],
  ['reboot', JSON.stringify({ id: 'c5', params: { delayS: 1 }, issuedAt: 1, expiresAt: 'soon' }), 'bad_request'],
  ['reboot', JSON.stringify({ id: 'c6', params: { delayS: 1 }, issuedAt: 1, run: 'rm -rf /' }), 'bad_request'],
  ['reboot', `{"id":"c7","params":{"__proto__":{"admin":true},"delayS":1},"issuedAt":1}`, 'forbidden_key'],
  ['reboot', `{"id":"c8","params":{"a":${'['.repeat(20)}${']'.repeat(20)}},"issuedAt":1}`, 'too_deep'],
  ['reboot', ok({}), 'params_invalid'],
  ['reboot', ok({ delayS: -1 }), 'params_invalid'],
  ['reboot', ok({ delayS: 301 }), 'params_invalid'],
  ['reboot', ok({ delayS: 1.5 }), 'params_invalid'],
  ['reboot', ok({ delayS: '10' }), 'params_invalid'],
  ['reboot', ok({ delayS: 1, mode: 'explode' }), 'params_invalid'],
  ['reboot', ok({ delayS: 1, extra: true }), 'params_invalid'],
  ['reboot', ok({ delayS: 1 }, { expiresAt: 1000 }), 'expired'],
  ['self-destruct', ok({}), 'unknown_command'],
  ['bad name!', ok({}), 'bad_name'],
  ['logs.stream', ok({ level: 'verbose', durationS: 10 }), 'params_invalid'],
];

/** 20 desired documents that must be refused. */
export const BAD_CONFIGS: [string | Buffer, string][] = [
  [Buffer.alloc(16 * 1024 + 1, 0x20), 'too_large'],
  ['{', 'malformed_json'],
  ['42', 'bad_request'],
  ['{"config":{"intervalS":5}}', 'bad_request'],
  ['{"version":-1,"config":{"intervalS":5}}', 'bad_request'],
  ['{"version":1.5,"config":{"intervalS":5}}', 'bad_request'],
  ['{"version":"2","config":{"intervalS":5}}', 'bad_request'],
  ['{"version":2,"config":[]}', 'bad_request'],
  ['{"version":2,"config":{"intervalS":5},"ts":"now"}', 'bad_request'],
  ['{"version":2,"config":{"intervalS":5},"exec":"x"}', 'bad_request'],
  ['{"version":2,"config":{"__proto__":{"intervalS":5}}}', 'forbidden_key'],
  ['{"version":2,"config":{}}', 'config_invalid'],
  ['{"version":2,"config":{"intervalS":0}}', 'config_invalid'],
  ['{"version":2,"config":{"intervalS":3601}}', 'config_invalid'],
  ['{"version":2,"config":{"intervalS":"60"}}', 'config_invalid'],
  ['{"version":2,"config":{"intervalS":60,"unit":"K"}}', 'config_invalid'],
  ['{"version":2,"config":{"intervalS":60,"debug":true}}', 'config_invalid'],
  ['{"version":2,"config":{"intervalS":60,"thresholds":{"high":500}}}', 'config_invalid'],
  ['{"version":2,"config":{"intervalS":60,"thresholds":{"low":1}}}', 'config_invalid'],
  ['{"version":2,"config":{"intervalS":60,"thresholds":"hot"}}', 'config_invalid'],
];

describe('validation of everything that comes from the cloud', () => {
  it(`refuses ${BAD_COMMANDS.length} malformed or out-of-range commands with their reasons and runs none`, async () => {
    let ran = 0;
    const router = new CommandRouter(new Validator(), { rememberIds: 100, platformNow: () => 5000, wallNow: () => 5000 });
    router.on('reboot', REBOOT, () => (ran += 1));
    router.on('logs.stream', { type: 'object', properties: { level: { type: 'string', enum: ['info'] }, durationS: { type: 'integer' } } }, () => (ran += 1));
    for (const [name, payload, reason] of BAD_COMMANDS) {
      const r = await router.handle(name, Buffer.isBuffer(payload) ? payload : Buffer.from(payload));
      assert.equal(r.status, 'rejected', `${name} ${String(payload).slice(0, 60)}`);
      assert.equal(r.reason, reason, `${String(payload).slice(0, 80)}: ${r.detail}`);
      assert.ok(r.detail && r.detail.length > 0);
    }
    assert.equal(ran, 0, 'no handler ran');
    assert.equal(
      Object.values(router.counters.rejected).reduce((a, b) => a + b, 0),
      BAD_COMMANDS.length,
    );
    const good = await router.handle('reboot', Buffer.from(JSON.stringify({ id: 'good-1', params: { delayS: 5 }, issuedAt: 1, expiresAt: 9000 })));
    assert.equal(good.status, 'succeeded');
    const again = await router.handle('reboot', Buffer.from(JSON.stringify({ id: 'good-1', params: { delayS: 5 }, issuedAt: 1 })));
    assert.deepEqual(again, good, 'a repeated command id gets the same answer');
    assert.equal(ran, 1, 'and does not run twice');
  });

  it(`refuses ${BAD_CONFIGS.length} malformed or out-of-range desired configurations and applies none`, async () => {
    let applied = 0;
    const twin = new Twin(new Validator(), { version: 1, config: { intervalS: 60 } }, () => 5000);
    twin.setHandler(CONFIG, () => (applied += 1));
    for (const [payload, reason] of BAD_CONFIGS) {
      const out = await twin.handle(Buffer.isBuffer(payload) ? payload : Buffer.from(payload));
      const got = out.kind === 'report' ? (out.report.status === 'rejected' ? out.report.reason : 'applied') : out.kind === 'unreadable' ? out.reason : out.reason;
      assert.equal(got, reason, String(payload).slice(0, 80));
    }
    assert.equal(applied, 0);
    assert.deepEqual(twin.state, { version: 1, config: { intervalS: 60 } }, 'the configuration in effect is unchanged');
    const stale = await twin.handle(Buffer.from('{"version":1,"config":{"intervalS":5}}'));
    assert.equal(stale.kind, 'ignored');
    const good = await twin.handle(Buffer.from('{"version":2,"config":{"intervalS":5,"unit":"C"}}'));
    assert.equal(good.kind === 'report' && good.report.status, 'applied');
    assert.equal(applied, 1);
  });
});

describe('one validator shared by many agents', () => {
  const LOGS = { type: 'object', properties: { level: { type: 'string', enum: ['info'] }, durationS: { type: 'integer' } } };
  /** The same schema with its keys in another order, at every level. */
  const reordered = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(reordered)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .reverse()
              .map(([k, x]) => [k, reordered(x)]),
          )
        : v;

  it('compiles each distinct schema once for 200 agents, whatever the key order', () => {
    const validator = new Validator();
    const routers = Array.from({ length: 200 }, (_, i) => {
      const router = new CommandRouter(validator, { rememberIds: 100, platformNow: () => 5000, wallNow: () => 5000 });
      router.on('reboot', i % 2 === 0 ? REBOOT : (reordered(REBOOT) as typeof REBOOT), () => undefined);
      router.on('logs.stream', LOGS, () => undefined);
      new Twin(validator, { version: 1, config: { intervalS: 60 } }, () => 5000).setHandler(CONFIG, () => undefined);
      return router;
    });
    assert.equal(routers.length, 200);
    assert.equal(validator.compiles, 3, 'reboot, logs.stream and the configuration schema');
    assert.equal(validator.compile(reordered(CONFIG) as typeof CONFIG), validator.compile(CONFIG), 'one compiled function for both orders');
    assert.notEqual(validator.compile({ ...REBOOT, required: [] }), validator.compile(REBOOT), 'a different schema is compiled apart');
    assert.equal(validator.compiles, 4);
  });

  it(`refuses the same ${BAD_COMMANDS.length} commands and ${BAD_CONFIGS.length} configurations with the same reasons through it`, async () => {
    const validator = new Validator();
    let ran = 0;
    let applied = 0;
    const agents = Array.from({ length: 20 }, () => {
      const router = new CommandRouter(validator, { rememberIds: 100, platformNow: () => 5000, wallNow: () => 5000 });
      router.on('reboot', REBOOT, () => (ran += 1));
      router.on('logs.stream', LOGS, () => (ran += 1));
      const twin = new Twin(validator, { version: 1, config: { intervalS: 60 } }, () => 5000);
      twin.setHandler(CONFIG, () => (applied += 1));
      return { router, twin };
    });
    for (const { router, twin } of [agents[0], agents[19]].map((a) => a!)) {
      for (const [name, payload, reason] of BAD_COMMANDS) {
        const r = await router.handle(name, Buffer.isBuffer(payload) ? payload : Buffer.from(payload));
        assert.equal(r.reason, reason, `${String(payload).slice(0, 80)}: ${r.detail}`);
      }
      for (const [payload, reason] of BAD_CONFIGS) {
        const out = await twin.handle(Buffer.isBuffer(payload) ? payload : Buffer.from(payload));
        assert.equal(out.kind === 'report' && out.report.status === 'rejected' ? out.report.reason : out.kind === 'unreadable' ? out.reason : 'applied', reason, String(payload).slice(0, 80));
      }
    }
    assert.deepEqual([ran, applied], [0, 0]);
    const a = await agents[3]?.router.handle('reboot', Buffer.from(ok({ delayS: 400 })));
    const b = await agents[4]?.router.handle('reboot', Buffer.from(ok({ delayS: 5 })));
    assert.equal(a?.detail, '/delayS: must be <= 300', 'the detail comes from the right call, not the previous one of another agent');
    assert.deepEqual([b?.status, ran], ['succeeded', 1]);
  });
});
