// The simulated switch seen through OpenConfig: a configuration datastore of leaves checked
// against schema.ts, and the state derived from the switch. Policy-forwarding rules take
// effect (become pins in the switch's pin table) only in a policy applied to the interface
// client traffic enters on, as on a device; each VIP's static route next-hops are its ECMP
// group. A rule's or next-hop's `state` mirrors its `config` once it is programmed (the
// OpenConfig convention that state reports the applied configuration); counters appear there.
// A SetRequest is applied to a staged copy and committed whole, or not at all (gNMI 3.4.3).

import { canonicalIp } from '../../mirror-receiver/addr.js';
import { joinPath, pathToString, type DataType, type Path, type PathElem, type SetRequest, type TypedValue, type Update, type UpdateResult } from '../../proto/gnmi.js';
import type { PinEntry, PinSpec } from '../pin-table.js';
import type { SimSwitch } from '../sim-switch.js';
import { checkValue, GnmiError, nodeByNames, protocolNumber, resolve, unqualified, type Scalar, type SchemaNode } from './schema.js';

export { GnmiError, type Scalar } from './schema.js';

export interface Leaf {
  elems: PathElem[];
  value: Scalar;
  node: SchemaNode;
}

export interface ModelOptions {
  /** The network instance the switch's routes and policies live in. */
  networkInstance: string;
  /** Name of the STATIC protocol instance holding the VIP routes. */
  staticProtocol: string;
  /** Component and resource that report the pin table's utilization. */
  pinTableComponent: string;
  pinTableResource: string;
}

const PIN_PREFIX = 'oc/';
/** Pin name of an OpenConfig rule. */
export const ruleName = (policy: string, seq: number): string => `${PIN_PREFIX}${policy}/${seq}`;

const keyOf = (elems: readonly PathElem[]): string => pathToString({ elem: [...elems] });

/** A path key followed by the start of a child element or of its own list keys. */
const boundary = (c: string | undefined): boolean => c === '/' || c === '[';

/**
 * Removes every leaf at or under any of the paths `ats` (keyOf form), in one pass over the
 * store: a leaf goes when its key, or a prefix of it ending at an element or key boundary,
 * is one of them.
 */
function removeUnderAll(store: Store, ats: ReadonlySet<string>): void {
  if (ats.size === 0) return;
  let shortest = Infinity;
  for (const a of ats) shortest = Math.min(shortest, a.length);
  for (const k of store.keys()) {
    if (ats.has(k)) {
      store.delete(k);
      continue;
    }
    for (let i = shortest; i < k.length; i++) {
      if (boundary(k[i]) && ats.has(k.slice(0, i))) {
        store.delete(k);
        break;
      }
    }
  }
}

/** Whether one of these path keys is repeated or lies under another. */
function nested(keys: readonly string[]): boolean {
  const set = new Set(keys);
  if (set.size !== keys.length) return true;
  for (const k of keys) {
    for (let i = 1; i < k.length; i++) if (boundary(k[i]) && set.has(k.slice(0, i))) return true;
  }
  return false;
}

/** Whether `elems` lies under `query` (keys in the query must match; '*' or no key matches any). */
export function under(elems: readonly PathElem[], query: readonly PathElem[]): boolean {
  if (query.length > elems.length) return false;
  for (let i = 0; i < query.length; i++) {
    const q = query[i] as PathElem;
    const e = elems[i] as PathElem;
    if (q.name !== e.name) return false;
    for (const [k, v] of Object.entries(q.key ?? {})) if (v !== '*' && e.key?.[k] !== v) return false;
  }
  return true;
}

/** The configuration datastore: leaves by their path text. */
type Store = Map<string, Leaf>;

/** Configuration survives a restart of the target's server (a device keeps its saved configuration). */
const stores = new WeakMap<SimSwitch, Store>();

