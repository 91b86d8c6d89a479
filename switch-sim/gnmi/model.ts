// The simulated switch seen through OpenConfig: a configuration datastore of leaves checked
// against schema.ts, and the state derived from the switch. Policy-forwarding rules take
// effect (become pins in the switch's pin table) only in a policy applied to the interface
// client traffic enters on, as on a device; each VIP's static route next-hops are its ECMP
// group. A rule's or next-hop's `state` mirrors its `config` once it is programmed (the
// OpenConfig convention that state reports the applied configuration); counters appear there.
// A SetRequest is applied as one transaction, committed whole or not at all (gNMI 3.4.3).
// The datastore is a tree (store.ts): a read or a write costs what it names, and a commit
// checks the rules the request changed (all rules only where a policy or its application
// changed), so a device holding many rules answers as fast as one holding few.

import { canonicalIp } from '../../lib/addr.js';
import {
  joinPath,
  pathToString,
  type DataType,
  type Path,
  type PathElem,
  type SetRequest,
  type TypedValue,
  type Update,
  type UpdateResult,
} from '../../proto/gnmi.js';
import type { PinEntry, PinSpec } from '../pin-table.js';
import type { SimSwitch } from '../sim-switch.js';
import {
  checkValue,
  GnmiError,
  nodeByNames,
  protocolNumber,
  resolve,
  unqualified,
  type Resolved,
  type Scalar,
  type SchemaNode,
} from './schema.js';
import { ConfigStore, sameElem, type Leaf } from './store.js';

export { GnmiError, type Scalar } from './schema.js';
export type { Leaf } from './store.js';

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

/** Whether `elems` lies under `query` (keys in the query must match; '*' or no key matches any). */
export function under(elems: readonly PathElem[], query: readonly PathElem[]): boolean {
  if (query.length > elems.length) return false;
  for (let i = 0; i < query.length; i++) {
    const q = query[i] as PathElem;
    const e = elems[i] as PathElem;
    if (q.name !== e.name) return false;
    const qk = q.key;
    if (qk === undefined || qk === null || q === e) continue;
    for (const k in qk) {
      const v = qk[k];
      if (v !== '*' && e.key?.[k] !== v) return false;
    }
  }
  return true;
}

/** Configuration survives a restart of the target's server (a device keeps its saved configuration). */
const stores = new WeakMap<SimSwitch, ConfigStore>();

