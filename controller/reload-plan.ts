// What a configuration reload would change, from the running configuration and the new one
// (both validated and frozen by config.ts): the API tokens, switches added and removed, and per
// switch kept the VIPs added and removed, their nexthops and maxUnavailable. Those take effect
// at once; every other key is read at start only, so a new value for it refuses the reload
// whole, naming the keys (the running configuration stays). Pure: the controller checks the
// plan against what is running (changes in flight) and applies it (controller.ts, reload()).

import type { FlowpinConfig, SwitchConfig, VipConfig } from './config.js';
import { ConfigError, keyOf } from '../lib/validate.js';
import { adapterKind } from '../switch-adapters/registry.js';

type Path = (string | number)[];

export interface VipPlan {
  /** The VIP's key in the new file, e.g. `switches[0].vips[2]`. */
  key: string;
  address: string;
  nexthopsAdded: string[];
  nexthopsRemoved: string[];
  maxUnavailable?: { before: number; after: number };
}

export interface SwitchPlan {
  name: string;
  /** The switch's key in the new file. */
  key: string;
  vipsAdded: (VipConfig & { key: string })[];
  vipsRemoved: string[];
  /** VIPs kept whose nexthops or maxUnavailable changed. */
  vipsChanged: VipPlan[];
}

export interface ReloadPlan {
  tokens: { before: number; after: number; changed: boolean };
  switchesAdded: (SwitchConfig & { key: string })[];
  switchesRemoved: string[];
  switchesChanged: SwitchPlan[];
  /** Nothing differs. */
  empty: boolean;
}

/** Keys a reload applies: everything else of the configuration is read at start only. */
const LIVE_API = new Set(['token', 'tokens', 'readsNeedToken']);
const IGNORED_TOP = new Set(['file', 'warnings', 'switches']);
/** Derived fields, named by the key the file has. */
const KEY_OF_FIELD: Record<string, string> = { pinTableSizeSet: 'pinTableSize' };

/** The first few paths where two validated values differ (an array of another length differs as a whole). */
function differences(a: unknown, b: unknown, path: Path, out: Path[], limit = 4): void {
  if (out.length >= limit) return;
  if (Object.is(a, b)) return;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) out.push(path);
    else a.forEach((x, i) => differences(x, b[i], [...path, i], out, limit));
    return;
  }
  if (
    typeof a === 'object' &&
    a !== null &&
    typeof b === 'object' &&
    b !== null &&
    !Array.isArray(a) &&
    !Array.isArray(b)
  ) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys)
      differences(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        [...path, KEY_OF_FIELD[k] ?? k],
        out,
        limit,
      );
    return;
  }
  out.push(path);
}

/** A switch's fields as the file names them: its kind's settings under the kind's section key (`eapi`). */
function asFiled(s: Omit<SwitchConfig, 'vips'>): Record<string, unknown> {
  const { settings, ...rest } = s;
  const key = adapterKind(s.adapter).section?.key;
  return key === undefined ? rest : { ...rest, [key]: settings };
}

function restartOnly(file: string, paths: Path[]): never {
  const keys = [...new Set(paths.map(keyOf))];
  throw new ConfigError(
    file,
    keys.join(', '),
    `changed; ${keys.length === 1 ? 'it takes' : 'they take'} effect at a restart only (a reload applies API tokens, switches added or removed, and their VIPs, nexthops and maxUnavailable). Nothing was reloaded: the running configuration stays`,
  );
}

const tokenKey = (t: FlowpinConfig['api']['tokens'][number]): string => `${t.role}\n${t.name}\n${t.token}`;

export function planReload(cur: FlowpinConfig, next: FlowpinConfig): ReloadPlan {
  const diffs: Path[] = [];
  for (const k of Object.keys({ ...cur, ...next }) as (keyof FlowpinConfig)[]) {
    if (IGNORED_TOP.has(k)) continue;
    if (k === 'api') {
      for (const a of Object.keys({ ...cur.api, ...next.api }) as (keyof FlowpinConfig['api'])[])
        if (!LIVE_API.has(a)) differences(cur.api[a], next.api[a], ['api', a], diffs);
      continue;
    }
    differences(cur[k], next[k], [k], diffs);
  }
  const before = new Map(cur.switches.map((s) => [s.name, s]));
  const switchesAdded: ReloadPlan['switchesAdded'] = [];
  const switchesChanged: SwitchPlan[] = [];
  next.switches.forEach((s, i) => {
    const key = keyOf(['switches', i]);
    const old = before.get(s.name);
    if (old === undefined) {
      switchesAdded.push({ ...s, key });
      return;
    }
    const { vips: oldVips, ...oldRest } = old;
    const { vips: newVips, ...newRest } = s;
    differences(asFiled(oldRest), asFiled(newRest), ['switches', i], diffs);
    const was = new Map(oldVips.map((v) => [v.address, v]));
    const now = new Set(newVips.map((v) => v.address));
    const plan: SwitchPlan = {
      name: s.name,
      key,
      vipsAdded: [],
      vipsRemoved: oldVips.filter((v) => !now.has(v.address)).map((v) => v.address),
      vipsChanged: [],
    };
    newVips.forEach((v, j) => {
      const vkey = keyOf(['switches', i, 'vips', j]);
      const o = was.get(v.address);
      if (o === undefined) {
        plan.vipsAdded.push({ ...v, key: vkey });
        return;
      }
      const vp: VipPlan = {
        key: vkey,
        address: v.address,
        nexthopsAdded: v.nexthops.filter((n) => !o.nexthops.includes(n)),
        nexthopsRemoved: o.nexthops.filter((n) => !v.nexthops.includes(n)),
      };
      if (o.maxUnavailable !== v.maxUnavailable)
        vp.maxUnavailable = { before: o.maxUnavailable, after: v.maxUnavailable };
      if (vp.nexthopsAdded.length > 0 || vp.nexthopsRemoved.length > 0 || vp.maxUnavailable !== undefined)
        plan.vipsChanged.push(vp);
    });
    if (plan.vipsAdded.length > 0 || plan.vipsRemoved.length > 0 || plan.vipsChanged.length > 0)
      switchesChanged.push(plan);
  });
  if (diffs.length > 0) restartOnly(next.file, diffs);
  const kept = new Set(next.switches.map((s) => s.name));
  const switchesRemoved = cur.switches.filter((s) => !kept.has(s.name)).map((s) => s.name);
  const a = cur.api.tokens.map(tokenKey).sort();
  const b = next.api.tokens.map(tokenKey).sort();
  const tokens = {
    before: a.length,
    after: b.length,
    changed:
      a.length !== b.length ||
      a.some((x, i) => x !== b[i]) ||
      cur.api.readsNeedToken !== next.api.readsNeedToken,
  };
  return {
    tokens,
    switchesAdded,
    switchesRemoved,
    switchesChanged,
    empty:
      !tokens.changed &&
      switchesAdded.length === 0 &&
      switchesRemoved.length === 0 &&
      switchesChanged.length === 0,
  };
}
