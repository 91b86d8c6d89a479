// The part of the OpenConfig schema the simulator's gNMI target implements, as a tree of
// containers, keyed lists and typed leaves, written from the YANG of openconfig/public:
// openconfig-network-instance (4.7.0), openconfig-policy-forwarding with
// openconfig-pf-forwarding-policies and openconfig-pf-interfaces (1.2.0),
// openconfig-packet-match (2.3.0, with openconfig-packet-match-types),
// openconfig-local-routing (4.1.0), the resource utilization of openconfig-platform
// (0.32.0) and the neighbour tables of openconfig-if-ip (3.x: /interfaces/interface/
// subinterfaces/subinterface/ipv4|ipv6/neighbors/neighbor[ip], config ip and
// link-layer-address, state origin; served as state only). Paths are checked against it: in a
// Get or Subscribe an element it does not have is not implemented (UNIMPLEMENTED), as the
// gNMI specification's behaviour tables ask (3.3.4, 3.5.2.4); in a Set's update, replace or
// union_replace it is a path that is not valid (NOT_FOUND, 3.4.7); a key of the wrong name or
// type is invalid (INVALID_ARGUMENT).
//
// Each node carries the module whose namespace it is in, for JSON_IETF member names (RFC 7951
// section 4). A node defined in a grouping takes the namespace of the module where the
// grouping is used (RFC 7950 section 7.13), an augment's nodes that of the augmenting module
// (7.17): openconfig-network-instance brings in policy-forwarding by `uses
// oc-pf:policy-forwarding-top` (whose rules bring in ipv4, ipv6 and transport by `uses
// oc-pmatch:...-fields-top`) and static-routes by `uses oc-loc-rt:local-static-top`, so all of
// them are openconfig-network-instance's (openconfig-local-routing-network-instance's augment
// names the path `oc-ni:static-routes/oc-ni:static` accordingly); openconfig-if-ip augments
// subinterfaces with ipv4 and ipv6.

import { isIP } from 'node:net';
import { canonicalIp } from '../../lib/addr.js';
import type { PathElem } from '../../proto/gnmi.js';

export type GrpcCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'RESOURCE_EXHAUSTED'
  | 'UNIMPLEMENTED'
  | 'FAILED_PRECONDITION'
  | 'PERMISSION_DENIED';

/** An error that maps to a gRPC status code. */
export class GnmiError extends Error {
  override readonly name = 'GnmiError';
  constructor(
    readonly status: GrpcCode,
    message: string,
  ) {
    super(message);
  }
}

export type Scalar = string | number | boolean;

/** YANG types of the implemented leaves; `uint64` also stands for counter64 (RFC 7951: JSON string). */
export type LeafType =
  | { t: 'string' }
  | { t: 'bool' }
  | { t: 'uint'; max: number }
  | { t: 'uint64' }
  | { t: 'enum'; values: readonly string[] }
  | { t: 'identity'; module: string; values: readonly string[] }
  | { t: 'ip-prefix'; family?: 4 | 6 }
  | { t: 'ip-address' }
  | { t: 'ip-protocol' }
  | { t: 'port' };

export interface SchemaNode {
  readonly name: string;
  readonly kind: 'container' | 'list' | 'leaf';
  /** List keys in order. */
  readonly keys: readonly { name: string; type: LeafType }[];
  readonly type?: LeafType;
  /** config true (read-write) or config false (state). */
  readonly config: boolean;
  /** A counter (OPERATIONAL data in a Get by type). */
  readonly counter: boolean;
  readonly children: ReadonlyMap<string, SchemaNode>;
  /** Module that defines the node (for RFC 7951 qualified names). */
  readonly module: string;
}

/** IANA protocol numbers of the IP_PROTOCOL identities (openconfig-packet-match-types). */
export const IP_PROTOCOLS: Readonly<Record<string, number>> = {
  IP_ICMP: 1,
  IP_IGMP: 2,
  IP_IN_IP: 4,
  IP_TCP: 6,
  IP_UDP: 17,
  IP_RSVP: 46,
  IP_GRE: 47,
  IP_AUTH: 51,
  IP_PIM: 103,
  IP_L2TP: 115,
};
/** INSTALL_PROTOCOL_TYPE identities (openconfig-policy-types). */
const INSTALL_PROTOCOLS = [
  'BGP',
  'ISIS',
  'OSPF',
  'OSPF3',
  'STATIC',
  'DIRECTLY_CONNECTED',
  'LOCAL_AGGREGATE',
  'PIM',
  'IGMP',
  'GRIBI',
  'PCEP',
  'LOCAL',
] as const;

type Child = SchemaNode | ((config: boolean, module: string) => SchemaNode);