/** The value of a TypedValue as a plain JS value (JSON parsed). */
export function typedToValue(t: TypedValue | undefined, where: string): unknown {
  const which = t?.value;
  if (t === undefined || t === null || which === undefined)
    throw new GnmiError('INVALID_ARGUMENT', `${where}: no value`);
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

/** Rule entries' path template under a network instance (list keys as wildcards). */
const RULE_TEMPLATE: readonly PathElem[] = [
  { name: 'network-instances' },
  { name: 'network-instance', key: { name: '*' } },
  { name: 'policy-forwarding' },
  { name: 'policies' },
  { name: 'policy', key: { 'policy-id': '*' } },
  { name: 'rules' },
  { name: 'rule', key: { 'sequence-id': '*' } },
];

/** The rule entries a query may reach (its elements merged with the template), or none. */
function ruleQuery(q: readonly PathElem[]): PathElem[] | undefined {
  const out: PathElem[] = [];
  for (let i = 0; i < RULE_TEMPLATE.length; i++) {
    const t = RULE_TEMPLATE[i] as PathElem;
    const e = q[i];
    if (e === undefined) out.push(t);
    else if (e.name !== t.name) return undefined;
    else out.push(e);
  }
  return out;
}

const nodeOf = (elems: readonly PathElem[]): SchemaNode =>
  nodeByNames(elems.map((e) => e.name)) as SchemaNode;

/** Elements of a rule's counter leaves, shared (leaf paths are never changed once made). */
const STATE_ELEM: PathElem = { name: 'state' };
const COUNTER_ELEMS = {
  'matched-pkts': { name: 'matched-pkts' },
  'matched-octets': { name: 'matched-octets' },
};
/** Schema nodes of a rule's counters, found once. */
const counterNodes = new Map<string, SchemaNode>();
function counterNode(name: string, elems: readonly PathElem[]): SchemaNode {
  let n = counterNodes.get(name);
  if (n === undefined) counterNodes.set(name, (n = nodeOf(elems)));
  return n;
}

/**
 * Schema nodes of what is derived from a config leaf (its key leaf, its state), by the config leaf's node.
 */
const derivedNodes = {
  key: new WeakMap<SchemaNode, SchemaNode>(),
  state: new WeakMap<SchemaNode, SchemaNode>(),
};
function derived(from: SchemaNode, kind: 'key' | 'state', elems: readonly PathElem[]): SchemaNode {
  let n = derivedNodes[kind].get(from);
  if (n === undefined) {
    n = nodeOf(elems);
    derivedNodes[kind].set(from, n);
  }
  return n;
}

export class OpenConfigModel {
  private readonly store: ConfigStore;
  /**
   * List entry elements whose key leaves are known to be stored. An element object belongs to
   * one write, or to the writes of one Set that share it (`setParent`, until a removal at or
   * above it), and its entry is removed, if at all, before any of them stores anything under it.
   */
  private readonly keyed = new WeakSet<PathElem>();
  /** Policies and where they are applied, as of the last commit ('' before any). */
  private application = '';
  /**
   * Within one Set: the elements before the last of the previous path as sent, and their
   * resolution. A Set's paths share them (a batch of rules under one policy): they are
   * resolved once, and their resolved elements are the same objects in every path, so the
   * key leaves of their entries are stored once (`keyed`). Dropped by a removal at or above
   * them, so that an entry removed and written again has its key leaves stored again.
   */
  private setParent: { sent: readonly PathElem[]; resolved: Resolved } | undefined;

  constructor(
    readonly sw: SimSwitch,
    readonly options: ModelOptions,
  ) {
    let s = stores.get(sw);
    if (s === undefined) {
      s = new ConfigStore();
      stores.set(sw, s);
    }
    this.store = s;
  }

  private get ni(): PathElem[] {
    return [
      { name: 'network-instances' },
      { name: 'network-instance', key: { name: this.options.networkInstance } },
    ];
  }

  private get staticBase(): PathElem[] {
    return [
      ...this.ni,
      { name: 'protocols' },
      { name: 'protocol', key: { identifier: 'STATIC', name: this.options.staticProtocol } },
      { name: 'static-routes' },
    ];
  }

  /**
   * Every leaf, configuration and state, optionally of one data type, at or under one of
   * the queries `within` (paths with '*' keys for any entry; the whole tree when absent).
   */
  leaves(type: DataType = 'ALL', within?: readonly (readonly PathElem[])[]): Leaf[] {
    const each = this.leavesEach(type, within ?? [[]]);
    if (each.length === 1) return each[0] ?? [];
    // A leaf under several of the queries is given once.
    const seen = new Set<string>();
    return each.flat().filter((l) => {
      const k = pathToString({ elem: l.elems });
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  }

  /**
   * The leaves `leaves(type, [q])` gives, handed to `part` 500 entries of the
   * query's first wildcard list at a time: a sample of every rule is built and sent in parts,
   * each garbage before the next is made, instead of all at once.
   */
  leavesInParts(type: DataType, q: readonly PathElem[], part: (ls: Leaf[]) => void, perPart = 500): void {
    const w = q.findIndex((e) => Object.values(e.key ?? {}).includes('*'));
    const top = q[0]?.name;
    // State that is not configuration (components, interfaces) has no entries in the store.
    if (w < 0 || top === undefined || top === 'components' || top === 'interfaces') {
      part(this.leaves(type, [q]));
      return;
    }
    this.importGroups();
    const entries = this.store.nodes(q.slice(0, w + 1));
    const rest = q.slice(w + 1);
    for (let at = 0; at < entries.length; at += perPart)
      part(
        this.leavesEach(
          type,
          entries.slice(at, at + perPart).map((e) => [...e, ...rest]),
        ).flat(),
      );
  }

  /** The leaves at or under each query, one list per query (as `leaves`). */
  leavesEach(type: DataType, queries: readonly (readonly PathElem[])[]): Leaf[][] {
    this.importGroups();
    const want = (node: SchemaNode): boolean =>
      type === 'ALL' || (type === 'CONFIG' ? node.config : type === 'STATE' ? !node.config : node.counter);
    // Whether the query may reach element `name` at position `i` (it ends above, or names it there).
    const reaches = (q: readonly PathElem[], i: number, name: string): boolean =>
      q.length <= i || q[i]?.name === name;
    // Whether the rule (or next-hop) a config leaf belongs to is in effect, asked once per entry
    // (stored list entry elements are one object per entry).
    const appliedAt = new Map<PathElem, boolean>();
    // The pin of each rule entry, looked up once per read (stored entry elements are one object per entry).
    const pinAt = new Map<PathElem, PinEntry | undefined>();
    const pinOf = (policy: PathElem | undefined, rule: PathElem): PinEntry | undefined => {
      if (pinAt.has(rule)) return pinAt.get(rule);
      const e = this.sw.pins.get(
        ruleName(policy?.key?.['policy-id'] ?? '', Number(rule.key?.['sequence-id'])),
      );
      pinAt.set(rule, e);
      return e;
    };
    let generated: Leaf[] | undefined;
    return queries.map((q) => {
      const out: Leaf[] = [];
      const push = (l: Leaf): void => {
        if (want(l.node) && under(l.elems, q)) out.push(l);
      };
      // Configuration leaves the query may reach, directly or through what is derived from them.
      for (const l of this.store.walk(q, { state: 'config' }, 'config')) {
        push(l);
        const n = l.elems.length;
        // The key leaf directly under a list entry refers to config/<key>.
        const entry = l.elems[n - 3];
        if (
          l.elems[n - 2]?.name === 'config' &&
          entry?.key?.[l.node.name] !== undefined &&
          reaches(q, n - 2, l.node.name)
        ) {
          const elems = [...l.elems.slice(0, -2), { name: l.node.name }];
          push({ elems, value: l.value, node: derived(l.node, 'key', elems) });
        }
        // Applied state: config mirrored under state once in effect.
        let i = n - 1;
        while (i >= 0 && l.elems[i]?.name !== 'config') i--;
        if (i < 0 || !reaches(q, i, 'state')) continue;
        const elems = l.elems.slice();
        elems[i] = { name: 'state' };
        const node = derived(l.node, 'state', elems);
        if (!want(node) || !under(elems, q)) continue;
        // Whether it is in effect depends on the list entry it belongs to (a rule, a next-hop).
        let j = i - 1;
        while (j > 0 && l.elems[j]?.key === undefined) j--;
        const owner = l.elems[j] as PathElem;
        let on = appliedAt.get(owner);
        if (on === undefined) {
          on =
            owner.name === 'rule' && l.elems[j - 1]?.name === 'rules'
              ? pinOf(l.elems[j - 2], owner)?.status === 'programmed'
              : this.applied(l.elems);
          appliedAt.set(owner, on);
        }
        if (on) out.push({ elems, value: l.value, node });
      }
      // Rule counters, for the rules the query reaches.
      const counters =
        reaches(q, RULE_TEMPLATE.length, 'state') &&
        (reaches(q, RULE_TEMPLATE.length + 1, 'matched-pkts') ||
          reaches(q, RULE_TEMPLATE.length + 1, 'matched-octets'));
      const rq = type === 'CONFIG' || !counters ? undefined : ruleQuery(q);
      if (rq !== undefined) {
        for (const rule of this.store.nodes(rq)) {
          const e = pinOf(rule[4], rule.at(-1) as PathElem);
          if (e?.status !== 'programmed') continue;
          for (const [name, value] of [
            ['matched-pkts', e.packets],
            ['matched-octets', e.bytes],
          ] as const) {
            if (!reaches(q, RULE_TEMPLATE.length + 1, name)) continue;
            const elems = [...rule, STATE_ELEM, COUNTER_ELEMS[name]];
            push({ elems, value, node: counterNode(name, elems) });
          }
        }
      }
      // State that is not configuration lives under components and interfaces only.
      const top = q[0]?.name;
      if (top === undefined || top === 'components' || top === 'interfaces') {
        generated ??= this.generated();
        for (const l of generated) push(l);
      }
      return out;
    });
  }

  /** State that is not configuration: the pin table's utilization and the neighbour tables. */
  private generated(): Leaf[] {
    const out: Leaf[] = [];
    const t = this.sw.pins;
    const used = t.capacity - t.free;
    const comp: PathElem[] = [
      { name: 'components' },
      { name: 'component', key: { name: this.options.pinTableComponent } },
    ];
    const res: PathElem[] = [
      ...comp,
      { name: 'integrated-circuit' },
      { name: 'utilization' },
      { name: 'resources' },
      { name: 'resource', key: { name: this.options.pinTableResource } },
    ];
    // The pin table's utilization (openconfig-platform resource utilization). The component's
    // own config/name is config: served as state only.
    for (const [elems, value] of [
      [[...comp, { name: 'name' }], this.options.pinTableComponent],
      [[...comp, { name: 'state' }, { name: 'name' }], this.options.pinTableComponent],
      [[...res, { name: 'name' }], this.options.pinTableResource],
      [[...res, { name: 'state' }, { name: 'name' }], this.options.pinTableResource],
      [[...res, { name: 'state' }, { name: 'used' }], used],
      [[...res, { name: 'state' }, { name: 'free' }], t.free],
      [[...res, { name: 'state' }, { name: 'max-limit' }], t.capacity],
    ] as [PathElem[], Scalar][])
      out.push({ elems, value, node: nodeOf(elems) });
    // The neighbour tables (openconfig-if-ip): each server's address and MAC on its interface.
    for (const [address, att] of this.sw.attachments) {
      const family = address.includes(':') ? 'ipv6' : 'ipv4';
      const n: PathElem[] = [
        { name: 'interfaces' },
        { name: 'interface', key: { name: att.via } },
        { name: 'subinterfaces' },
        { name: 'subinterface', key: { index: '0' } },
        { name: family },
        { name: 'neighbors' },
        { name: 'neighbor', key: { ip: address } },
      ];
      for (const [elems, value] of [
        [[...n, { name: 'ip' }], address],
        [[...n, { name: 'state' }, { name: 'ip' }], address],
        [[...n, { name: 'state' }, { name: 'link-layer-address' }], att.mac],
        [[...n, { name: 'state' }, { name: 'origin' }], 'DYNAMIC'],
      ] as [PathElem[], Scalar][])
        out.push({ elems, value, node: nodeOf(elems) });
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
      const addr = this.store.get([
        ...elems.slice(0, nhAt + 1),
        { name: 'config' },
        { name: 'next-hop' },
      ])?.value;
      return typeof addr === 'string' && this.sw.programmedMembers(prefix.split('/')[0] ?? '').includes(addr);
    }
    return true;
  }

  /** Static routes in the store: prefix -> next-hop index -> address. */
  private statics(): Map<string, Map<string, string>> {
    const out = new Map<string, Map<string, string>>();
    for (const st of this.store.nodes([...this.staticBase, { name: 'static', key: { prefix: '*' } }])) {
      const prefix = st.at(-1)?.key?.['prefix'] ?? '';
      const hops = new Map<string, string>();
      out.set(prefix, hops);
      for (const nh of this.store.nodes([
        ...st,
        { name: 'next-hops' },
        { name: 'next-hop', key: { index: '*' } },
      ])) {
        const addr = this.store.get([...nh, { name: 'config' }, { name: 'next-hop' }])?.value;
        if (addr !== undefined) hops.set(nh.at(-1)?.key?.['index'] ?? '', String(addr));
      }
    }
    return out;
  }

  /** Brings the static routes in line with the switch's groups (changed by other means too). */
  private importGroups(): void {
    const base = this.staticBase;
    const hostLen = (a: string): number => (a.includes(':') ? 128 : 32);
    const present = this.statics();
    const vipPrefixes = new Set<string>();
    for (const vip of this.sw.vips.values()) {
      const prefix = `${vip.address}/${hostLen(vip.address)}`;
      vipPrefixes.add(prefix);
      const members = vip.group.members();
      const have = present.get(prefix) ?? new Map<string, string>();
      for (const [index, addr] of have)
        if (!members.includes(addr))
          this.store.remove([
            ...base,
            { name: 'static', key: { prefix } },
            { name: 'next-hops' },
            { name: 'next-hop', key: { index } },
          ]);
      const haveAddrs = new Set(have.values());
      for (const m of members) {
        if (haveAddrs.has(m)) continue;
        const at = [
          ...base,
          { name: 'static', key: { prefix } },
          { name: 'next-hops' },
          { name: 'next-hop', key: { index: m } },
          { name: 'config' },
          { name: 'next-hop' },
        ];
        this.withKeys(at);
        this.put(at, m);
      }
      if (!present.has(prefix)) {
        const at = [...base, { name: 'static', key: { prefix } }, { name: 'config' }, { name: 'prefix' }];
        this.withKeys(at);
        this.put(at, prefix);
      }
    }
    for (const p of present.keys())
      if (!vipPrefixes.has(p)) this.store.remove([...base, { name: 'static', key: { prefix: p } }]);
  }

  /** Stores a config leaf, with the config key leaves of every list entry on its path. */
  /** Stores a config leaf; the entries on its path have had their key leaves stored (`withKeys`). */
  private put(elems: PathElem[], value: Scalar, node?: SchemaNode): void {
    this.store.put(elems, { value, node: node ?? nodeOf(elems) });
  }

  /**
   * Stores the config key leaves (`config/<key>`) of every list entry on `elems`, once per
   * entry element: paths here are resolved (canonical keys), the list entries on them are the
   * keyed elements, and the elements of one write's path are shared by all its leaves.
   */
  private withKeys(elems: PathElem[]): void {
    elems.forEach((e, i) => {
      if (e.key === undefined || this.keyed.has(e)) return;
      this.keyed.add(e);
      for (const [k, kv] of Object.entries(e.key)) {
        const ke = [...elems.slice(0, i + 1), { name: 'config' }, { name: k }];
        if (this.store.get(ke) !== undefined) continue;
        const kn = nodeByNames(ke.map((x) => x.name));
        if (kn !== undefined)
          this.store.put(ke, { value: checkValue(kn.type ?? { t: 'string' }, kv, ''), node: kn });
      }
    });
  }

  /** Applies a SetRequest as one transaction; throws GnmiError and changes nothing on failure. */
  applySet(req: SetRequest): UpdateResult[] {
    const unionReplace = req.union_replace ?? [];
    if (
      unionReplace.length > 0 &&
      ((req.delete ?? []).length > 0 || (req.replace ?? []).length > 0 || (req.update ?? []).length > 0)
    ) {
      throw new GnmiError(
        'INVALID_ARGUMENT',
        'a SetRequest with union_replace must not carry delete, replace or update (gNMI 3.4)',
      );
    }
    this.importGroups();
    this.setParent = undefined;
    const results: UpdateResult[] = [];
    const apply = (): void => {
      // Deletes, then replaces, then updates (gNMI 3.4.6).
      for (const p of req.delete ?? []) {
        const { elems, nodes, where } = this.target(req.prefix, p, 'UNIMPLEMENTED');
        const last = nodes.at(-1);
        const parentList = nodes.at(-3);
        if (
          last?.kind === 'leaf' &&
          (nodes.at(-2)?.kind === 'list' ||
            (nodes.at(-2)?.name === 'config' &&
              parentList?.kind === 'list' &&
              parentList.keys.some((k) => k.name === last.name)))
        ) {
          throw new GnmiError(
            'INVALID_ARGUMENT',
            `${where}: a list key cannot be deleted on its own; delete the list entry`,
          );
        }
        this.removeInSet(elems);
        results.push({ path: p, op: 'DELETE' });
      }
      // union_replace with one origin (OpenConfig) is a replace of the union of its updates
      // (gnmi-union_replace.md); CLI and native origins are refused in target().
      for (const u of unionReplace) this.write(req.prefix, u, true, 'UNION_REPLACE', results);
      for (const u of req.replace ?? []) this.write(req.prefix, u, true, 'REPLACE', results);
      for (const u of req.update ?? []) this.write(req.prefix, u, false, 'UPDATE', results);
    };
    try {
      return this.store.transaction(apply, (changed) => {
        this.commit(changed);
        return results;
      });
    } finally {
      this.setParent = undefined;
    }
  }

  /** Removes what is at and under `elems` inside a Set (see `setParent`). */
  private removeInSet(elems: readonly PathElem[]): void {
    if (this.setParent !== undefined && elems.length <= this.setParent.sent.length)
      this.setParent = undefined;
    this.store.remove(elems);
  }

  /** A Set path resolved, its leading elements as the previous path's where the same (`setParent`). */
  private resolveInSet(joined: PathElem[], where: string, unknown: 'UNIMPLEMENTED' | 'NOT_FOUND'): Resolved {
    const n = joined.length - 1;
    if (n < 1) return resolve(joined, where, unknown);
    let c = this.setParent;
    let same = c !== undefined && c.sent.length === n;
    for (let i = 0; same && i < n; i++) same = sameElem(joined[i] as PathElem, c?.sent[i] as PathElem);
    if (c === undefined || !same) {
      const sent = joined.slice(0, n);
      this.setParent = c = { sent, resolved: resolve(sent, where, unknown) };
    }
    return resolve(joined.slice(n), where, unknown, c.resolved);
  }

  /**
   * A Set path resolved; an element the model does not have answers `unknown`: NOT_FOUND for
   * an update, replace or union_replace (gNMI 3.4.7: a path that is not valid).
   */
  private target(
    prefix: Path | undefined,
    p: Path | undefined,
    unknown: 'UNIMPLEMENTED' | 'NOT_FOUND',
  ): { elems: PathElem[]; nodes: SchemaNode[]; where: string } {
    const joined = joinPath(prefix, p);
    const where = pathToString({ elem: joined });
    checkOrigin(prefix, p, where);
    const r = this.resolveInSet(joined, where, unknown);
    if (r.wildcard)
      throw new GnmiError('INVALID_ARGUMENT', `${where}: Set paths name every key, without wildcards`);
    if (r.nodes.length === 0)
      throw new GnmiError('UNIMPLEMENTED', `${where}: a Set of the whole tree is not implemented`);
    if (r.nodes.some((n) => !n.config))
      throw new GnmiError('INVALID_ARGUMENT', `${where}: state data is read-only`);
    if (r.elems[0]?.name === 'components')
      throw new GnmiError('UNIMPLEMENTED', `${where}: component configuration is not implemented`);
    if (r.elems[0]?.name === 'interfaces')
      throw new GnmiError('UNIMPLEMENTED', `${where}: interface configuration is not implemented`);
    const ni = r.elems[1]?.key?.['name'];
    if (ni !== undefined && ni !== this.options.networkInstance)
      throw new GnmiError(
        'UNIMPLEMENTED',
        `${where}: this target has one network instance, '${this.options.networkInstance}'`,
      );
    const proto = r.elems[3];
    if (r.elems[2]?.name === 'protocols' && proto?.key !== undefined) {
      if (proto.key['identifier'] !== 'STATIC' || proto.key['name'] !== this.options.staticProtocol) {
        throw new GnmiError(
          'UNIMPLEMENTED',
          `${where}: this target configures one routing protocol instance, STATIC '${this.options.staticProtocol}'`,
        );
      }
    }
    return { elems: r.elems, nodes: r.nodes, where };
  }

  private write(
    prefix: Path | undefined,
    u: Update,
    replace: boolean,
    op: UpdateResult['op'],
    results: UpdateResult[],
  ): void {
    const { elems, nodes, where } = this.target(prefix, u.path, 'NOT_FOUND');
    const value = typedToValue(u.val, where);
    if (replace) {
      const last = nodes.at(-1) as SchemaNode;
      if (
        last.kind === 'list' &&
        elems.at(-1)?.key !== undefined &&
        isObject(value) &&
        Object.keys(value).length === 0
      ) {
        throw new GnmiError(
          'INVALID_ARGUMENT',
          `${where}: replacing a list entry with {} would leave it keyless (gNMI 3.4.4)`,
        );
      }
      if (value === null) throw new GnmiError('INVALID_ARGUMENT', `${where}: replace with a null value`);
      // A replace removes what is under its path first.
      this.removeInSet(elems);
    }
    this.withKeys(elems);
    this.writeValue(elems, nodes.at(-1) as SchemaNode, value, where);
    results.push({ path: u.path ?? {}, op });
  }

  private writeValue(elems: PathElem[], node: SchemaNode, value: unknown, where: string): void {
    if (node.kind === 'leaf') {
      const v = checkValue(node.type ?? { t: 'string' }, value, where);
      // A key leaf must agree with the key in the path.
      const parent = elems.at(-2);
      const entry = parent?.name === 'config' ? elems.at(-3) : parent;
      const keyVal = entry?.key?.[node.name];
      if (keyVal !== undefined && keyVal !== String(v))
        throw new GnmiError(
          'INVALID_ARGUMENT',
          `${where}: '${String(v)}' does not match the list key ${node.name}=${keyVal}`,
        );
      // The key leaf under the entry itself refers to config/<key>.
      if (parent?.key !== undefined && keyVal !== undefined)
        this.put([...elems.slice(0, -1), { name: 'config' }, { name: node.name }], v);
      else this.put(elems, v, node);
      return;
    }
    if (node.kind === 'list' && elems.at(-1)?.key === undefined) {
      if (!Array.isArray(value))
        throw new GnmiError('INVALID_ARGUMENT', `${where}: expected a JSON array of ${node.name} entries`);
      for (const item of value) {
        if (!isObject(item))
          throw new GnmiError('INVALID_ARGUMENT', `${where}: expected JSON objects in the list`);
        const o = unqualifyKeys(item);
        const key: Record<string, string> = {};
        for (const k of node.keys) {
          const kv = o[k.name] ?? (isObject(o['config']) ? unqualifyKeys(o['config'])[k.name] : undefined);
          if (kv === undefined)
            throw new GnmiError('INVALID_ARGUMENT', `${where}: list entry without its key '${k.name}'`);
          key[k.name] = String(checkValue(k.type, kv, `${where} key ${k.name}`));
        }
        const entry = [...elems.slice(0, -1), { name: node.name, key }];
        this.writeValue(entry, node, o, `${where}[${Object.values(key).join(',')}]`);
      }
      return;
    }
    if (!isObject(value))
      throw new GnmiError(
        'INVALID_ARGUMENT',
        `${where}: expected a JSON object for ${node.kind} '${node.name}'`,
      );
    const o = unqualifyKeys(value);
    if (node.kind === 'list') this.withKeys(elems);
    for (const name in o) {
      const sub = o[name];
      const child = node.children.get(name);
      // A member names a path too: one the model does not have is not valid (gNMI 3.4.7).
      if (child === undefined) throw new GnmiError('NOT_FOUND', `${where}/${name}: not in the model`);
      if (!child.config) throw new GnmiError('INVALID_ARGUMENT', `${where}/${name}: state data is read-only`);
      this.writeValue([...elems, { name }], child, sub, `${where}/${name}`);
    }
  }

  /** The rule at `entry` (a rule list entry's path), with the pin it would program. */
  private ruleView(entry: PathElem[]): RuleView | undefined {
    const policy = entry[4]?.key?.['policy-id'] ?? '';
    const seq = Number(entry.at(-1)?.key?.['sequence-id']);
    const leaves = new Map<string, Scalar>();
    this.store.leavesBelow(entry, (rel, value) => leaves.set(rel, value));
    if (leaves.size === 0) return undefined;
    const has4 = [...leaves.keys()].some((k) => k.startsWith('ipv4/'));
    const has6 = [...leaves.keys()].some((k) => k.startsWith('ipv6/'));
    if (has4 && has6)
      throw new GnmiError('INVALID_ARGUMENT', `rule ${policy}/${seq}: matches both ipv4 and ipv6`);
    const af = has6 ? 'ipv6' : 'ipv4';
    const host = (k: string): string | undefined => {
      const v = leaves.get(`${af}/config/${k}`);
      if (v === undefined) return undefined;
      const [a = '', len] = String(v).split('/');
      if (len !== (af === 'ipv6' ? '128' : '32'))
        throw new GnmiError(
          'UNIMPLEMENTED',
          `rule ${policy}/${seq}: ${af}/config/${k} '${String(v)}': this target matches host prefixes only`,
        );
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
    if (typeof nexthop === 'string' && nexthop.includes(':') !== (family === 6) && family !== undefined)
      throw new GnmiError(
        'INVALID_ARGUMENT',
        `rule ${policy}/${seq}: next-hop ${nexthop} is not of the rule's address family`,
      );
    const spec: PinSpec | undefined =
      nexthop !== undefined || discard
        ? {
            source: 'openconfig',
            match,
            idleTimeoutS: 0,
            hardTimeoutS: 0,
            persistent: true,
            priority: 0,
            ...(nexthop === undefined || discard ? {} : { nexthop: String(nexthop) }),
          }
        : undefined;
    return { policy, seq, spec, family };
  }

  /**
   * Checks the configuration a transaction left (`changed`: the paths it wrote or removed),
   * checks capacity, then brings the switch in line with it; throws (and the transaction is
   * undone) where it is not valid. Only the rules under a changed path are looked at, unless
   * a policy, its type or where it is applied changed.
   */
  private commit(changed: readonly (readonly PathElem[])[]): void {
    const pf = [...this.ni, { name: 'policy-forwarding' }];
    const ruleDepth = pf.length + 4;
    let all = false;
    const touched = new Map<PathElem, PathElem[]>();
    for (const c of changed) {
      const known = c[ruleDepth - 1];
      if (known !== undefined && touched.has(known)) continue;
      if (c.length < pf.length) {
        if (under(pf, c)) all = true;
        continue;
      }
      if (!under(c, pf)) continue;
      if (
        c.length >= ruleDepth &&
        c[pf.length]?.name === 'policies' &&
        c[ruleDepth - 2]?.name === 'rules' &&
        c[ruleDepth - 1]?.name === 'rule'
      ) {
        touched.set(c[ruleDepth - 1] as PathElem, c.slice(0, ruleDepth));
      } else all = true;
    }
    const policies = new Map<string, Scalar | undefined>();
    for (const p of this.store.nodes([
      ...pf,
      { name: 'policies' },
      { name: 'policy', key: { 'policy-id': '*' } },
    ])) {
      policies.set(
        p.at(-1)?.key?.['policy-id'] ?? '',
        this.store.get([...p, { name: 'config' }, { name: 'type' }])?.value,
      );
    }
    const applied = new Set<string>();
    for (const i of this.store.nodes([
      ...pf,
      { name: 'interfaces' },
      { name: 'interface', key: { 'interface-id': '*' } },
    ])) {
      const v = this.store.get([...i, { name: 'config' }, { name: 'apply-forwarding-policy' }])?.value;
      if (v === undefined) continue;
      const id = String(v);
      const iface = i.at(-1)?.key?.['interface-id'] ?? '';
      // A leafref: the policy must exist, and be usable for forwarding actions.
      if (!policies.has(id))
        throw new GnmiError(
          'INVALID_ARGUMENT',
          `interface ${iface}: apply-forwarding-policy '${id}' names no policy`,
        );
      if (policies.get(id) === 'VRF_SELECTION_POLICY')
        throw new GnmiError(
          'INVALID_ARGUMENT',
          `interface ${iface}: policy '${id}' is a VRF_SELECTION_POLICY`,
        );
      if (iface === this.sw.options.uplink.interface) applied.add(id);
    }
    const application = JSON.stringify([[...policies.keys()].sort(), [...applied].sort()]);
    if (application !== this.application) all = true;

    // The rules to look at, and the pins they would program.
    const entries = all
      ? [...policies.keys()].flatMap((id) =>
          this.store.nodes([
            ...pf,
            { name: 'policies' },
            { name: 'policy', key: { 'policy-id': id } },
            { name: 'rules' },
            { name: 'rule', key: { 'sequence-id': '*' } },
          ]),
        )
      : [...touched.values()];
    const desired = new Map<string, PinSpec>();
    const looked = new Set<string>();
    for (const entry of entries) {
      const r = this.ruleView(entry);
      const name = ruleName(entry[4]?.key?.['policy-id'] ?? '', Number(entry.at(-1)?.key?.['sequence-id']));
      looked.add(name);
      if (r?.spec !== undefined && applied.has(r.policy)) desired.set(name, r.spec);
    }
    const groups = this.groupsOf();

    // Capacity: new entries must fit in what is free, counting entries still being programmed.
    const current = new Map<string, PinEntry>();
    if (all) {
      for (const e of this.sw.pins.all())
        if (e.source === 'openconfig' && e.name.startsWith(PIN_PREFIX)) current.set(e.name, e);
    } else {
      for (const name of looked) {
        const e = this.sw.pins.get(name);
        if (e !== undefined && e.source === 'openconfig') current.set(name, e);
      }
    }
    const removed = [...current.values()].filter(
      (e) => !desired.has(e.name) || !sameSpec(e, desired.get(e.name) as PinSpec),
    );
    const added = [...desired].filter(
      ([name, spec]) => !current.has(name) || !sameSpec(current.get(name) as PinEntry, spec),
    );
    const pendingOthers = this.sw.pins.pending - removed.filter((e) => e.status === 'pending').length;
    const room = this.sw.pins.free + removed.filter((e) => e.status === 'programmed').length - pendingOthers;
    if (added.length > room)
      throw new GnmiError(
        'RESOURCE_EXHAUSTED',
        `pin table full: ${added.length} rules to program, ${Math.max(0, room)} entries free`,
      );

    this.application = application;
    const now = this.sw.now();
    for (const e of removed) this.sw.pins.remove(e.name);
    for (const [name, spec] of added) this.sw.pins.upsert(name, spec, now);
    for (const [vip, members] of groups) {
      const live = this.sw.vips.get(vip)?.group.members() ?? [];
      for (const m of live) if (!members.includes(m)) this.sw.groupRemove(vip, m);
      for (const m of members) if (!live.includes(m)) this.sw.groupAdd(vip, m);
    }
    for (const v of [...this.sw.vips.keys()])
      if (!groups.has(v))
        for (const m of this.sw.vips.get(v)?.group.members() ?? []) this.sw.groupRemove(v, m);
  }

  /** VIP -> next-hop addresses of the STATIC routes. */
  private groupsOf(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const [prefix, hops] of this.statics()) {
      const [addr = '', len] = prefix.split('/');
      if (len !== (addr.includes(':') ? '128' : '32'))
        throw new GnmiError(
          'UNIMPLEMENTED',
          `static route ${prefix}: this target routes host prefixes (VIPs) only`,
        );
      const list = out.get(addr) ?? [];
      out.set(addr, list);
      for (const a of hops.values()) if (!list.includes(a)) list.push(a);
    }
    return out;
  }

  /** A device restart: pins are programmed again from the saved configuration, counters start at zero. */
  restart(): void {
    const now = this.sw.now();
    for (const e of this.sw.pins.all()) {
      if (e.source !== 'openconfig' || !e.name.startsWith(PIN_PREFIX)) continue;
      const {
        name,
        status: _s,
        packets: _p,
        bytes: _b,
        createdAt: _c,
        lastMatchAt: _l,
        programAt: _a,
        ...spec
      } = e;
      this.sw.pins.upsert(name, spec, now);
    }
  }
}

function checkOrigin(prefix: Path | undefined, p: Path | undefined, where: string): void {
  for (const x of [prefix, p]) {
    if ((x?.element ?? []).length > 0)
      throw new GnmiError(
        'INVALID_ARGUMENT',
        `${where}: the deprecated 'element' path field is not supported; use 'elem'`,
      );
  }
  const origin = p?.origin || prefix?.origin || '';
  if (origin !== '' && origin !== 'openconfig')
    throw new GnmiError('UNIMPLEMENTED', `${where}: origin '${origin}' is not implemented (only OpenConfig)`);
}

export { checkOrigin };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Drops RFC 7951 module qualifiers from member names (the object itself where none is qualified). */
function unqualifyKeys(o: Record<string, unknown>): Record<string, unknown> {
  for (const k in o)
    if (k.includes(':')) return Object.fromEntries(Object.entries(o).map(([n, v]) => [unqualified(n), v]));
  return o;
}

function sameSpec(e: PinEntry, s: PinSpec): boolean {
  const a = e.match;
  const b = s.match;
  return (
    a.family === b.family &&
    a.src === b.src &&
    a.dst === b.dst &&
    a.protocol === b.protocol &&
    a.sport === b.sport &&
    a.dport === b.dport &&
    e.nexthop === s.nexthop
  );
}