/** The value of a TypedValue as a plain JS value (JSON parsed). */
export function typedToValue(t: TypedValue | undefined, where: string): unknown {
  const which = t?.value;
  if (t === undefined || t === null || which === undefined) throw new GnmiError('INVALID_ARGUMENT', `${where}: no value`);
  switch (which) {
    case 'json_ietf_val':
    case 'json_val': {
      try {
        return JSON.parse(Buffer.from(t[which] ?? '').toString('utf8')) as unknown;
      } catch {
        throw new GnmiError('INVALID_ARGUMENT', `${where}: value is not valid JSON`);
      }
    }
    case 'uint_val':
    case 'int_val':
      return Number(t[which]);
    case 'string_val':
    case 'ascii_val':
      return t[which];
    case 'bool_val':
      return t.bool_val;
    case 'double_val':
    case 'float_val':
      return t[which];
    default:
      throw new GnmiError('UNIMPLEMENTED', `${where}: value type ${which} is not supported`);
  }
}

interface RuleView {
  policy: string;
  seq: number;
  spec: PinSpec | undefined;
  family: 4 | 6 | undefined;
}

export class OpenConfigModel {
  private store: Store;

  constructor(
    readonly sw: SimSwitch,
    readonly options: ModelOptions,
  ) {
    let s = stores.get(sw);
    if (s === undefined) {
      s = new Map();
      stores.set(sw, s);
    }
    this.store = s;
  }

  private get ni(): PathElem[] {
    return [{ name: 'network-instances' }, { name: 'network-instance', key: { name: this.options.networkInstance } }];
  }

  private get staticBase(): PathElem[] {
    return [...this.ni, { name: 'protocols' }, { name: 'protocol', key: { identifier: 'STATIC', name: this.options.staticProtocol } }, { name: 'static-routes' }];
  }

