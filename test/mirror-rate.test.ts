// The SYN rate a change's unseen estimate rests on, in the first second after a start: a
// restarted instance (under `ha:` one that takes its switch back at once) holds a change
// within it, and a rate of 0 there made "connections opened while it was down" 0 too.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MirrorWatch, type VipRates } from '../controller/mirror-watch.js';

test(
  'the SYN rate in the first second after a start is measured from what was seen, not 0',
  { timeout: 10_000 },
  () => {
    let now = 1_000_000;
    const w = new MirrorWatch({ silenceS: 10, collapseRatio: 0.1, synOnlyAfter: 1000, now: () => now });
    const vip: VipRates = { syns: 0, synRate: 0, synsAtWindow: 0 };
    // 150 SYN/s for 0.8 s.
    for (let i = 0; i < 120; i++) {
      now += 1000 / 150;
      w.syn(vip, now);
    }
    const rate = w.rateOf(vip, [vip]);
    assert.ok(rate >= 120 && rate <= 200, `rate ${rate} after 120 SYNs in 0.8 s`);
    // Nothing seen yet: 0 is what was seen.
    const quiet: VipRates = { syns: 0, synRate: 0, synsAtWindow: 0 };
    assert.equal(w.rateOf(quiet, [vip, quiet]), 0);
  },
);
