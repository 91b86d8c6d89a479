// Wraps an adapter that cannot resolve nexthops (gNMI) with resolution by observation: the
// server a flow reaches, as a switch mirroring the servers' SYN-ACKs would reveal it, read
// here from the simulated switch's forwarding. Every write (pins, group changes) and every
// read of pins and counters still goes through the wrapped adapter. Stands in for the
// controller's observation source in tests of an adapter's write path under traffic.

import type { AdapterCapabilities, FlowSpec, SwitchAdapter } from '../../switch-adapters/contract.js';
import type { SimSwitch } from '../../switch-sim/sim-switch.js';

export function withObservedResolution(inner: SwitchAdapter, sw: SimSwitch): SwitchAdapter {
  const capabilities: AdapterCapabilities = { ...inner.capabilities, resolvesNexthop: true, resolveBatchSize: 500 };
  const resolve = (flows: FlowSpec[]): Promise<(string | undefined)[]> => Promise.resolve(flows.map((f) => sw.ecmpNexthop(f.src, f.dst, 6, f.sport, f.dport)));
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'capabilities') return capabilities;
      if (prop === 'resolve') return resolve;
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
