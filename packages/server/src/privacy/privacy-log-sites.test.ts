import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { FleetHealth } from '../alerts/index.js';
import { testRule } from '../testing/alert-rules.js';
import { Pseudonymiser, privacySettings, privateLog } from './index.js';

const p = new Pseudonymiser(Buffer.alloc(32, 7));
const settle = () => new Promise((r) => setImmediate(r));

/** Log calls that name a device outside the fields the rewrite knows would write it as it is: each names it as deviceId. */
describe('log lines of the platform name a device as deviceId', () => {
  it('fleet health: an alert change that could not be recorded', async () => {
    const lines: string[] = [];
    const log = privateLog({ level: 'info', settings: privacySettings({ pseudonymise: 'logs', pseudonymiseIdentifiers: 'devices' }), destination: { write: (l: string) => void lines.push(l) } });
    log.use(p);
    const clock = new ManualClock(1_000_000);
    const failing = { fire: async () => Promise.reject(new Error('store down')), clear: async () => Promise.reject(new Error('store down')), mayBeOpen: () => false };
    const f = new FleetHealth({ clock, log: log.logger, sink: failing, facts: async () => ({ tags: [], model: 'gw', groups: [] }), minSecurityVersion: () => 0 });
    f.setRules([testRule('flap', { kind: 'flapping', connects: 1, withinMs: 60_000 })]);
    f.connected('gw-flappy-7', clock.now());
    f.connected('gw-flappy-7', clock.now());
    await settle();
    f.stop();
    const line = lines.find((l) => l.includes('could not record'));
    assert.ok(line, lines.join(''));
    assert.doesNotMatch(line, /gw-flappy-7/);
    assert.match(line, new RegExp(`"deviceId":"${p.device('gw-flappy-7')}"`));
  });
});
