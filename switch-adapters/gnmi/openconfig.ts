// Translation between flowpin's pins and group members and OpenConfig data, from the YANG of
// openconfig/public: a pin is a policy-forwarding rule
// (.../policy-forwarding/policies/policy[policy-id]/rules/rule[sequence-id]) matching
// `ipv4|ipv6/config/{source-address,destination-address,protocol}` (host prefixes) and
// `transport/config/{source-port,destination-port}`, with `action/config/next-hop`
// (openconfig-pf-forwarding-policies, openconfig-packet-match); the policy is applied with
// `.../policy-forwarding/interfaces/interface[interface-id]/config/apply-forwarding-policy`
// (openconfig-pf-interfaces). Group members are list entries found by a configurable
// template (static-route next-hops of openconfig-local-routing by default).

import { canonicalIp } from '../../lib/addr.js';
import {
  parsePath,
  type Notification,
  type Path,
  type PathElem,
  type TypedValue,
  type Update,
} from '../../proto/gnmi.js';
import type { FlowSpec, PinRule } from '../contract.js';

export interface PolicyLocation {
  networkInstance: string;
  policyId: string;
}

/** Where a VIP's group members live: a list whose entries carry the member address. */
export interface GroupPaths {
  /** Path of the member list, `{vip}` and `{len}` filled in; ends with the list name. */
  list: string;
  /** The list's key. */
  key: string;
  /** Leaf (relative to an entry) holding the member address. */
  addressLeaf: string;
  /** Leaf (relative to an entry) present once the member is in forwarding (applied state). */
  programmedLeaf: string;
}

export const STATIC_ROUTE_GROUP: GroupPaths = {
  list: '/network-instances/network-instance[name=default]/protocols/protocol[identifier=STATIC][name=STATIC]/static-routes/static[prefix={vip}/{len}]/next-hops/next-hop',
  key: 'index',
  addressLeaf: 'config/next-hop',
  programmedLeaf: 'state/next-hop',
};

export const policyPath = (p: PolicyLocation): PathElem[] => [
  { name: 'network-instances' },
  { name: 'network-instance', key: { name: p.networkInstance } },
  { name: 'policy-forwarding' },
  { name: 'policies' },
  { name: 'policy', key: { 'policy-id': p.policyId } },
];

export const rulesPath = (p: PolicyLocation): PathElem[] => [...policyPath(p), { name: 'rules' }];
export const rulePath = (p: PolicyLocation, seq: number): PathElem[] => [
  ...rulesPath(p),
  { name: 'rule', key: { 'sequence-id': String(seq) } },
];
export const interfacePath = (p: PolicyLocation, iface: string): PathElem[] => [
  { name: 'network-instances' },
  { name: 'network-instance', key: { name: p.networkInstance } },
  { name: 'policy-forwarding' },
  { name: 'interfaces' },
  { name: 'interface', key: { 'interface-id': iface } },
];

export const jsonIetf = (v: unknown): TypedValue => ({ json_ietf_val: Buffer.from(JSON.stringify(v)) });

/** The rule of a pin, as one JSON_IETF value for a replace of the whole rule. */
export function ruleUpdate(p: PolicyLocation, seq: number, pin: PinRule): Update {
  const f = pin.flow;
  const af = f.family === 6 ? 'ipv6' : 'ipv4';
  const len = f.family === 6 ? 128 : 32;
  return {
    path: { elem: rulePath(p, seq) },
    val: jsonIetf({
      'sequence-id': seq,
      config: { 'sequence-id': seq },
      [af]: {
        config: {
          'source-address': `${canonicalIp(f.src)}/${len}`,
          'destination-address': `${canonicalIp(f.dst)}/${len}`,
          protocol: 'openconfig-packet-match-types:IP_TCP',
        },
      },
      transport: { config: { 'source-port': f.sport, 'destination-port': f.dport } },
      action: { config: { 'next-hop': canonicalIp(pin.nexthop) } },
    }),
  };
}

/** A decoded leaf value: JSON (either flavour) or a scalar TypedValue. */
export function leafValue(v: TypedValue | null | undefined): unknown {
  if (v === undefined || v === null) return undefined;
  switch (v.value) {
    case 'json_ietf_val':
    case 'json_val':
      return JSON.parse(Buffer.from(v[v.value] ?? '').toString('utf8')) as unknown;
    case 'uint_val':
    case 'int_val':
      return Number(v[v.value]);
    case 'string_val':
    case 'ascii_val':
      return v[v.value];
    case 'bool_val':
      return v.bool_val;
    case 'double_val':
    case 'float_val':
      return v[v.value];
    default:
      return undefined;
  }
}

export interface FlatLeaf {
  elems: PathElem[];
  value: unknown;
}

