import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Serial } from './serial.js';

it('runs pieces one at a time in call order, goes on after a failure, and waits for what was queued meanwhile', async () => {
  const s = new Serial();
  const order: string[] = [];
  const step =
    (name: string, fail = false) =>
    () =>
      new Promise<string>((resolve, reject) =>
        setImmediate(() => {
          order.push(name);
          if (fail) reject(new Error(name));
          else resolve(name);
        }),
      );
  const a = s.run(step('a'));
  const b = s.run(step('b', true));
  const c = s.run(async () => {
    order.push('c');
    void s.run(step('d'));
    return 'c';
  });
  assert.equal(await a, 'a');
  await assert.rejects(b, /b/);
  assert.equal(await c, 'c');
  await s.idle();
  assert.deepEqual(order, ['a', 'b', 'c', 'd']);
});
