import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonTextDepth, jsonValueDepth } from './json-depth.js';

const nested = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

describe('JSON nesting depth', () => {
  it('counts the outermost object or array as level 1 and a scalar as 0, in text and in values', () => {
    for (const [text, depth] of [
      ['1', 0],
      ['"x"', 0],
      ['{}', 1],
      ['[]', 1],
      ['{"a":[1]}', 2],
      ['[[],[[{}]],3]', 4],
      [nested(16), 16],
    ] as const) {
      assert.equal(jsonTextDepth(text), depth, text);
      assert.equal(jsonValueDepth(JSON.parse(text)), depth, text);
    }
  });

  it('ignores brackets inside strings, also after escaped quotes and backslashes', () => {
    assert.equal(jsonTextDepth('{"a":"[[[{{{","b":"\\"[[[","c":"\\\\","d":[1]}'), 2);
    assert.equal(jsonTextDepth('["\\\\\\"[[["]'), 1);
    assert.equal(jsonTextDepth('{"k[[[":{}}'), 2, 'brackets in keys are text too');
  });

  it('stops as soon as the depth passes the bound, without recursion, even 200,000 levels deep', () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    assert.equal(jsonTextDepth(deep, 32), 33);
    assert.equal(jsonTextDepth(deep), 200_000);
    const value = JSON.parse(deep) as unknown;
    assert.equal(jsonValueDepth(value, 16), 17);
    assert.equal(jsonValueDepth(value), 200_000);
  });

  it('does not loop on unterminated strings or unbalanced text', () => {
    assert.equal(jsonTextDepth('{"a":"[[['), 1);
    assert.equal(jsonTextDepth(']]]{['), 2, 'a stray closing bracket does not hide the nesting after it');
    assert.equal(jsonTextDepth('"\\'), 0);
  });
});