/** Keys of the OpenConfig lists flowpin reads, to name list entries found in JSON arrays (RFC 7951 5.4). */
export const LIST_KEYS: Readonly<Record<string, readonly string[]>> = {
  'network-instance': ['name'],
  policy: ['policy-id'],
  rule: ['sequence-id'],
  interface: ['interface-id'],
  protocol: ['identifier', 'name'],
  static: ['prefix'],
  'next-hop': ['index'],
  component: ['name'],
  resource: ['name'],
  neighbor: ['neighbor-address'],
};

const bare = (k: string): string => (k.includes(':') ? k.slice(k.indexOf(':') + 1) : k);

/** Flattens notifications (prefix joined, JSON subtrees and list arrays expanded) into leaves. */
export function flatten(
  notifications: readonly Notification[],
  listKeys: Readonly<Record<string, readonly string[]>> = LIST_KEYS,
): FlatLeaf[] {
  const out: FlatLeaf[] = [];
  const path: PathElem[] = [];
  const walk = (v: unknown): void => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      out.push({ elems: [...path], value: v });
      return;
    }
    for (const k in v) {
      const sub = (v as Record<string, unknown>)[k];
      const name = bare(k);
      const keys = listKeys[name];
      if (Array.isArray(sub) && keys !== undefined) {
        for (const entry of sub) {
          if (typeof entry !== 'object' || entry === null) continue;
          const o: Record<string, unknown> = {};
          for (const ek in entry as Record<string, unknown>)
            o[bare(ek)] = (entry as Record<string, unknown>)[ek];
          const key: Record<string, string> = {};
          for (const kn of keys) key[kn] = typeof o[kn] === 'string' ? bare(o[kn]) : String(o[kn]);
          path.push({ name, key });
          walk(o);
          path.pop();
        }
      } else {
        path.push({ name });
        walk(sub);
        path.pop();
      }
    }
  };
  for (const n of notifications) {
    const prefix = n.prefix?.elem ?? [];
    for (const u of n.update ?? []) {
      path.length = 0;
      path.push(...prefix, ...(u.path?.elem ?? []));
      walk(leafValue(u.val));
    }
  }
  return out;
}

export interface RuleState {
  seq: number;
  flow?: FlowSpec;
  nexthop?: string;
  /** The rule's applied state is present (programmed). */
  applied: boolean;
  packets?: number;
  octets?: number;
}

const num = (v: unknown): number | undefined =>
  typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined;
const host = (v: unknown): string | undefined =>
  typeof v === 'string' ? canonicalIp(v.split('/')[0] ?? '') : undefined;

/** Rules by sequence id from leaves under the policy's rules (paths relative to `rulesPath`). */
export function parseRules(leaves: readonly FlatLeaf[], base: readonly PathElem[]): Map<number, RuleState> {
  const byRule = new Map<number, Map<string, unknown>>();
  const baseKeys = base.map((b) => Object.entries(b.key ?? {}));
  const inBase = (elems: readonly PathElem[]): boolean => {
    for (let i = 0; i < base.length; i++) {
      const e = elems[i];
      if (e === undefined || e.name !== (base[i] as PathElem).name) return false;
      for (const [k, v] of baseKeys[i] ?? []) if (e.key?.[k] !== v) return false;
    }
    return true;
  };
  for (const l of leaves) {
    if (l.elems.length <= base.length + 1 || l.elems[base.length]?.name !== 'rule' || !inBase(l.elems))
      continue;
    const seq = num(l.elems[base.length]?.key?.['sequence-id']);
    if (seq === undefined) continue;
    let m = byRule.get(seq);
    if (m === undefined) byRule.set(seq, (m = new Map<string, unknown>()));
    let rel = (l.elems[base.length + 1] as PathElem).name;
    for (let i = base.length + 2; i < l.elems.length; i++) rel += `/${(l.elems[i] as PathElem).name}`;
    m.set(rel, l.value);
  }
  const out = new Map<number, RuleState>();
  for (const [seq, m] of byRule) out.set(seq, ruleFrom(seq, m));
  return out;
}

/** A rule from its leaves (paths relative to the rule entry, as `ipv4/config/source-address`). */
function ruleFrom(seq: number, m: ReadonlyMap<string, unknown>): RuleState {
  const r: RuleState = { seq, applied: m.has('state/sequence-id') };
  const af = m.has('ipv6/config/source-address') ? 'ipv6' : 'ipv4';
  const src = host(m.get(`${af}/config/source-address`));
  const dst = host(m.get(`${af}/config/destination-address`));
  const sport = num(m.get('transport/config/source-port'));
  const dport = num(m.get('transport/config/destination-port'));
  if (src !== undefined && dst !== undefined && sport !== undefined && dport !== undefined)
    r.flow = { family: af === 'ipv6' ? 6 : 4, src, dst, sport, dport };
  const nh = m.get('action/config/next-hop');
  if (typeof nh === 'string') r.nexthop = canonicalIp(nh);
  const pk = num(m.get('state/matched-pkts'));
  const oc = num(m.get('state/matched-octets'));
  if (pk !== undefined) r.packets = pk;
  if (oc !== undefined) r.octets = oc;
  return r;
}

