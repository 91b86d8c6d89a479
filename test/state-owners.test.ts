// One owner of each switch's state: the reconciler writes what the switch should hold and
// what it holds, and shows the rest of flowpin read-only views. A write through a view is a
// compile error: each @ts-expect-error below must meet one, or `tsc` (the build before the
// tests, and lint) fails.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Reconciler } from '../controller/reconciler.js';

/** Never called: it only has to compile, with every write refused. */
/* eslint-disable @typescript-eslint/no-unsafe-call -- each call below is a compile error on purpose */
function writesThroughViews(r: Reconciler): void {
  // @ts-expect-error desired pins are set through want / unwant only
  r.desired.set('x', {});
  // @ts-expect-error installed pins are what the switch reported to the reconciler
  r.installed.delete('x');
  // @ts-expect-error desired groups are set through setGroup only
  r.desiredGroups.set('192.0.2.80', new Set());
  // @ts-expect-error the groups the switch has are read or written by the reconciler (groupRead at connect)
  r.groups.clear();
  // @ts-expect-error a member set of a view is read-only too
  r.groups.get('192.0.2.80')?.add('10.0.1.9');
  // @ts-expect-error failed pins are recorded and forgotten by the reconciler alone
  r.failed.delete('x');
  // @ts-expect-error the failed-pin view cannot be replaced either
  r.failed = new Map();
}
/* eslint-enable @typescript-eslint/no-unsafe-call */

test('the reconciler shows its state as read-only views', { timeout: 5000 }, () => {
  assert.equal(typeof writesThroughViews, 'function');
});
