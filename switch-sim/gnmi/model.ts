// The simulated switch seen through OpenConfig: policy-forwarding rules (the pins a gNMI
// client installs) with matched-packet counters, and each VIP's static route next-hops
// (its ECMP group). Reads produce leaves; a SetRequest is validated whole against a staged
// copy and then applied, so one SetRequest is one transaction.

import { canonicalIp } from '../../mirror-receiver/addr.js';
import { joinPath, pathToString, type PathElem, type SetRequest, type TypedValue, type Update, type UpdateResult } from '../../proto/gnmi.js';
import type { PinEntry, PinMatch, PinSpec } from '../pin-table.js';
import type { SimSwitch } from '../sim-switch.js';

export type Scalar = string | number | boolean;

export interface Leaf {
  elems: PathElem[];
  value: Scalar;
}

/** An error that maps to a gRPC status code. */
export class GnmiError extends Error {
  override readonly name = 'GnmiError';
  constructor(
    readonly status: 'INVALID_ARGUMENT' | 'NOT_FOUND' | 'RESOURCE_EXHAUSTED' | 'UNIMPLEMENTED',
    message: string,
  ) {
    super(message);
  }
}

const NI = (name: string): PathElem[] => [{ name: 'network-instances' }, { name: 'network-instance', key: { name } }];
const PIN_PREFIX = 'oc/';

/** Pin name of an OpenConfig rule. */
export const ruleName = (policy: string, seq: number): string => `${PIN_PREFIX}${policy}/${seq}`;

interface Rule {
  policy: string;
  seq: number;
  match: PinMatch;
  nexthop?: string;
}

function ruleOf(e: PinEntry): Rule | undefined {
  if (e.source !== 'openconfig' || !e.name.startsWith(PIN_PREFIX)) return undefined;
  const rest = e.name.slice(PIN_PREFIX.length);
  const at = rest.lastIndexOf('/');
  const r: Rule = { policy: rest.slice(0, at), seq: Number(rest.slice(at + 1)), match: { ...e.match } };
  if (e.nexthop !== undefined) r.nexthop = e.nexthop;
  return r;
}

const copyRule = (r: Rule): Rule => ({ ...r, match: { ...r.match } });

const hostPrefix = (a: string): string => `${a}/${a.includes(':') ? 128 : 32}`;

/** Every leaf of the modelled state. */
export function leaves(sw: SimSwitch, networkInstance = 'default'): Leaf[] {
  const out: Leaf[] = [];
  for (const e of sw.pins.all()) {
    const r = ruleOf(e);
    if (r === undefined) continue;
    const base: PathElem[] = [...NI(networkInstance), { name: 'policy-forwarding' }, { name: 'policies' }, { name: 'policy', key: { 'policy-id': r.policy } }, { name: 'rules' }, { name: 'rule', key: { 'sequence-id': String(r.seq) } }];
    const add = (rel: string[], value: Scalar | undefined): void => {
      if (value !== undefined) out.push({ elems: [...base, ...rel.map((name) => ({ name }))], value });
    };
    const m = r.match;
    const af = m.family === 6 ? 'ipv6' : 'ipv4';
    add(['config', 'sequence-id'], r.seq);
    add([af, 'config', 'source-address'], m.src === undefined ? undefined : hostPrefix(m.src));
    add([af, 'config', 'destination-address'], m.dst === undefined ? undefined : hostPrefix(m.dst));
    add([af, 'config', 'protocol'], m.protocol);
    add(['transport', 'config', 'source-port'], m.sport);
    add(['transport', 'config', 'destination-port'], m.dport);
    add(['action', 'config', 'next-hop'], r.nexthop);
    add(['state', 'matched-pkts'], e.packets);
    add(['state', 'matched-octets'], e.bytes);
  }
  for (const vip of sw.vips.values()) {
    const base: PathElem[] = [...NI(networkInstance), { name: 'protocols' }, { name: 'protocol', key: { identifier: 'STATIC', name: 'STATIC' } }, { name: 'static-routes' }, { name: 'static', key: { prefix: vip.prefix.text } }];
    out.push({ elems: [...base, { name: 'config' }, { name: 'prefix' }], value: vip.prefix.text });
    for (const m of vip.group.members()) {
      const nh: PathElem[] = [...base, { name: 'next-hops' }, { name: 'next-hop', key: { index: m } }, { name: 'config' }];
      out.push({ elems: [...nh, { name: 'index' }], value: m });
      out.push({ elems: [...nh, { name: 'next-hop' }], value: m });
    }
  }
  return out;
}

