import assert from 'node:assert/strict';
import { it } from 'node:test';
import { GenerationalMap } from './generational-map.js';

it('holds recent keys, keeps keys in use, forgets the old generation, and stays bounded', () => {
  const m = new GenerationalMap<string, number>(10);
  for (let i = 0; i < 5; i += 1) m.set(`k${i}`, i); // fills the first generation: it turns over
  assert.equal(m.has('k1'), true, 'one turnover keeps the previous generation');
  assert.equal(m.get('k0'), 0, 'reading a key moves it to the current generation');
  for (let i = 5; i < 9; i += 1) m.set(`k${i}`, i); // the second turnover
  assert.equal(m.has('k1'), false, 'two turnovers forget a key nobody used');
  assert.equal(m.get('k0'), 0, 'a key in use survives');
  for (let i = 9; i < 30; i += 1) m.set(`k${i}`, i);
  assert.ok(m.size <= 10);
  assert.equal(m.get('k29'), 29);
  m.delete('k29');
  assert.equal(m.has('k29'), false, 'a deleted key is gone from either generation');
  m.clear();
  assert.equal(m.size, 0, 'clear empties both generations');
  assert.equal(m.get('k0'), undefined);
  const start = performance.now();
  const big = new GenerationalMap<string, true>(100_000);
  for (let i = 0; i < 300_000; i += 1) big.set(`id-${i}`, true);
  assert.ok(big.size <= 100_000);
  assert.equal(big.has('id-299999'), true);
  assert.equal(big.has('id-0'), false);
  assert.ok(performance.now() - start < 5_000);
});
