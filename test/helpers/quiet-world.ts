// A scenario World with one switch and almost no traffic, for tests that drive the reconciler
// or a change by hand: four nexthops behind one VIP, a resilient group, an ample pin table,
// 20 ms of switch latency, flows that live an hour, the controller on the memory store with
// resyncs out of the way.

import { World } from '../../cli/scenario/world.js';

export const QUIET_VIP = '192.0.2.80';
export const QUIET_NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];

export function quietWorld(seed: number): World {
  return new World({
    switches: [
      {
        name: 'sw1',
        vips: [{ address: QUIET_VIP, nexthops: QUIET_NH, port: 443 }],
        spares: [],
        ecmpMode: 'resilient',
        pinCapacity: 10_000,
        programDelayMs: 0,
        rate: 0.001,
        lifetime: { kind: 'fixed', s: 3600 },
      },
    ],
    latencyMs: 20,
    mirrorDelayMs: 1,
    packetIntervalMs: 1000,
    seed,
    controller: {
      pinMode: 'on-change',
      settleMs: 20,
      barrierTimeoutMs: 3000,
      store: 'memory',
      resyncIntervalS: 3600,
    },
  });
}