/** Whether `elems` lies under `query` (keys in the query must match; '*' or no key matches any). */
export function under(elems: PathElem[], query: PathElem[]): boolean {
  if (query.length > elems.length) return false;
  for (let i = 0; i < query.length; i++) {
    const q = query[i] as PathElem;
    const e = elems[i] as PathElem;
    if (q.name !== '*' && q.name !== e.name) return false;
    for (const [k, v] of Object.entries(q.key ?? {})) if (v !== '*' && e.key?.[k] !== v) return false;
  }
  return true;
}

export function scalarToTyped(v: Scalar): TypedValue {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? { uint_val: String(v) } : { int_val: String(v) };
  if (typeof v === 'boolean') return { bool_val: v };
  return { string_val: v };
}

/** The value of a TypedValue as a plain JS value (JSON parsed). */
export function typedToValue(t: TypedValue | undefined): unknown {
  if (t === undefined) return undefined;
  const which = t.value;
  switch (which) {
    case 'json_ietf_val':
    case 'json_val': {
      const raw = t[which];
      return raw === undefined ? undefined : JSON.parse(Buffer.from(raw).toString('utf8')) as unknown;
    }
    case 'uint_val':
    case 'int_val':
      return Number(t[which]);
    case 'string_val':
    case 'ascii_val':
      return t[which];
    case 'bool_val':
      return t.bool_val;
    case 'float_val':
      return t.float_val;
    default:
      throw new GnmiError('INVALID_ARGUMENT', `unsupported value type ${String(which)}`);
  }
}

/** Drops RFC 7951 module qualifiers ("openconfig-x:config" -> "config") from object keys. */
function unqualify(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(unqualify);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.includes(':') ? k.slice(k.indexOf(':') + 1) : k, unqualify(x)]));
}

const asObject = (v: unknown, where: string): Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new GnmiError('INVALID_ARGUMENT', `${where}: expected a JSON object`);
  return v as Record<string, unknown>;
};

function hostAddress(v: unknown, where: string): string {
  if (typeof v !== 'string') throw new GnmiError('INVALID_ARGUMENT', `${where}: expected an address string`);
  const [a = '', len] = v.split('/');
  let c: string;
  try {
    c = canonicalIp(a);
  } catch {
    throw new GnmiError('INVALID_ARGUMENT', `${where}: '${v}' is not an IP address`);
  }
  if (len !== undefined && len !== (c.includes(':') ? '128' : '32')) throw new GnmiError('INVALID_ARGUMENT', `${where}: only host prefixes are supported, got '${v}'`);
  return c;
}

function uintField(v: unknown, max: number, where: string): number {
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) throw new GnmiError('INVALID_ARGUMENT', `${where}: expected an integer 0-${max}`);
  return n;
}

const PROTOCOL_IDENTITIES: Record<string, number> = { IP_TCP: 6, IP_UDP: 17 };

/** Applies a leaf or container value at `rel` (relative to the rule) to a staged rule. */
function applyToRule(rule: Rule, rel: string[], value: unknown, where: string): void {
  const key = rel.join('/');
  const v = unqualify(value);
  switch (key) {
    case '':
      for (const [k, sub] of Object.entries(asObject(v, where))) if (k !== 'sequence-id') applyToRule(rule, [k], sub, `${where}/${k}`);
      return;
    case 'config':
    case 'state':
      return;
    case 'ipv4':
    case 'ipv6':
    case 'transport':
    case 'action': {
      const cfg = asObject(asObject(v, where)['config'] ?? {}, `${where}/config`);
      for (const [k, sub] of Object.entries(cfg)) applyToRule(rule, [rel[0] as string, 'config', k], sub, `${where}/config/${k}`);
      return;
    }
    case 'ipv4/config':
    case 'ipv6/config':
    case 'transport/config':
    case 'action/config':
      for (const [k, sub] of Object.entries(asObject(v, where))) applyToRule(rule, [rel[0] as string, 'config', k], sub, `${where}/${k}`);
      return;
    case 'ipv4/config/source-address':
    case 'ipv6/config/source-address':
      rule.match.src = hostAddress(v, where);
      rule.match.family = rel[0] === 'ipv6' ? 6 : 4;
      return;
    case 'ipv4/config/destination-address':
    case 'ipv6/config/destination-address':
      rule.match.dst = hostAddress(v, where);
      rule.match.family = rel[0] === 'ipv6' ? 6 : 4;
      return;
    case 'ipv4/config/protocol':
    case 'ipv6/config/protocol': {
      const ident = typeof v === 'string' ? PROTOCOL_IDENTITIES[v.replace(/^.*:/, '')] : undefined;
      rule.match.protocol = ident ?? uintField(v, 255, where);
      return;
    }
    case 'transport/config/source-port':
      rule.match.sport = uintField(v, 65535, where);
      return;
    case 'transport/config/destination-port':
      rule.match.dport = uintField(v, 65535, where);
      return;
    case 'action/config/next-hop':
      rule.nexthop = hostAddress(v, where);
      return;
    default:
      throw new GnmiError('INVALID_ARGUMENT', `${where}: unsupported leaf '${key}'`);
  }
}