const build = (c: Child, config: boolean, module: string): SchemaNode =>
  typeof c === 'function' ? c(config, module) : c;

function container(
  name: string,
  children: Child[],
  opts: { config?: boolean; module?: string } = {},
): (config: boolean, module: string) => SchemaNode {
  return (cfg, mod) => {
    const config = opts.config ?? cfg;
    const module = opts.module ?? mod;
    return {
      name,
      kind: 'container',
      keys: [],
      config,
      counter: false,
      module,
      children: new Map(children.map((c) => build(c, config, module)).map((n) => [n.name, n])),
    };
  };
}

function list(
  name: string,
  keys: { name: string; type: LeafType }[],
  children: Child[],
): (config: boolean, module: string) => SchemaNode {
  return (config, module) => {
    const kids = [...keys.map((k) => leaf(k.name, k.type)), ...children].map((c) => build(c, config, module));
    return {
      name,
      kind: 'list',
      keys,
      config,
      counter: false,
      module,
      children: new Map(kids.map((n) => [n.name, n])),
    };
  };
}

function leaf(
  name: string,
  type: LeafType,
  opts: { counter?: boolean } = {},
): (config: boolean, module: string) => SchemaNode {
  return (config, module) => ({
    name,
    kind: 'leaf',
    keys: [],
    type,
    config,
    counter: opts.counter ?? false,
    module,
    children: new Map(),
  });
}

type LeafMaker = ReturnType<typeof leaf>;

/** The OpenConfig pattern: a `config` container and a `state` container with the same leaves (and more). */
const configState = (leaves: LeafMaker[], stateOnly: LeafMaker[] = []): Child[] => [
  container('config', leaves),
  container('state', [...leaves, ...stateOnly], { config: false }),
];

const STRING: LeafType = { t: 'string' };
const COUNTER = (name: string): LeafMaker => leaf(name, { t: 'uint64' }, { counter: true });

const ruleNode = list(
  'rule',
  [{ name: 'sequence-id', type: { t: 'uint', max: 0xffffffff } }],
  [
    ...configState(
      [leaf('sequence-id', { t: 'uint', max: 0xffffffff }), leaf('description', STRING)],
      [COUNTER('matched-pkts'), COUNTER('matched-octets')],
    ),
    // Groupings of openconfig-packet-match, used here: openconfig-network-instance's nodes.
    container(
      'ipv4',
      configState([
        leaf('source-address', { t: 'ip-prefix', family: 4 }),
        leaf('destination-address', { t: 'ip-prefix', family: 4 }),
        leaf('protocol', { t: 'ip-protocol' }),
      ]),
    ),
    container(
      'ipv6',
      configState([
        leaf('source-address', { t: 'ip-prefix', family: 6 }),
        leaf('destination-address', { t: 'ip-prefix', family: 6 }),
        leaf('protocol', { t: 'ip-protocol' }),
      ]),
    ),
    container(
      'transport',
      configState([leaf('source-port', { t: 'port' }), leaf('destination-port', { t: 'port' })]),
    ),
    container('action', configState([leaf('next-hop', { t: 'ip-address' }), leaf('discard', { t: 'bool' })])),
  ],
);

/**
 * openconfig-policy-forwarding's grouping policy-forwarding-top, as used in a network instance (its
 * namespace).
 */
const policyForwarding = container('policy-forwarding', [
  container('policies', [
    list(
      'policy',
      [{ name: 'policy-id', type: STRING }],
      [
        ...configState([
          leaf('policy-id', STRING),
          leaf('type', { t: 'enum', values: ['PBR_POLICY', 'VRF_SELECTION_POLICY'] }),
        ]),
        container('rules', [ruleNode]),
      ],
    ),
  ]),
  container('interfaces', [
    list(
      'interface',
      [{ name: 'interface-id', type: STRING }],
      configState([leaf('interface-id', STRING), leaf('apply-forwarding-policy', STRING)]),
    ),
  ]),
]);

const protocols = container('protocols', [
  list(
    'protocol',
    [
      {
        name: 'identifier',
        type: { t: 'identity', module: 'openconfig-policy-types', values: INSTALL_PROTOCOLS },
      },
      { name: 'name', type: STRING },
    ],
    [
      ...configState([
        leaf('identifier', { t: 'identity', module: 'openconfig-policy-types', values: INSTALL_PROTOCOLS }),
        leaf('name', STRING),
      ]),
      // openconfig-local-routing's grouping local-static-top, used here (this namespace).
      container('static-routes', [
        list(
          'static',
          [{ name: 'prefix', type: { t: 'ip-prefix' } }],
          [
            ...configState([leaf('prefix', { t: 'ip-prefix' })]),
            container('next-hops', [
              list(
                'next-hop',
                [{ name: 'index', type: STRING }],
                configState([leaf('index', STRING), leaf('next-hop', { t: 'ip-address' })]),
              ),
            ]),
          ],
        ),
      ]),
    ],
  ),
]);

