// The one place the controller's calls to a switch adapter are timed: the adapter is wrapped
// once, when the controller takes it, and every call of an operation of the adapter contract
// (switch-adapters/contract.ts) is observed in flowpin_switch_call_seconds, by switch,
// adapter kind and operation, and counted in flowpin_switch_call_errors_total when it fails.
// Anything else passes through.

import type { SwitchAdapter } from '../switch-adapters/contract.js';
import type { ControllerMetrics } from './metrics.js';

/** The contract's operations: the bounded set of `operation` label values. */
export const OPERATIONS = [
  'connect',
  'resolve',
  'installPins',
  'removePins',
  'listPins',
  'removeStrays',
  'readPins',
  'pinTableUsage',
  'groupMembers',
  'groupProgrammed',
  'addGroupMember',
  'removeGroupMember',
  'fenceTakeover',
  'movedByAdd',
  'close',
] as const;
const timed = new Set<string | symbol>(OPERATIONS);

export function timedAdapter(
  adapter: SwitchAdapter,
  switchName: string,
  metrics: Pick<ControllerMetrics, 'switchCall' | 'switchCallErrors'>,
): SwitchAdapter {
  const wrapped = new Map<string | symbol, { fn: unknown; call: unknown }>();
  return new Proxy(adapter, {
    get(target, prop) {
      // The target as receiver: getters of the adapter see the adapter itself.
      const value: unknown = Reflect.get(target, prop);
      if (!timed.has(prop) || typeof value !== 'function') return value;
      const known = wrapped.get(prop);
      if (known !== undefined && known.fn === value) return known.call;
      const labels = { switch: switchName, adapter: target.kind, operation: String(prop) };
      const call = (...args: unknown[]): unknown => {
        const t0 = performance.now();
        const done = (): void => {
          metrics.switchCall.observe(labels, (performance.now() - t0) / 1000);
        };
        const failed = (err: unknown): never => {
          done();
          metrics.switchCallErrors.inc(labels);
          throw err;
        };
        let out: unknown;
        try {
          out = (value as (...a: unknown[]) => unknown).apply(target, args);
        } catch (err) {
          return failed(err);
        }
        if (out instanceof Promise) {
          return out.then((v: unknown) => {
            done();
            return v;
          }, failed);
        }
        done();
        return out;
      };
      wrapped.set(prop, { fn: value, call });
      return call;
    },
  });
}