/**
 * Rules by sequence id from notifications of reads under the rules path (`base`), as
 * `parseRules(flatten(...))` gives them, without making a path for every leaf: an update at
 * the rules path (a JSON subtree of every rule, a listing's Get), at a rule or under one (a
 * leaf of a read-back or sample, a rule's state as a subtree) is read from its value directly;
 * any other shape is flattened.
 */
export function parseRuleNotifications(
  notifications: readonly Notification[],
  base: readonly PathElem[],
): Map<number, RuleState> {
  const byRule = new Map<number, Map<string, unknown>>();
  const leavesOf = (seq: number): Map<string, unknown> => {
    let m = byRule.get(seq);
    if (m === undefined) byRule.set(seq, (m = new Map<string, unknown>()));
    return m;
  };
  // Leaves of a JSON value at `rel` (a path relative to a rule entry), as flatten names them.
  const put = (m: Map<string, unknown>, rel: string, v: unknown): void => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      if (rel !== '') m.set(rel, v);
      return;
    }
    for (const k in v) put(m, rel === '' ? bare(k) : `${rel}/${bare(k)}`, (v as Record<string, unknown>)[k]);
  };
  const other: Notification[] = [];
  for (const n of notifications) {
    const prefix = n.prefix?.elem ?? [];
    const rest: Update[] = [];
    for (const u of n.update ?? []) {
      const elems = u.path?.elem ?? [];
      // Where the path continues below the rules path: its index in `elems`, else -1.
      const at =
        prefix.length === base.length && samePath(prefix, base)
          ? 0
          : prefix.length === 0 && elems.length >= base.length && samePath(elems.slice(0, base.length), base)
            ? base.length
            : -1;
      const rule = elems[at];
      if (at >= 0 && at === elems.length) {
        // The whole rules container: its rule list as an array of entries.
        const v = leafValue(u.val);
        if (typeof v !== 'object' || v === null || Array.isArray(v)) {
          rest.push(u);
          continue;
        }
        for (const k in v) {
          const list = (v as Record<string, unknown>)[k];
          if (bare(k) !== 'rule' || !Array.isArray(list)) continue;
          for (const entry of list as unknown[]) {
            if (typeof entry !== 'object' || entry === null) continue;
            const e = entry as Record<string, unknown>;
            let id: unknown;
            for (const ek in e) if (bare(ek) === 'sequence-id') id = e[ek];
            const seq = num(typeof id === 'string' ? bare(id) : String(id));
            if (seq !== undefined) put(leavesOf(seq), '', e);
          }
        }
      } else if (at >= 0 && rule?.name === 'rule') {
        const seq = num(rule.key?.['sequence-id']);
        if (seq === undefined) continue;
        let rel = '';
        for (let i = at + 1; i < elems.length; i++)
          rel += `${rel === '' ? '' : '/'}${(elems[i] as PathElem).name}`;
        put(leavesOf(seq), rel, leafValue(u.val));
      } else rest.push(u);
    }
    if (rest.length > 0) other.push({ ...n, update: rest });
  }
  if (other.length > 0)
    for (const l of flatten(other)) {
      const seq = num(l.elems[base.length]?.key?.['sequence-id']);
      if (
        seq === undefined ||
        l.elems.length <= base.length + 1 ||
        l.elems[base.length]?.name !== 'rule' ||
        !samePath(l.elems.slice(0, base.length), base)
      )
        continue;
      let rel = (l.elems[base.length + 1] as PathElem).name;
      for (let i = base.length + 2; i < l.elems.length; i++) rel += `/${(l.elems[i] as PathElem).name}`;
      leavesOf(seq).set(rel, l.value);
    }
  const out = new Map<number, RuleState>();
  for (const [seq, m] of byRule) out.set(seq, ruleFrom(seq, m));
  return out;
}

function samePath(a: readonly PathElem[], b: readonly PathElem[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as PathElem;
    const y = b[i] as PathElem;
    if (x.name !== y.name) return false;
    for (const k in y.key ?? {}) if (x.key?.[k] !== y.key?.[k]) return false;
  }
  return true;
}

/** The group list path of a VIP. */
export function groupListPath(g: GroupPaths, vip: string): Path {
  const v = canonicalIp(vip);
  return parsePath(g.list.replaceAll('{vip}', v).replaceAll('{len}', v.includes(':') ? '128' : '32'));
}
