// A small simulated switch for tests: one VIP over four nexthops on a virtual clock.

import { VirtualClock } from '../../switch-sim/clock.js';
import { SimSwitch, type SimSwitchOptions } from '../../switch-sim/sim-switch.js';

export const VIP = '192.0.2.80';
export const NEXTHOPS = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];

export function testSwitch(over: Partial<SimSwitchOptions> = {}): { sw: SimSwitch; clock: VirtualClock } {
  const clock = new VirtualClock(1_000_000);
  const sw = new SimSwitch({
    hostname: 'sim1',
    hashSeed: 0x5eed,
    ecmpMode: 'resilient',
    bucketCount: 64,
    pinCapacity: 1500,
    uplink: {
      interface: 'Ethernet47',
      nexthop: '10.0.0.254',
      prefixes: ['10.100.0.0/16', '2001:db8:100::/48'],
    },
    mirrorFinRst: false,
    now: clock.now,
    ...over,
  });
  sw.addVip(VIP, NEXTHOPS);
  return { sw, clock };
}
