// Scenario Worlds for the change tests, from one set of defaults: one switch `sw1` with four
// nexthops behind one VIP in a resilient group, a pin table of 10,000, 5 ms to program, one new
// connection a second living an hour; 5 ms of switch latency, the mirror 1 ms behind, a packet
// a second per connection; the controller pinning on change (settle 20 ms, barrier 3 s) on the
// memory store. A test states only what it changes.

import { World, type WorldOptions, type WorldSwitchOptions } from '../../cli/scenario/world.js';

export const WORLD_VIP = '192.0.2.80';
export const WORLD_NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];

/** A switch of the defaults, with `over` applied. */
export function worldSwitch(over: Partial<WorldSwitchOptions> = {}): WorldSwitchOptions {
  return {
    name: 'sw1',
    vips: [{ address: WORLD_VIP, nexthops: WORLD_NH, port: 443 }],
    spares: [],
    ecmpMode: 'resilient',
    pinCapacity: 10_000,
    programDelayMs: 5,
    rate: 1,
    lifetime: { kind: 'fixed', s: 3600 },
    ...over,
  };
}

export interface ChangeWorldOptions extends Partial<Omit<WorldOptions, 'controller' | 'switches'>> {
  seed: number;
  /** The one switch's departures from the defaults (ignored where `switches` is given). */
  sw?: Partial<WorldSwitchOptions>;
  switches?: WorldSwitchOptions[];
  controller?: Partial<NonNullable<WorldOptions['controller']>>;
}

/** The options of a World of the defaults, with the test's departures. */
export function changeWorldOptions(o: ChangeWorldOptions): WorldOptions {
  const { sw, switches, controller, ...rest } = o;
  return {
    latencyMs: 5,
    mirrorDelayMs: 1,
    packetIntervalMs: 1000,
    ...rest,
    switches: switches ?? [worldSwitch(sw)],
    controller: {
      pinMode: 'on-change',
      settleMs: 20,
      barrierTimeoutMs: 3000,
      store: 'memory',
      ...controller,
    },
  };
}

/** A World of the defaults, with the test's departures. */
export function changeWorld(o: ChangeWorldOptions): World {
  return new World(changeWorldOptions(o));
}