type Target =
  | { kind: 'rule'; policy: string; seq: number; rel: string[] }
  | { kind: 'policy'; policy: string }
  | { kind: 'nexthop'; vip: string; index: string; rel: string[] }
  | { kind: 'static'; vip: string };

function targetOf(elems: PathElem[], where: string): Target {
  const names = elems.map((e) => e.name);
  const ni = elems[1]?.key?.['name'];
  if (names[0] !== 'network-instances' || names[1] !== 'network-instance' || ni === undefined) throw new GnmiError('INVALID_ARGUMENT', `${where}: paths start at /network-instances/network-instance[name]`);
  if (names[2] === 'policy-forwarding' && names[3] === 'policies' && names[4] === 'policy') {
    const policy = elems[4]?.key?.['policy-id'];
    if (policy === undefined) throw new GnmiError('INVALID_ARGUMENT', `${where}: policy needs its policy-id key`);
    if (names.length === 5) return { kind: 'policy', policy };
    const seqText = elems[6]?.key?.['sequence-id'];
    if (names[5] !== 'rules' || names[6] !== 'rule' || seqText === undefined) throw new GnmiError('INVALID_ARGUMENT', `${where}: expected rules/rule[sequence-id]`);
    return { kind: 'rule', policy, seq: uintField(seqText, 0xffffffff, `${where} sequence-id`), rel: names.slice(7) };
  }
  if (names[2] === 'protocols' && names[3] === 'protocol' && names[4] === 'static-routes' && names[5] === 'static') {
    const prefix = elems[5]?.key?.['prefix'];
    if (prefix === undefined) throw new GnmiError('INVALID_ARGUMENT', `${where}: static needs its prefix key`);
    const vip = hostAddress(prefix, `${where} prefix`);
    if (names.length === 6) return { kind: 'static', vip };
    const index = elems[7]?.key?.['index'];
    if (names[6] !== 'next-hops' || names[7] !== 'next-hop' || index === undefined) throw new GnmiError('INVALID_ARGUMENT', `${where}: expected next-hops/next-hop[index]`);
    return { kind: 'nexthop', vip, index, rel: names.slice(8) };
  }
  throw new GnmiError('INVALID_ARGUMENT', `${where}: unsupported path`);
}