const components = container(
  'components',
  [
    list(
      'component',
      [{ name: 'name', type: STRING }],
      [
        ...configState([leaf('name', STRING)]),
        container('integrated-circuit', [
          container('utilization', [
            container('resources', [
              list(
                'resource',
                [{ name: 'name', type: STRING }],
                configState(
                  [leaf('name', STRING)],
                  [
                    leaf('used', { t: 'uint64' }),
                    leaf('free', { t: 'uint64' }),
                    leaf('max-limit', { t: 'uint64' }),
                  ],
                ),
              ),
            ]),
          ]),
        ]),
      ],
    ),
  ],
  { module: 'openconfig-platform' },
);

/** The schema root: its children are the top-level containers. */
/** openconfig-if-ip's neighbour list (ARP for ipv4, ND for ipv6), keyed by `ip`. */
const neighbors = container('neighbors', [
  list(
    'neighbor',
    [{ name: 'ip', type: { t: 'ip-address' } }],
    configState(
      [leaf('ip', { t: 'ip-address' }), leaf('link-layer-address', STRING)],
      [leaf('origin', { t: 'enum', values: ['OTHER', 'STATIC', 'DYNAMIC'] })],
    ),
  ),
]);

const interfaces = container(
  'interfaces',
  [
    list(
      'interface',
      [{ name: 'name', type: STRING }],
      [
        ...configState([leaf('name', STRING)]),
        container('subinterfaces', [
          list(
            'subinterface',
            [{ name: 'index', type: { t: 'uint', max: 0xffffffff } }],
            [
              ...configState([leaf('index', { t: 'uint', max: 0xffffffff })]),
              container('ipv4', [neighbors], { module: 'openconfig-if-ip' }),
              container('ipv6', [neighbors], { module: 'openconfig-if-ip' }),
            ],
          ),
        ]),
      ],
    ),
  ],
  { module: 'openconfig-interfaces' },
);

export const ROOT: SchemaNode = container('', [
  container(
    'network-instances',
    [
      list(
        'network-instance',
        [{ name: 'name', type: STRING }],
        [...configState([leaf('name', STRING)]), policyForwarding, protocols],
      ),
    ],
    { module: 'openconfig-network-instance' },
  ),
  components,
  interfaces,
])(true, '');

/** Strips an RFC 7951 module qualifier ("openconfig-x:name" -> "name"). */
export const unqualified = (s: string): string =>
  s.includes(':') && !isIP(s.split('/')[0] ?? '') ? s.slice(s.indexOf(':') + 1) : s;

const bad = (where: string, what: string): GnmiError =>
  new GnmiError('INVALID_ARGUMENT', `${where}: ${what}`);

function ipPrefix(v: string, family: 4 | 6 | undefined, where: string): string {
  const [addr = '', len, extra] = v.split('/');
  const fam = isIP(addr);
  if (
    fam === 0 ||
    len === undefined ||
    extra !== undefined ||
    !/^\d{1,3}$/.test(len) ||
    Number(len) > (fam === 4 ? 32 : 128)
  )
    throw bad(where, `'${v}' is not an IP prefix`);
  if (family !== undefined && fam !== family) throw bad(where, `'${v}' is not an IPv${family} prefix`);
  return `${canonicalIp(addr)}/${Number(len)}`;
}

