import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { defaultConfig } from '../config/index.js';
import { CursorSeal, Pseudonymiser, privacySettings, privateLog, rewriteIdentifiers } from './index.js';

const KEY = Buffer.alloc(32, 7);
const p = new Pseudonymiser(KEY);
const all = (kind: 'devices' | 'owners' | 'locations', value: string) => p.pseudonym(kind, value);

describe('pseudonyms', () => {
  it('are stable per kind and key, prefixed, and differ across kinds and keys', () => {
    assert.match(p.device('dev-1'), /^p:dev:[0-9a-f]{32}$/);
    assert.equal(p.device('dev-1'), new Pseudonymiser(Buffer.from(KEY)).device('dev-1'));
    assert.notEqual(p.device('dev-1'), p.device('dev-2'));
    assert.notEqual(p.device('dev-1'), new Pseudonymiser(Buffer.alloc(32, 8)).device('dev-1'));
    assert.equal(p.pseudonym('owners', 'x').slice(0, 6), 'p:own:');
    assert.notEqual(p.pseudonym('owners', 'x').slice(6), p.pseudonym('locations', 'x').slice(6));
    assert.throws(() => new Pseudonymiser(Buffer.alloc(16)));
  });

  it("replace identifier fields, topics, URLs and the same values in text, not a reading's data or longer ids", () => {
    const line = {
      msg: 'could not deliver to m-1: m-10 is another device',
      deviceId: 'm-1',
      owner: 'ann',
      location: 'hall 3',
      topic: 'devices/m-1/telemetry',
      req: { url: '/api/v1/devices/m-1/telemetry?device=m-1&limit=5' },
      err: { message: 'no device m-1 (owner ann)' },
      readings: [{ id: 'm-1/r1', deviceId: 'm-1', data: { deviceId: 'm-1', location: 'kept' } }],
      deviceIds: ['m-1', 'm-2'],
    };
    const out = rewriteIdentifiers(structuredClone(line), all);
    const d1 = p.device('m-1');
    assert.equal(out.deviceId, d1);
    assert.equal(out.msg, `could not deliver to ${d1}: m-10 is another device`);
    assert.equal(out.owner, p.pseudonym('owners', 'ann'));
    assert.equal(out.location, p.pseudonym('locations', 'hall 3'));
    assert.equal(out.topic, `devices/${d1}/telemetry`);
    assert.equal(out.req.url, `/api/v1/devices/${d1}/telemetry?device=${encodeURIComponent(d1)}&limit=5`);
    assert.equal(out.err.message, `no device ${d1} (owner ${p.pseudonym('owners', 'ann')})`);
    assert.deepEqual(out.readings[0], { id: `${d1}/r1`, deviceId: d1, data: { deviceId: 'm-1', location: 'kept' } });
    assert.deepEqual(out.deviceIds, [d1, p.device('m-2')]);
    assert.equal(JSON.stringify(rewriteIdentifiers(structuredClone(out), all)), JSON.stringify(out), 'a pseudonym is not hashed again');
    const devicesOnly = rewriteIdentifiers(structuredClone(line), (kind, v) => (kind === 'devices' ? p.device(v) : undefined));
    assert.equal(devicesOnly.owner, 'ann');
  });

  it('build a copy: the input is never changed, only plain objects and arrays are entered, cycles and depth are bounded', () => {
    const d1 = p.device('m-1');
    class Live {
      device = 'm-1';
      raw = { url: '/x?device=m-1' };
    }
    const live = new Live();
    const input = { deviceId: 'm-1', req: live, nested: { device: 'm-1', list: [{ deviceId: 'm-1' }] }, deviceIds: ['m-1'] };
    const before = JSON.stringify(input);
    const out = rewriteIdentifiers(input, all);
    assert.equal(JSON.stringify(input), before, 'the input is as it was');
    assert.equal(live.device, 'm-1');
    assert.equal(live.raw.url, '/x?device=m-1');
    assert.equal(out.req, live, 'a non-plain object is kept as it is, by reference');
    assert.deepEqual(out.nested, { device: d1, list: [{ deviceId: d1 }] });
    assert.deepEqual(out.deviceIds, [d1]);
    const cyclic: Record<string, unknown> = { deviceId: 'm-1', msg: 'for m-1' };
    cyclic.self = cyclic;
    cyclic.kids = [cyclic, { deviceId: 'm-2' }];
    const c = rewriteIdentifiers(cyclic, all);
    assert.deepEqual(c, { deviceId: d1, msg: `for ${d1}`, self: '[circular]', kids: ['[circular]', { deviceId: p.device('m-2') }] });
    const shared = { deviceId: 'm-1' };
    assert.deepEqual(rewriteIdentifiers({ a: shared, b: shared }, all), { a: { deviceId: d1 }, b: { deviceId: d1 } }, 'a value met twice, not in a cycle, is rewritten twice');
    let deep: Record<string, unknown> = { deviceId: 'm-1' };
    for (let i = 0; i < 100_000; i += 1) deep = { next: deep };
    assert.doesNotThrow(() => JSON.stringify(rewriteIdentifiers(deep, all)));
    assert.doesNotMatch(JSON.stringify(rewriteIdentifiers(deep, all)), /m-1/, 'what is too deep is withheld');
  });

  it("replace the device ids a request URL carries in its query: device lists' paging cursor, device lists, not other cursors", () => {
    const url = (u: string) => rewriteIdentifiers({ req: { url: u } }, all).req.url;
    const e = (id: string) => encodeURIComponent(p.device(id));
    assert.equal(url('/api/v1/devices?limit=2&after=m-1'), `/api/v1/devices?limit=2&after=${e('m-1')}`);
    assert.equal(url('/api/v1/jobs/j-1/devices?after=m-1&state=failed'), `/api/v1/jobs/j-1/devices?after=${e('m-1')}&state=failed`);
    assert.equal(url('/api/v1/telemetry/live?devices=m-1,m-2'), `/api/v1/telemetry/live?devices=${e('m-1')},${e('m-2')}`);
    assert.equal(url('/api/v1/telemetry/live?devices=m-1%2Cm-2'), `/api/v1/telemetry/live?devices=${e('m-1')},${e('m-2')}`);
    assert.equal(url('/api/v1/alerts?deviceId=m-1'), `/api/v1/alerts?deviceId=${e('m-1')}`);
    assert.equal(url('/api/v1/groups?after=north'), '/api/v1/groups?after=north', "a group list's cursor is a group id");
    assert.equal(url('/api/v1/devices/m-1/logs?after=12'), `/api/v1/devices/${p.device('m-1')}/logs?after=12`, "a device log's cursor is a sequence number");
  });

  it('settings: places and kinds from the config; unknown ones refused at load', () => {
    const s = privacySettings(defaultConfig({ privacy: { pseudonymise: 'exports, logs' } }).privacy);
    assert.deepEqual([...s.places], ['exports', 'logs']);
    assert.deepEqual([...s.kinds], ['devices', 'owners', 'locations']);
    assert.equal(privacySettings(defaultConfig().privacy).places.size, 0, 'off by default');
    assert.throws(() => defaultConfig({ privacy: { pseudonymise: 'exports,mail' } }), /privacy\.pseudonymise: unknown place "mail"/);
    assert.throws(() => defaultConfig({ privacy: { pseudonymiseIdentifiers: 'devices,serials' } }), /unknown identifier "serials"/);
  });

  it('sealed export cursors open only here and hide what they carry', () => {
    const seal = new CursorSeal(KEY);
    const sealed = seal.seal('WzEsImRldi0xIl0');
    assert.match(sealed, /^s_[A-Za-z0-9_-]+$/);
    assert.equal(seal.open(sealed), 'WzEsImRldi0xIl0');
    assert.equal(new CursorSeal(Buffer.alloc(32, 9)).open(sealed), undefined);
    assert.equal(seal.open(`${sealed.slice(0, -2)}AA`), undefined);
    assert.equal(seal.open('WzEsImRldi0xIl0'), undefined);
  });
});

