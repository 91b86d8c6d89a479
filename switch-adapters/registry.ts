// Every kind of switch flowpin can drive, and the adapter of a configured switch. A kind is
// added here and nowhere else (its folder exports it: kind.ts); the configuration's schema,
// its reader, the security warnings and the start-up check take what they need from this list.

import { eapiKind } from './arista-eapi/kind.js';
import type { SwitchAdapter } from './contract.js';
import { gnmiKind } from './gnmi/kind.js';
import type { AdapterKind } from './kind.js';
import { linuxKind } from './linux/kind.js';
import { simKind } from './sim/kind.js';

export const ADAPTER_KINDS: readonly AdapterKind[] = [eapiKind, gnmiKind, linuxKind, simKind];

/** The kind of a switch whose configuration names none. */
export const DEFAULT_KIND = eapiKind.kind;

const byName = new Map(ADAPTER_KINDS.map((k) => [k.kind, k]));

/** The kind named by a switch's `adapter` key (the configuration's schema admits only these). */
export function adapterKind(kind: string): AdapterKind {
  const k = byName.get(kind);
  if (k === undefined)
    throw new Error(`no switch adapter of kind '${kind}' (known: ${[...byName.keys()].join(', ')})`);
  return k;
}

/** A switch as the configuration gives it, as far as building its adapter goes. */
export interface ConfiguredSwitch {
  name: string;
  adapter: string;
  /** The kind's settings as its `read` returned them. */
  settings: unknown;
  vips: readonly { address: string; nexthops: readonly string[] }[];
  pinTableSize: number;
  /** Whether pinTableSize was configured (otherwise each kind takes its own default). */
  pinTableSizeSet: boolean;
}

/** Settings of the whole configuration an adapter needs besides its switch's own. */
export interface AdapterContext {
  /** The pins' idle timeout (`pinIdleTimeoutS`). */
  pinIdleTimeoutS: number;
}

export function createAdapter(sw: ConfiguredSwitch, ctx: AdapterContext): SwitchAdapter {
  const setup = {
    name: sw.name,
    vips: sw.vips,
    pinTableSize: sw.pinTableSizeSet ? sw.pinTableSize : undefined,
    pinIdleTimeoutS: ctx.pinIdleTimeoutS,
  };
  return adapterKind(sw.adapter).create(setup, sw.settings);
}

/** Every switch's adapter of a configuration, by switch name. */
export function createAdapters(config: {
  switches: readonly ConfiguredSwitch[];
  pinIdleTimeoutS: number;
}): Map<string, SwitchAdapter> {
  return new Map(
    config.switches.map((s) => [s.name, createAdapter(s, { pinIdleTimeoutS: config.pinIdleTimeoutS })]),
  );
}
