// Counts over the last hour in one-minute buckets: what a steady stream added more than an
// hour ago falls out (a count that only grew made every change need consent forever).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecentCounts } from '../controller/recent-counts.js';

test('counts of the last hour, per key; older ones fall out however steady the stream', () => {
  const c = new RecentCounts(3_600_000);
  const t0 = 10_000_000;
  c.add('a', t0, 5);
  c.add('b', t0);
  assert.equal(c.sum('a', t0), 5);
  assert.equal(c.sum('a', t0 + 3_500_000), 5);
  assert.equal(c.sum('a', t0 + 3_700_000), 0, 'an hour later it is gone');
  assert.deepEqual(c.keys(), ['b'], 'an empty key is dropped when read');
  // One event a second for two hours: the sum stays about an hour's worth.
  const d = new RecentCounts(3_600_000);
  for (let s = 0; s < 7200; s++) d.add('x', t0 + s * 1000);
  const sum = d.sum('x', t0 + 7199 * 1000);
  assert.ok(sum >= 3540 && sum <= 3600, `${sum} in the last hour`);
});