/** Checks a value against a leaf type and returns its canonical form; throws INVALID_ARGUMENT. */
export function checkValue(type: LeafType, raw: unknown, where: string): Scalar {
  switch (type.t) {
    case 'string':
      if (typeof raw !== 'string') throw bad(where, `expected a string, got ${JSON.stringify(raw)}`);
      return raw;
    case 'bool':
      if (typeof raw !== 'boolean') throw bad(where, `expected a boolean, got ${JSON.stringify(raw)}`);
      return raw;
    case 'uint':
    case 'port': {
      const max = type.t === 'port' ? 65535 : type.max;
      const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max)
        throw bad(where, `expected an integer 0..${max}, got ${JSON.stringify(raw)}`);
      return n;
    }
    case 'uint64': {
      const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
        throw bad(where, `expected an unsigned integer, got ${JSON.stringify(raw)}`);
      return n;
    }
    case 'enum':
      if (typeof raw !== 'string' || !type.values.includes(raw))
        throw bad(where, `expected one of ${type.values.join(', ')}, got ${JSON.stringify(raw)}`);
      return raw;
    case 'identity': {
      const name = typeof raw === 'string' ? unqualified(raw) : undefined;
      if (name === undefined || !type.values.includes(name))
        throw bad(
          where,
          `expected an identity of ${type.module} (${type.values.join(', ')}), got ${JSON.stringify(raw)}`,
        );
      return name;
    }
    case 'ip-prefix':
      if (typeof raw !== 'string')
        throw bad(where, `expected an IP prefix string, got ${JSON.stringify(raw)}`);
      return ipPrefix(raw, type.family, where);
    case 'ip-address':
      if (typeof raw !== 'string' || isIP(raw) === 0)
        throw bad(where, `'${String(raw)}' is not an IP address`);
      return canonicalIp(raw);
    case 'ip-protocol': {
      // openconfig-packet-match-types ip-protocol-type: uint8 0..254, or an IP_PROTOCOL identity.
      if (typeof raw === 'string' && !/^\d+$/.test(raw)) {
        const name = unqualified(raw);
        if (IP_PROTOCOLS[name] === undefined)
          throw bad(
            where,
            `expected a protocol number 0..254 or an IP_PROTOCOL identity, got ${JSON.stringify(raw)}`,
          );
        return name;
      }
      const n = typeof raw === 'string' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 254)
        throw bad(
          where,
          `expected a protocol number 0..254 or an IP_PROTOCOL identity, got ${JSON.stringify(raw)}`,
        );
      return n;
    }
  }
}

/** The protocol number of a stored ip-protocol value. */
export const protocolNumber = (v: Scalar): number =>
  typeof v === 'number' ? v : (IP_PROTOCOLS[String(v)] ?? -1);

export interface Resolved {
  /** The schema node of each element. */
  nodes: SchemaNode[];
  /** Elements with canonical key values ('*' kept). */
  elems: PathElem[];
  /** Some key or name is a wildcard. */
  wildcard: boolean;
}

/**
 * Resolves elements against the schema. Unknown names answer `unknown` (UNIMPLEMENTED for a
 * read, 3.3.4; NOT_FOUND for a write, 3.4.7); keys on a node that has none, unknown key
 * names, key values of the wrong type are INVALID_ARGUMENT.
 */
export function resolve(
  elems: readonly PathElem[],
  where: string,
  unknown: 'UNIMPLEMENTED' | 'NOT_FOUND' = 'UNIMPLEMENTED',
  from?: Resolved,
): Resolved {
  // `from`: a prefix already resolved, which `elems` continue.
  let node = from?.nodes.at(-1) ?? ROOT;
  const nodes: SchemaNode[] = from === undefined ? [] : [...from.nodes];
  const out: PathElem[] = from === undefined ? [] : [...from.elems];
  let wildcard = from?.wildcard ?? false;
  for (const e of elems) {
    if (e.name === '') throw bad(where, 'empty path element');
    if (e.name === '*' || e.name === '...')
      throw new GnmiError(
        'UNIMPLEMENTED',
        `${where}: wildcard path element '${e.name}' is not implemented; use key wildcards`,
      );
    const child = node.children.get(unqualified(e.name));
    if (child === undefined)
      throw new GnmiError(
        unknown,
        `${where}: '${e.name}' is ${unknown === 'NOT_FOUND' ? 'not in the model' : 'not implemented'} under /${nodes.map((n) => n.name).join('/')}`,
      );
    const keys = e.key ?? {};
    const names = Object.keys(keys);
    if (child.kind !== 'list' && names.length > 0)
      throw bad(where, `'${child.name}' is not a list and takes no keys`);
    const canon: Record<string, string> = {};
    for (const k of names) {
      const spec = child.keys.find((x) => x.name === k);
      if (spec === undefined)
        throw bad(
          where,
          `'${child.name}' has no key '${k}' (keys: ${child.keys.map((x) => x.name).join(', ')})`,
        );
      const v = keys[k] as string;
      if (v === '*') {
        wildcard = true;
        canon[k] = v;
      } else canon[k] = String(checkValue(spec.type, v, `${where} key ${k}`));
    }
    // A list's keys not given match any entry: they are given as '*'.
    if (child.kind === 'list' && names.length < child.keys.length) {
      wildcard = true;
      for (const k of child.keys) canon[k.name] ??= '*';
    }
    out.push(child.kind === 'list' ? { name: child.name, key: canon } : { name: child.name });
    nodes.push(child);
    node = child;
  }
  return { nodes, elems: out, wildcard };
}

const byNames = new Map<string, SchemaNode | undefined>();

/** The schema node at a path of element names (cached; no key checks). */
export function nodeByNames(names: readonly string[]): SchemaNode | undefined {
  const k = names.join('/');
  if (byNames.has(k)) return byNames.get(k);
  let node: SchemaNode | undefined = ROOT;
  for (const n of names) node = node?.children.get(n);
  byNames.set(k, node);
  return node;
}
