import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fuzzSettings } from '@bulwark/core/testing/fuzz';
import { CommandRequest, DEVICE_TOPICS, FIRMWARE_REFUSALS, HealthReport, TwinDesired, delegateReleaseKeys, generateFirmwareKey, matchDeviceTopic, parseMessage, rootKeySet, signRelease, verifyFirmware } from './index.js';

/**
 * The device contract's decoders under fuzzing: topic matching, the JSON messages of the
 * catalogue, and the firmware manifest. Each answers (a match or none, a message or none, a
 * verdict) and never throws, whatever it is given.
 */

const settings = fuzzSettings();
const NOW = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;

const levels = fc.array(fc.oneof(fc.constantFrom('telemetry', 'commands', 'twin', 'reported', 'desired', 'result', 'health', 'events', 'ota', 'time', 'request', '+', '#', ''), fc.string({ maxLength: 12 })), { maxLength: 8 });

describe('the device contract under fuzzing', () => {
  it('topics: any suffix matches one catalogue topic with its placeholders, or none when no pattern fits', () => {
    /** Whether `parts` fit a catalogue pattern: its literal levels as they are, each placeholder one non-empty level. */
    const fits = (pattern: string, parts: readonly string[]) => {
      const levels = pattern.split('/');
      return levels.length === parts.length && levels.every((p, i) => (/^\{\w+\}$/.test(p) ? parts[i] !== '' : parts[i] === p));
    };
    fc.assert(
      fc.property(levels, (generated) => {
        // A generated level may hold a slash: the levels are those of the topic as written.
        const parts = generated.join('/').split('/');
        const m = matchDeviceTopic(parts.join('/'));
        const fitting = Object.values(DEVICE_TOPICS).filter((t) => fits(t.pattern, parts));
        if (!m) {
          assert.deepEqual(fitting, [], `${parts.join('/')} fits ${fitting.map((t) => t.pattern).join(', ')} but matched none`);
          return;
        }
        assert.ok(fits(m.topic.pattern, parts), `${parts.join('/')} matched ${m.topic.pattern}`);
        m.topic.pattern.split('/').forEach((p, i) => {
          const name = /^\{(\w+)\}$/.exec(p)?.[1];
          if (name !== undefined) assert.equal(m.params[name], parts[i], 'a placeholder holds its level');
        });
      }),
      settings,
    );
  });

  it('messages: any payload is the message or undefined', () => {
    const payloads = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v) ?? ''),
      fc.record({ name: fc.anything(), params: fc.anything(), requestId: fc.anything(), expiresAt: fc.anything(), desired: fc.anything(), version: fc.anything() }, { requiredKeys: [] }).map((v) => JSON.stringify(v) ?? ''),
    );
    fc.assert(
      fc.property(payloads, (payload) => {
        for (const schema of [CommandRequest, TwinDesired, HealthReport]) parseMessage(schema, payload);
      }),
      settings,
    );
  });

  it('firmware manifest: any document, or a signed one with a field changed, gets a verdict, never an exception', () => {
    const roots = [generateFirmwareKey(), generateFirmwareKey()];
    const root = rootKeySet(1, roots);
    const releaseKey = generateFirmwareKey();
    const delegation = delegateReleaseKeys({ version: 1, expires: NOW + 365 * DAY, keys: [releaseKey] }, [roots[0]?.privateKeyPem ?? '']);
    const good = signRelease(
      {
        name: 'gw-fw',
        version: '2.1.0',
        securityVersion: 5,
        hardware: { model: 'gw-1', hardwareRevisions: ['B'] },
        size: 1000,
        sha256: 'a'.repeat(64),
        issuedAt: NOW - DAY,
        expires: NOW + DAY,
      },
      releaseKey.privateKeyPem,
      delegation,
    );
    assert.equal(verifyFirmware(good, { root, now: NOW }).ok, true);
    const paths = [['format'], ['release', 'signed', 'version'], ['release', 'signed', 'size'], ['release', 'signatures'], ['delegation', 'signed', 'keys'], ['delegation', 'signed', 'expires'], ['rootRotations'], ['release', 'signed', 'hardware']];
    const changed = fc.tuple(fc.constantFrom(...paths), fc.anything()).map(([path, value]) => {
      const copy = structuredClone(good) as unknown as Record<string, unknown>;
      let at = copy;
      for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
      const before = JSON.stringify(at[path.at(-1) as string]);
      at[path.at(-1) as string] = value;
      // A signed field given another value must be refused: the signature no longer covers it.
      const signedChange = (path[1] === 'signed' || path[1] === 'signatures') && JSON.stringify(value) !== before;
      return { manifest: copy, signedChange };
    });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything().map((manifest) => ({ manifest, signedChange: false })),
          changed,
        ),
        ({ manifest, signedChange }) => {
          const verdict = verifyFirmware(manifest, { root, now: NOW, minSecurityVersion: 1 });
          assert.ok(verdict.ok || FIRMWARE_REFUSALS.includes(verdict.reason), JSON.stringify(verdict));
          if (signedChange) assert.equal(verdict.ok, false, 'a changed signed field is refused');
        },
      ),
      settings,
    );
  });
});