  /** Every leaf, configuration and state, optionally of one data type. */
  leaves(type: DataType = 'ALL', within?: readonly (readonly PathElem[])[]): Leaf[] {
    this.importGroups(this.store);
    const cfg = [...this.store.values()];
    const out: Leaf[] = [];
    const want = (l: Leaf): boolean => type === 'ALL' || (type === 'CONFIG' ? l.node.config : type === 'STATE' ? !l.node.config : l.node.counter);
    // Only leaves under one of the queries (when given) are built at all.
    const inScope = (elems: readonly PathElem[]): boolean => within === undefined || within.some((q) => under(elems, q));
    const push = (l: Leaf): void => {
      if (want(l) && inScope(l.elems)) out.push(l);
    };
    // List key leaves directly under each entry (leafrefs to config/<key>).
    for (const l of cfg) {
      push(l);
      const entry = l.elems.at(-3);
      if (l.elems.at(-2)?.name !== 'config' || entry?.key?.[l.node.name] === undefined) continue;
      const elems = [...l.elems.slice(0, -2), { name: l.node.name }];
      if (inScope(elems)) push({ elems, value: l.value, node: nodeByNames(elems.map((e) => e.name)) as SchemaNode });
    }
    // Applied state: config mirrored under state once in effect.
    for (const l of cfg) {
      const i = l.elems.map((e) => e.name).lastIndexOf('config');
      if (i < 0) continue;
      const elems = [...l.elems.slice(0, i), { name: 'state' }, ...l.elems.slice(i + 1)];
      if (!inScope(elems) || !this.applied(l.elems)) continue;
      push({ elems, value: l.value, node: nodeByNames(elems.map((e) => e.name)) as SchemaNode });
    }
    for (const r of this.rules(this.store)) {
      const counters = [...this.ruleElems(r.policy, r.seq), { name: 'state' }];
      if (!inScope([...counters, { name: 'matched-pkts' }]) && !inScope([...counters, { name: 'matched-octets' }])) continue;
      const e = this.sw.pins.get(ruleName(r.policy, r.seq));
      if (e?.status !== 'programmed') continue;
      const base = [...this.ruleElems(r.policy, r.seq), { name: 'state' }];
      for (const [name, value] of [['matched-pkts', e.packets], ['matched-octets', e.bytes]] as const) {
        const elems = [...base, { name }];
        push({ elems, value, node: nodeByNames(elems.map((e) => e.name)) as SchemaNode });
      }
    }
    // The pin table's utilization (openconfig-platform resource utilization).
    const t = this.sw.pins;
    const used = t.capacity - t.free;
    const res: PathElem[] = [{ name: 'components' }, { name: 'component', key: { name: this.options.pinTableComponent } }, { name: 'integrated-circuit' }, { name: 'utilization' }, { name: 'resources' }, { name: 'resource', key: { name: this.options.pinTableResource } }];
    for (const [elems, value] of [
      [[{ name: 'components' }, { name: 'component', key: { name: this.options.pinTableComponent } }, { name: 'name' }], this.options.pinTableComponent],
      [[{ name: 'components' }, { name: 'component', key: { name: this.options.pinTableComponent } }, { name: 'state' }, { name: 'name' }], this.options.pinTableComponent],
      [[...res, { name: 'name' }], this.options.pinTableResource],
      [[...res, { name: 'state' }, { name: 'name' }], this.options.pinTableResource],
      [[...res, { name: 'state' }, { name: 'used' }], used],
      [[...res, { name: 'state' }, { name: 'free' }], t.free],
      [[...res, { name: 'state' }, { name: 'max-limit' }], t.capacity],
    ] as [PathElem[], Scalar][]) {
      const node = nodeByNames(elems.map((e) => e.name)) as SchemaNode;
      // The component's own config/name is config: served as state only.
      push({ elems, value, node });
    }
    // The neighbour tables (openconfig-if-ip): each server's address and MAC on its interface.
    for (const [address, att] of this.sw.attachments) {
      const family = address.includes(':') ? 'ipv6' : 'ipv4';
      const n: PathElem[] = [{ name: 'interfaces' }, { name: 'interface', key: { name: att.via } }, { name: 'subinterfaces' }, { name: 'subinterface', key: { index: '0' } }, { name: family }, { name: 'neighbors' }, { name: 'neighbor', key: { ip: address } }];
      for (const [elems, value] of [
        [[...n, { name: 'ip' }], address],
        [[...n, { name: 'state' }, { name: 'ip' }], address],
        [[...n, { name: 'state' }, { name: 'link-layer-address' }], att.mac],
        [[...n, { name: 'state' }, { name: 'origin' }], 'DYNAMIC'],
      ] as [PathElem[], Scalar][]) push({ elems, value, node: nodeByNames(elems.map((e) => e.name)) as SchemaNode });
    }
    return out;
  }

  /** Whether the configuration at `elems` is in effect. */
  private applied(elems: PathElem[]): boolean {
    const names = elems.map((e) => e.name);
    const ruleAt = names.indexOf('rule');
    if (ruleAt >= 0) {
      const policy = elems[ruleAt - 2]?.key?.['policy-id'] ?? '';
      const seq = Number(elems[ruleAt]?.key?.['sequence-id']);
      return this.sw.pins.get(ruleName(policy, seq))?.status === 'programmed';
    }
    const nhAt = names.indexOf('next-hop');
    if (nhAt >= 0 && names[nhAt - 1] === 'next-hops') {
      const prefix = elems[nhAt - 2]?.key?.['prefix'] ?? '';
      const addr = this.store.get(keyOf([...elems.slice(0, nhAt + 1), { name: 'config' }, { name: 'next-hop' }]))?.value;
      return typeof addr === 'string' && this.sw.programmedMembers(prefix.split('/')[0] ?? '').includes(addr);
    }
    return true;
  }

  private ruleElems(policy: string, seq: number): PathElem[] {
    return [...this.ni, { name: 'policy-forwarding' }, { name: 'policies' }, { name: 'policy', key: { 'policy-id': policy } }, { name: 'rules' }, { name: 'rule', key: { 'sequence-id': String(seq) } }];
  }

