// A change record's figure that must have been measured (a fresh change, not one resumed
// across a kill): null there would be a defect, so it fails the test.

import assert from 'node:assert/strict';

export function measured(v: number | null, what = 'figure'): number {
  assert.notEqual(v, null, `${what} was not measured`);
  return v as number;
}