/** Applies a SetRequest as one transaction; throws GnmiError and changes nothing on failure. */
export function applySet(sw: SimSwitch, req: SetRequest): UpdateResult[] {
  const now = sw.now();
  // Stage the current rules and groups.
  const rules = new Map<string, Rule>();
  const current = new Map<string, PinEntry>();
  for (const e of sw.pins.all()) {
    const r = ruleOf(e);
    if (r) {
      rules.set(ruleName(r.policy, r.seq), r);
      current.set(e.name, e);
    }
  }
  const groups = new Map<string, { members: string[]; byIndex: Map<string, string> }>();
  for (const v of sw.vips.values()) groups.set(v.address, { members: [...v.group.members()], byIndex: new Map(v.group.members().map((m) => [m, m])) });
  const results: UpdateResult[] = [];

  for (const p of req.delete ?? []) {
    const where = pathToString({ elem: joinPath(req.prefix, p) });
    const t = targetOf(joinPath(req.prefix, p), where);
    if (t.kind === 'policy') for (const k of [...rules.keys()]) if (k.startsWith(`${PIN_PREFIX}${t.policy}/`)) rules.delete(k);
    if (t.kind === 'rule') {
      if (t.rel.length > 0) throw new GnmiError('INVALID_ARGUMENT', `${where}: delete a whole rule, not its leaves`);
      rules.delete(ruleName(t.policy, t.seq));
    }
    if (t.kind === 'nexthop') {
      const g = groups.get(t.vip);
      const addr = g?.byIndex.get(t.index);
      if (g && addr !== undefined) {
        g.members = g.members.filter((m) => m !== addr);
        g.byIndex.delete(t.index);
      }
    }
    if (t.kind === 'static') groups.delete(t.vip);
    results.push({ path: p, op: 'DELETE' });
  }
  const write = (u: Update, op: 'REPLACE' | 'UPDATE'): void => {
    const elems = joinPath(req.prefix, u.path);
    const where = pathToString({ elem: elems });
    const t = targetOf(elems, where);
    const value = typedToValue(u.val);
    if (t.kind === 'rule') {
      const name = ruleName(t.policy, t.seq);
      const existing = rules.get(name);
      const base: Rule = op === 'REPLACE' && t.rel.length === 0 ? { policy: t.policy, seq: t.seq, match: {} } : existing ? copyRule(existing) : { policy: t.policy, seq: t.seq, match: {} };
      applyToRule(base, t.rel, value, where);
      rules.set(name, base);
    } else if (t.kind === 'nexthop') {
      let addr: string | undefined;
      const v = unqualify(value);
      if (t.rel.length === 0) addr = (asObject(asObject(v, where)['config'] ?? {}, where)['next-hop'] as string | undefined) ?? t.index;
      else if (t.rel.join('/') === 'config/next-hop') addr = v as string;
      else if (t.rel.join('/') === 'config/index' || t.rel.join('/') === 'config') addr = t.rel.length === 1 ? ((asObject(v, where)['next-hop'] as string | undefined) ?? t.index) : t.index;
      else throw new GnmiError('INVALID_ARGUMENT', `${where}: unsupported leaf`);
      const a = hostAddress(addr, where);
      const g = groups.get(t.vip) ?? { members: [], byIndex: new Map<string, string>() };
      const old = g.byIndex.get(t.index);
      if (old !== undefined && old !== a) g.members = g.members.filter((m) => m !== old);
      if (!g.members.includes(a)) g.members.push(a);
      g.byIndex.set(t.index, a);
      groups.set(t.vip, g);
    } else {
      throw new GnmiError('INVALID_ARGUMENT', `${where}: ${op.toLowerCase()} of a whole ${t.kind} is not supported`);
    }
    results.push({ path: u.path ?? {}, op });
  };
  for (const u of req.replace ?? []) write(u, 'REPLACE');
  for (const u of req.update ?? []) write(u, 'UPDATE');

  // Validate the staged state, then apply it.
  for (const [name, r] of rules) {
    if (r.nexthop === undefined) throw new GnmiError('INVALID_ARGUMENT', `rule ${name.slice(PIN_PREFIX.length)} has no action/config/next-hop`);
    if (r.match.src !== undefined && r.match.dst !== undefined && r.match.src.includes(':') !== r.match.dst.includes(':')) throw new GnmiError('INVALID_ARGUMENT', `rule ${name.slice(PIN_PREFIX.length)} mixes IPv4 and IPv6`);
  }
  const changed = [...rules].filter(([name, r]) => !sameRule(current.get(name), r));
  const removed = [...current.keys()].filter((name) => !rules.has(name));
  const programmedOthers = sw.pins.programmed - [...current.values()].filter((e) => e.status === 'programmed' && (removed.includes(e.name) || changed.some(([n]) => n === e.name))).length;
  if (programmedOthers + changed.length > sw.pins.capacity) {
    throw new GnmiError('RESOURCE_EXHAUSTED', `pin table full: ${changed.length} rules to program, ${sw.pins.capacity - programmedOthers} entries free`);
  }
  for (const name of removed) sw.pins.remove(name);
  for (const [name, r] of changed) sw.pins.upsert(name, specOf(r), now);
  for (const [vip, g] of groups) {
    const live = sw.vips.get(vip)?.group.members() ?? [];
    for (const m of live) if (!g.members.includes(m)) sw.groupRemove(vip, m);
    for (const m of g.members) if (!live.includes(m)) sw.groupAdd(vip, m);
  }
  for (const v of [...sw.vips.keys()]) if (!groups.has(v)) sw.removeVip(v);
  return results;
}

function specOf(r: Rule): PinSpec {
  const spec: PinSpec = { source: 'openconfig', match: { ...r.match }, idleTimeoutS: 0, hardTimeoutS: 0, persistent: true, priority: 0 };
  if (r.nexthop !== undefined) spec.nexthop = r.nexthop;
  return spec;
}

function sameRule(e: PinEntry | undefined, r: Rule): boolean {
  if (e === undefined) return false;
  const a = e.match;
  const b = r.match;
  return a.family === b.family && a.src === b.src && a.dst === b.dst && a.protocol === b.protocol && a.sport === b.sport && a.dport === b.dport && e.nexthop === r.nexthop;
}