  /** Brings the static routes in `store` in line with the switch's groups (changed by other means too). */
  private importGroups(store: Store): void {
    const base = this.staticBase;
    const hostLen = (a: string): number => (a.includes(':') ? 128 : 32);
    const present = new Map<string, Map<string, string>>(); // prefix -> index -> address
    for (const l of store.values()) {
      if (!under(l.elems, base) || l.elems.at(-1)?.name !== 'next-hop' || l.elems.at(-2)?.name !== 'config') continue;
      const prefix = l.elems[base.length]?.key?.['prefix'] ?? '';
      const index = l.elems[base.length + 2]?.key?.['index'] ?? '';
      if (!present.has(prefix)) present.set(prefix, new Map());
      present.get(prefix)?.set(index, String(l.value));
    }
    const staticPrefixes = new Set([...store.values()].filter((l) => under(l.elems, base) && l.elems.length > base.length).map((l) => l.elems[base.length]?.key?.['prefix'] ?? ''));
    const vipPrefixes = new Set<string>();
    for (const vip of this.sw.vips.values()) {
      const prefix = `${vip.address}/${hostLen(vip.address)}`;
      vipPrefixes.add(prefix);
      const members = vip.group.members();
      const have = present.get(prefix) ?? new Map<string, string>();
      for (const [index, addr] of have) if (!members.includes(addr)) this.removeUnder(store, [...base, { name: 'static', key: { prefix } }, { name: 'next-hops' }, { name: 'next-hop', key: { index } }]);
      const haveAddrs = new Set(have.values());
      for (const m of members) if (!haveAddrs.has(m)) this.put(store, [...base, { name: 'static', key: { prefix } }, { name: 'next-hops' }, { name: 'next-hop', key: { index: m } }, { name: 'config' }, { name: 'next-hop' }], m);
      if (!staticPrefixes.has(prefix)) this.put(store, [...base, { name: 'static', key: { prefix } }, { name: 'config' }, { name: 'prefix' }], prefix);
    }
    for (const p of staticPrefixes) if (!vipPrefixes.has(p)) this.removeUnder(store, [...base, { name: 'static', key: { prefix: p } }]);
  }

  /** Removes every leaf at or under `elems` (every key of every list named). */
  private removeUnder(store: Store, elems: PathElem[]): void {
    removeUnderAll(store, new Set([keyOf(elems)]));
  }

  /** Stores a config leaf, with the config key leaves of every list entry on its path. */
  private put(store: Store, elems: PathElem[], value: Scalar): void {
    const { nodes } = resolve(elems, '');
    nodes.forEach((n, i) => {
      if (n.kind !== 'list') return;
      const cfg = n.children.get('config');
      for (const k of n.keys) {
        const kn = cfg?.children.get(k.name);
        const kv = elems[i]?.key?.[k.name];
        if (kn === undefined || kv === undefined) continue;
        const ke = [...elems.slice(0, i + 1), { name: 'config' }, { name: k.name }];
        const kk = keyOf(ke);
        if (!store.has(kk)) store.set(kk, { elems: ke, value: checkValue(kn.type ?? { t: 'string' }, kv, ''), node: kn });
      }
    });
    store.set(keyOf(elems), { elems, value, node: nodes.at(-1) as SchemaNode });
  }

