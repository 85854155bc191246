import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { csvField, flatten, toCsv } from './csv.js';
import { formatOf } from './formats.js';

describe('output formats', () => {
  it('--json means --output json; the two may not contradict each other', () => {
    assert.equal(formatOf({}), 'table');
    assert.equal(formatOf({ json: true }), 'json');
    assert.equal(formatOf({ output: 'csv' }), 'csv');
    assert.equal(formatOf({ json: true, output: 'json' }), 'json');
    assert.throws(() => formatOf({ json: true, output: 'ndjson' }), /contradict/);
  });

  it('flattens nested objects into dotted columns, arrays and empty objects as JSON', () => {
    assert.deepEqual(flatten({ a: 1, d: { t: 2.5, n: { x: null } }, l: [1, 'b'], e: {} }), { a: 1, 'd.t': 2.5, 'd.n.x': null, l: '[1,"b"]', e: '{}' });
  });

  it('writes RFC 4180 CSV: quoted when needed, CRLF, one column per key in order of first use', () => {
    assert.equal(csvField('plain'), 'plain');
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField('two\nlines'), '"two\nlines"');
    assert.equal(csvField(null), '');
    assert.equal(
      toCsv([
        { id: 'a', data: { t: 1 } },
        { id: 'b', data: { h: 'x,y' } },
      ]),
      'id,data.t,data.h\r\na,1,\r\nb,,"x,y"\r\n',
    );
    assert.equal(toCsv([]), '');
  });
});
