// `flowpin scenario --adapter gnmi`: a drain and an addition under live traffic on the
// simulated clock, with flowpin driving the simulator's gNMI target through its gNMI adapter
// (real gRPC on loopback: pins as OpenConfig policy-forwarding rules, the group as static-route
// next-hops) and learning each flow's server from the mirrored SYN-ACKs. No connection flowpin
// protects is broken, every reset is counted, and the pins really went through gNMI.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenarioOptions } from '../cli/scenario.js';
import { runScenario } from '../cli/scenario/runner.js';

test(
  'flowpin scenario --adapter gnmi: drain and add under traffic, zero protected connections broken',
  { timeout: 240_000 },
  async () => {
    const { opts, configs } = scenarioOptions([
      '--adapter',
      'gnmi',
      '--live',
      '400',
      '--rate',
      '100',
      '--configs',
      'on-change',
      '--gap-ms',
      '2000',
    ]);
    assert.equal(opts.resolution, 'observe', 'gNMI has no look-up: the scenario observes replies');
    assert.throws(() => scenarioOptions(['--adapter', 'gnmi', '--resolution', 'lookup']), /--resolution/);
    const r = await runScenario(configs[0] ?? 'on-change', opts);
    assert.equal(r.brokenProtected, 0, JSON.stringify(r));
    assert.equal(r.uncounted, 0, JSON.stringify(r));
    assert.ok(r.opened > 400, `only ${r.opened} connections`);
    assert.ok(r.pinPeak > 50, `the drain and the add pinned flows through gNMI (peak ${r.pinPeak})`);
    assert.equal(r.lookupsPer1000, 0, 'no look-up call reached the switch');
    assert.equal(r.changeApplyMs.length, 2, 'both changes were applied');
  },
);