  /** Applies a SetRequest as one transaction; throws GnmiError and changes nothing on failure. */
  applySet(req: SetRequest): UpdateResult[] {
    const unionReplace = req.union_replace ?? [];
    if (unionReplace.length > 0 && ((req.delete ?? []).length > 0 || (req.replace ?? []).length > 0 || (req.update ?? []).length > 0)) {
      throw new GnmiError('INVALID_ARGUMENT', 'a SetRequest with union_replace must not carry delete, replace or update (gNMI 3.4)');
    }
    this.importGroups(this.store);
    const staged: Store = new Map(this.store);
    const results: UpdateResult[] = [];
    const deleted = new Set<string>();
    for (const p of req.delete ?? []) {
      const { elems, nodes, where } = this.target(req.prefix, p);
      const last = nodes.at(-1);
      const parentList = nodes.at(-3);
      if (last?.kind === 'leaf' && ((nodes.at(-2)?.kind === 'list') || (nodes.at(-2)?.name === 'config' && parentList?.kind === 'list' && parentList.keys.some((k) => k.name === last.name)))) {
        throw new GnmiError('INVALID_ARGUMENT', `${where}: a list key cannot be deleted on its own; delete the list entry`);
      }
      deleted.add(keyOf(elems));
      results.push({ path: p, op: 'DELETE' });
    }
    removeUnderAll(staged, deleted);
    // A replace removes what is under its path first. Where no replaced path lies under another
    // (many rules in one request), the removals are made in one pass over the store.
    const replaced = [...unionReplace, ...(req.replace ?? [])].map((u) => keyOf(this.target(req.prefix, u.path).elems));
    const removedFirst = !nested(replaced);
    if (removedFirst) removeUnderAll(staged, new Set(replaced));
    // union_replace with one origin (OpenConfig) is a replace of the union of its updates
    // (gnmi-union_replace.md); CLI and native origins are refused in target().
    for (const u of unionReplace) this.write(staged, req.prefix, u, true, 'UNION_REPLACE', results, removedFirst);
    for (const u of req.replace ?? []) this.write(staged, req.prefix, u, true, 'REPLACE', results, removedFirst);
    for (const u of req.update ?? []) this.write(staged, req.prefix, u, false, 'UPDATE', results);
    this.commit(staged);
    return results;
  }

  private target(prefix: Path | undefined, p: Path | undefined): { elems: PathElem[]; nodes: SchemaNode[]; where: string } {
    const joined = joinPath(prefix, p);
    const where = pathToString({ elem: joined });
    checkOrigin(prefix, p, where);
    const r = resolve(joined, where);
    if (r.wildcard) throw new GnmiError('INVALID_ARGUMENT', `${where}: Set paths name every key, without wildcards`);
    if (r.nodes.length === 0) throw new GnmiError('UNIMPLEMENTED', `${where}: a Set of the whole tree is not implemented`);
    if (r.nodes.some((n) => !n.config)) throw new GnmiError('INVALID_ARGUMENT', `${where}: state data is read-only`);
    if (r.elems[0]?.name === 'components') throw new GnmiError('UNIMPLEMENTED', `${where}: component configuration is not implemented`);
    if (r.elems[0]?.name === 'interfaces') throw new GnmiError('UNIMPLEMENTED', `${where}: interface configuration is not implemented`);
    const ni = r.elems[1]?.key?.['name'];
    if (ni !== undefined && ni !== this.options.networkInstance) throw new GnmiError('UNIMPLEMENTED', `${where}: this target has one network instance, '${this.options.networkInstance}'`);
    const proto = r.elems[3];
    if (r.elems[2]?.name === 'protocols' && proto?.key !== undefined) {
      if (proto.key['identifier'] !== 'STATIC' || proto.key['name'] !== this.options.staticProtocol) {
        throw new GnmiError('UNIMPLEMENTED', `${where}: this target configures one routing protocol instance, STATIC '${this.options.staticProtocol}'`);
      }
    }
    return { elems: r.elems, nodes: r.nodes, where };
  }

  private write(store: Store, prefix: Path | undefined, u: Update, replace: boolean, op: UpdateResult['op'], results: UpdateResult[], removed = false): void {
    const { elems, nodes, where } = this.target(prefix, u.path);
    const value = typedToValue(u.val, where);
    if (replace) {
      const last = nodes.at(-1) as SchemaNode;
      if (last.kind === 'list' && elems.at(-1)?.key !== undefined && isObject(value) && Object.keys(value).length === 0) {
        throw new GnmiError('INVALID_ARGUMENT', `${where}: replacing a list entry with {} would leave it keyless (gNMI 3.4.4)`);
      }
      if (value === null) throw new GnmiError('INVALID_ARGUMENT', `${where}: replace with a null value`);
      if (!removed) removeUnderAll(store, new Set([keyOf(elems)]));
    }
    this.writeValue(store, elems, nodes.at(-1) as SchemaNode, value, where);
    results.push({ path: u.path ?? {}, op });
  }