describe('the platform logger', () => {
  const capture = () => {
    const lines: string[] = [];
    return { lines, destination: { write: (l: string) => void lines.push(l) } };
  };
  const settings = (places: string) => privacySettings({ pseudonymise: places, pseudonymiseIdentifiers: 'devices,owners,locations' });

  it('never writes payload fields, whatever the settings, and through a logger handed in too', () => {
    const own = capture();
    const given = capture();
    const loggers = [privateLog({ level: 'debug', settings: settings(''), destination: own.destination }).logger, privateLog({ level: 'debug', settings: settings('logs'), given: pino({ level: 'debug' }, given.destination) }).logger];
    for (const log of loggers) {
      log.debug({ deviceId: 'm-1', payload: 'SECRET-1', data: { pin: 'SECRET-2' }, problems: [{ path: '/pin', got: '"SECRET-3"' }], letter: { body: 'SECRET-4', envelope: { data: 'SECRET-5' } } }, 'refused');
    }
    for (const lines of [own.lines, given.lines]) {
      assert.equal(lines.length, 1);
      assert.doesNotMatch(lines[0] ?? '', /SECRET/);
      assert.match(lines[0] ?? '', /"payload":"\[redacted\]"/);
    }
    assert.match(own.lines[0] ?? '', /"deviceId":"m-1"/, 'off: the real id');
    assert.match(given.lines[0] ?? '', /"deviceId":"p:dev:unavailable"/, 'on, before the key: the unavailable pseudonym, never the real id');
  });

  it('handed in, never changes what is logged, and logs a cyclic object without throwing', () => {
    const given = capture();
    const log = privateLog({ level: 'debug', settings: settings('logs'), given: pino({ level: 'debug' }, given.destination) });
    log.use(p);
    class Request {
      query = { device: 'm-1' };
      raw = { url: '/x?device=m-1' };
    }
    const req = new Request();
    const fields = { deviceId: 'm-1', nested: { device: 'm-1' } };
    const cyclic: Record<string, unknown> = { deviceId: 'm-2' };
    cyclic.self = cyclic;
    log.logger.info({ req, ...fields }, 'incoming');
    assert.doesNotThrow(() => log.logger.info({ node: cyclic }, 'cyclic'));
    assert.equal(req.query.device, 'm-1', 'the live request keeps its query');
    assert.equal(req.raw.url, '/x?device=m-1', 'and its URL');
    assert.deepEqual(fields, { deviceId: 'm-1', nested: { device: 'm-1' } });
    assert.equal(cyclic.deviceId, 'm-2');
    assert.equal(given.lines.length, 2);
    const first = JSON.parse(given.lines[0] ?? '{}') as { deviceId: string; nested: { device: string } };
    assert.equal(first.deviceId, p.device('m-1'));
    assert.equal(first.nested.device, p.device('m-1'));
    assert.match(given.lines[1] ?? '', new RegExp(`"deviceId":"${p.device('m-2')}"`));
  });

  it('with logs on rewrites every line, bindings and errors included, once the key is there', () => {
    const c = capture();
    const log = privateLog({ level: 'info', settings: settings('logs'), destination: c.destination });
    log.use(p);
    log.logger.child({ deviceId: 'm-1' }).error({ err: new Error('device m-1 refused') }, 'failed for m-1');
    const line = JSON.parse(c.lines[0] ?? '{}') as { deviceId: string; msg: string; err: { message: string; stack: string } };
    assert.equal(line.deviceId, p.device('m-1'));
    assert.equal(line.msg, `failed for ${p.device('m-1')}`);
    assert.equal(line.err.message, `device ${p.device('m-1')} refused`);
    assert.doesNotMatch(c.lines[0] ?? '', /m-1/);
  });
});
