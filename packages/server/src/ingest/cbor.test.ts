import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CborError, decodeCbor, looksLikeCbor } from './cbor.js';

const hex = (h: string) => Buffer.from(h.replace(/\s/g, ''), 'hex');

describe('the CBOR decoder', () => {
  it('decodes the RFC 8949 examples that map onto JSON', () => {
    const cases: [string, unknown][] = [
      ['00', 0],
      ['17', 23],
      ['1818', 24],
      ['1864', 100],
      ['1903e8', 1000],
      ['1a000f4240', 1_000_000],
      ['1b000000e8d4a51000', 1_000_000_000_000],
      ['20', -1],
      ['3863', -100],
      ['3903e7', -1000],
      ['f90000', 0],
      ['f93c00', 1],
      ['f97bff', 65504],
      ['fa47c35000', 100000],
      ['fb3ff199999999999a', 1.1],
      ['fbc010666666666666', -4.1],
      ['f4', false],
      ['f5', true],
      ['f6', null],
      ['60', ''],
      ['6161', 'a'],
      ['6449455446', 'IETF'],
      ['62c3bc', '\u00fc'],
      ['80', []],
      ['83010203', [1, 2, 3]],
      ['a0', {}],
      ['a26161016162820203', { a: 1, b: [2, 3] }],
    ];
    for (const [bytes, value] of cases) assert.deepEqual(decodeCbor(hex(bytes)), value, bytes);
  });

  it('refuses what JSON cannot hold, and malformed input', () => {
    const refused = ['f97c00', 'f97e00', 'fb7ff8000000000000', '4401020304', 'c11a514b67b0', 'f7', '9fff', '1bffffffffffffffff', 'a10102', '62c3', '8301', '0000', 'a1695f5f70726f746f5f5f00'];
    for (const bytes of refused) assert.throws(() => decodeCbor(hex(bytes)), CborError, bytes);
    const deep = Buffer.concat([Buffer.alloc(40, 0x81), hex('00')]);
    assert.throws(() => decodeCbor(deep, 32), /deeper than 32/);
    assert.throws(() => decodeCbor(hex('9b00000000ffffffff')), /truncated/);
  });

  it('tells a CBOR map from JSON text by its first byte', () => {
    assert.equal(looksLikeCbor(hex('a0')), true);
    assert.equal(looksLikeCbor(Buffer.from('{"id":1}')), false);
    assert.equal(looksLikeCbor(Buffer.alloc(0)), false);
  });
});