  private writeValue(store: Store, elems: PathElem[], node: SchemaNode, value: unknown, where: string): void {
    if (node.kind === 'leaf') {
      const v = checkValue(node.type ?? { t: 'string' }, value, where);
      // A key leaf must agree with the key in the path.
      const parent = elems.at(-2);
      const entry = parent?.name === 'config' ? elems.at(-3) : parent;
      const keyVal = entry?.key?.[node.name];
      if (keyVal !== undefined && keyVal !== String(v)) throw new GnmiError('INVALID_ARGUMENT', `${where}: '${String(v)}' does not match the list key ${node.name}=${keyVal}`);
      // The key leaf under the entry itself refers to config/<key>.
      if (parent?.key !== undefined && keyVal !== undefined) this.put(store, [...elems.slice(0, -1), { name: 'config' }, { name: node.name }], v);
      else this.put(store, elems, v);
      return;
    }
    if (node.kind === 'list' && elems.at(-1)?.key === undefined) {
      if (!Array.isArray(value)) throw new GnmiError('INVALID_ARGUMENT', `${where}: expected a JSON array of ${node.name} entries`);
      for (const item of value) {
        if (!isObject(item)) throw new GnmiError('INVALID_ARGUMENT', `${where}: expected JSON objects in the list`);
        const o = unqualifyKeys(item);
        const key: Record<string, string> = {};
        for (const k of node.keys) {
          const kv = o[k.name] ?? (isObject(o['config']) ? unqualifyKeys(o['config'])[k.name] : undefined);
          if (kv === undefined) throw new GnmiError('INVALID_ARGUMENT', `${where}: list entry without its key '${k.name}'`);
          key[k.name] = String(checkValue(k.type, kv, `${where} key ${k.name}`));
        }
        const entry = [...elems.slice(0, -1), { name: node.name, key }];
        this.writeValue(store, entry, node, o, `${where}[${Object.values(key).join(',')}]`);
      }
      return;
    }
    if (!isObject(value)) throw new GnmiError('INVALID_ARGUMENT', `${where}: expected a JSON object for ${node.kind} '${node.name}'`);
    const o = unqualifyKeys(value);
    if (node.kind === 'list') this.put(store, [...elems, { name: 'config' }, { name: node.keys[0]?.name ?? '' }], checkValue(node.keys[0]?.type ?? { t: 'string' }, elems.at(-1)?.key?.[node.keys[0]?.name ?? ''] ?? '', where));
    for (const [name, sub] of Object.entries(o)) {
      const child = node.children.get(name);
      if (child === undefined) throw new GnmiError('UNIMPLEMENTED', `${where}/${name}: not implemented`);
      if (!child.config) throw new GnmiError('INVALID_ARGUMENT', `${where}/${name}: state data is read-only`);
      this.writeValue(store, [...elems, { name }], child, sub, `${where}/${name}`);
    }
  }

