import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SendTimes } from './send-times.js';

describe('SendTimes', () => {
  it('keeps a time per device boot and sequence, tells stored twice and foreign readings apart, and counts the holes between stored ones', () => {
    const t = new SendTimes();
    for (let seq = 1; seq <= 40; seq += 1) if (seq !== 7) t.add('d1', 'boot-a', seq, 1000 + seq);
    t.add('d1', 'boot-b', 1, 5000);
    t.add('d2', 'boot-c', 3, 6000);
    assert.equal(t.size, 41);
    assert.equal(t.get('d1', 'boot-a', 40), 1040, 'past the first growth of its array');
    assert.equal(t.get('d1', 'boot-a', 7), undefined, 'a sequence number never sent');
    assert.equal(t.get('d1', 'boot-b', 2), undefined);
    assert.equal(t.get('d3', 'boot-a', 1), undefined);

    assert.equal(t.markStored('d1', 'boot-a', 1), 'first');
    assert.equal(t.markStored('d1', 'boot-a', 1), 'twice');
    assert.equal(t.markStored('d1', 'boot-a', 7), 'foreign');
    assert.equal(t.markStored('d1', 'boot-a', 41), 'foreign');
    assert.equal(t.markStored('d2', 'boot-x', 3), 'foreign');
    for (const seq of [2, 3, 5, 6, 8, 10]) t.markStored('d1', 'boot-a', seq);
    assert.equal(t.markStored('d2', 'boot-c', 3), 'first');
    // Between 1 and 10: 4 and 9 sent and not stored; 7 was never sent.
    assert.equal(
      t.holes(() => true),
      2,
    );
    assert.equal(
      t.holes((id) => id !== 'd1'),
      0,
    );

    const copy = new SendTimes();
    copy.addSeries(structuredClone(t.toSeries()));
    assert.equal(copy.size, t.size);
    assert.equal(copy.get('d1', 'boot-a', 40), 1040);
    assert.equal(copy.get('d2', 'boot-c', 3), 6000);
  });
});