  /** The rules of the configuration, with the pin each would program. */
  private rules(store: Store): RuleView[] {
    const byRule = new Map<string, { policy: string; seq: number; leaves: Map<string, Scalar> }>();
    const pf = [...this.ni, { name: 'policy-forwarding' }, { name: 'policies' }];
    for (const l of store.values()) {
      if (!under(l.elems, pf) || l.elems[pf.length + 2]?.name !== 'rule') continue;
      const policy = l.elems[pf.length]?.key?.['policy-id'] ?? '';
      const seq = Number(l.elems[pf.length + 2]?.key?.['sequence-id']);
      const k = ruleName(policy, seq);
      if (!byRule.has(k)) byRule.set(k, { policy, seq, leaves: new Map() });
      byRule.get(k)?.leaves.set(l.elems.slice(pf.length + 3).map((e) => e.name).join('/'), l.value);
    }
    return [...byRule.values()].map(({ policy, seq, leaves }) => {
      const has4 = [...leaves.keys()].some((k) => k.startsWith('ipv4/'));
      const has6 = [...leaves.keys()].some((k) => k.startsWith('ipv6/'));
      if (has4 && has6) throw new GnmiError('INVALID_ARGUMENT', `rule ${policy}/${seq}: matches both ipv4 and ipv6`);
      const af = has6 ? 'ipv6' : 'ipv4';
      const host = (k: string): string | undefined => {
        const v = leaves.get(`${af}/config/${k}`);
        if (v === undefined) return undefined;
        const [a = '', len] = String(v).split('/');
        if (len !== (af === 'ipv6' ? '128' : '32')) throw new GnmiError('UNIMPLEMENTED', `rule ${policy}/${seq}: ${af}/config/${k} '${String(v)}': this target matches host prefixes only`);
        return canonicalIp(a);
      };
      const nexthop = leaves.get('action/config/next-hop');
      const discard = leaves.get('action/config/discard') === true;
      const family = has4 ? 4 : has6 ? 6 : undefined;
      const match: PinSpec['match'] = {};
      if (family !== undefined) match.family = family;
      const src = host('source-address');
      const dst = host('destination-address');
      const proto = leaves.get(`${af}/config/protocol`);
      const sport = leaves.get('transport/config/source-port');
      const dport = leaves.get('transport/config/destination-port');
      if (src !== undefined) match.src = src;
      if (dst !== undefined) match.dst = dst;
      if (proto !== undefined) match.protocol = protocolNumber(proto);
      if (sport !== undefined) match.sport = Number(sport);
      if (dport !== undefined) match.dport = Number(dport);
      if (typeof nexthop === 'string' && nexthop.includes(':') !== (family === 6) && family !== undefined) throw new GnmiError('INVALID_ARGUMENT', `rule ${policy}/${seq}: next-hop ${nexthop} is not of the rule's address family`);
      const spec: PinSpec | undefined = nexthop !== undefined || discard ? { source: 'openconfig', match, idleTimeoutS: 0, hardTimeoutS: 0, persistent: true, priority: 0, ...(nexthop === undefined || discard ? {} : { nexthop: String(nexthop) }) } : undefined;
      return { policy, seq, spec, family };
    });
  }

  /** Validates the staged configuration, checks capacity, then makes it the running one. */
  private commit(staged: Store): void {
    const pf = [...this.ni, { name: 'policy-forwarding' }];
    const policies = new Map<string, Scalar | undefined>();
    const applied = new Set<string>();
    for (const l of staged.values()) {
      if (!under(l.elems, pf)) continue;
      const rest = l.elems.slice(pf.length).map((e) => e.name).join('/');
      if (rest.startsWith('policies/policy')) {
        const id = l.elems[pf.length + 1]?.key?.['policy-id'] ?? '';
        if (!policies.has(id)) policies.set(id, undefined);
        if (rest === 'policies/policy/config/type') policies.set(id, l.value);
      }
    }
    for (const l of staged.values()) {
      if (!under(l.elems, pf) || l.elems.at(-1)?.name !== 'apply-forwarding-policy') continue;
      const id = String(l.value);
      const iface = l.elems[pf.length + 1]?.key?.['interface-id'] ?? '';
      // A leafref: the policy must exist, and be usable for forwarding actions.
      if (!policies.has(id)) throw new GnmiError('INVALID_ARGUMENT', `interface ${iface}: apply-forwarding-policy '${id}' names no policy`);
      if (policies.get(id) === 'VRF_SELECTION_POLICY') throw new GnmiError('INVALID_ARGUMENT', `interface ${iface}: policy '${id}' is a VRF_SELECTION_POLICY`);
      if (iface === this.sw.options.uplink.interface) applied.add(id);
    }
    const rules = this.rules(staged);
    const desired = new Map<string, PinSpec>();
    for (const r of rules) if (r.spec !== undefined && applied.has(r.policy)) desired.set(ruleName(r.policy, r.seq), r.spec);
    const groups = this.groupsOf(staged);

    // Capacity: new entries must fit in what is free, counting entries still being programmed.
    const current = new Map<string, PinEntry>();
    for (const e of this.sw.pins.all()) if (e.source === 'openconfig' && e.name.startsWith(PIN_PREFIX)) current.set(e.name, e);
    const removed = [...current.values()].filter((e) => !desired.has(e.name) || !sameSpec(e, desired.get(e.name) as PinSpec));
    const added = [...desired].filter(([name, spec]) => !current.has(name) || !sameSpec(current.get(name) as PinEntry, spec));
    const removedNames = new Set(removed.map((e) => e.name));
    const pendingOthers = this.sw.pins.all().filter((e) => e.status === 'pending' && !removedNames.has(e.name)).length;
    const room = this.sw.pins.free + removed.filter((e) => e.status === 'programmed').length - pendingOthers;
    if (added.length > room) throw new GnmiError('RESOURCE_EXHAUSTED', `pin table full: ${added.length} rules to program, ${Math.max(0, room)} entries free`);

    this.store = staged;
    stores.set(this.sw, staged);
    const now = this.sw.now();
    for (const e of removed) this.sw.pins.remove(e.name);
    for (const [name, spec] of added) this.sw.pins.upsert(name, spec, now);
    for (const [vip, members] of groups) {
      const live = this.sw.vips.get(vip)?.group.members() ?? [];
      for (const m of live) if (!members.includes(m)) this.sw.groupRemove(vip, m);
      for (const m of members) if (!live.includes(m)) this.sw.groupAdd(vip, m);
    }
    for (const v of [...this.sw.vips.keys()]) if (!groups.has(v)) for (const m of this.sw.vips.get(v)?.group.members() ?? []) this.sw.groupRemove(v, m);
  }

  /** VIP -> next-hop addresses of the STATIC routes in `store`. */
  private groupsOf(store: Store): Map<string, string[]> {
    const base = this.staticBase;
    const out = new Map<string, string[]>();
    for (const l of store.values()) {
      if (!under(l.elems, base) || l.elems.length <= base.length) continue;
      const prefix = l.elems[base.length]?.key?.['prefix'] ?? '';
      const [addr = '', len] = prefix.split('/');
      if (len !== (addr.includes(':') ? '128' : '32')) throw new GnmiError('UNIMPLEMENTED', `static route ${prefix}: this target routes host prefixes (VIPs) only`);
      const list = out.get(addr) ?? [];
      out.set(addr, list);
      if (l.elems.at(-1)?.name === 'next-hop' && l.elems.at(-2)?.name === 'config' && !list.includes(String(l.value))) list.push(String(l.value));
    }
    return out;
  }

  /** A device restart: pins are programmed again from the saved configuration, counters start at zero. */
  restart(): void {
    const now = this.sw.now();
    for (const e of this.sw.pins.all()) {
      if (e.source !== 'openconfig' || !e.name.startsWith(PIN_PREFIX)) continue;
      const { name, status: _s, packets: _p, bytes: _b, createdAt: _c, lastMatchAt: _l, programAt: _a, ...spec } = e;
      this.sw.pins.upsert(name, spec, now);
    }
  }
}

function checkOrigin(prefix: Path | undefined, p: Path | undefined, where: string): void {
  for (const x of [prefix, p]) {
    if ((x?.element ?? []).length > 0) throw new GnmiError('INVALID_ARGUMENT', `${where}: the deprecated 'element' path field is not supported; use 'elem'`);
  }
  const origin = p?.origin || prefix?.origin || '';
  if (origin !== '' && origin !== 'openconfig') throw new GnmiError('UNIMPLEMENTED', `${where}: origin '${origin}' is not implemented (only OpenConfig)`);
}

export { checkOrigin };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Drops RFC 7951 module qualifiers from member names. */
function unqualifyKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [unqualified(k), v]));
}

function sameSpec(e: PinEntry, s: PinSpec): boolean {
  const a = e.match;
  const b = s.match;
  return a.family === b.family && a.src === b.src && a.dst === b.dst && a.protocol === b.protocol && a.sport === b.sport && a.dport === b.dport && e.nexthop === s.nexthop;
}
