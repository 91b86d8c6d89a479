// Server identity: which nexthop sent a mirrored server reply, from the reply's source MAC
// or the mirror port it was copied on. Learnt from the switch (the adapter's
// serverIdentities: neighbour and MAC tables) and refreshed, with static entries from the
// configuration taking precedence. A MAC or port may stand for several nexthops (a dual-stack
// server answers from one MAC for its IPv4 and its IPv6 nexthop): the reply's address family,
// then the VIP's nexthops, narrow them down. An answer is given only where one nexthop is left:
// a MAC or port the map does not know (for that family), or knows for several servers, is
// reported with the reason and never guessed.

import type { ServerIdentity } from '../switch-adapters/contract.js';

export type UnknownServerReason =
  'no-identity' | 'unknown-mac' | 'ambiguous-mac' | 'unknown-port' | 'ambiguous-port';

export type IdentityAnswer = { nexthop: string } | { nexthop: undefined; why: UnknownServerReason };

/** A static entry from the configuration: a nexthop with its MAC and/or mirror port index. */
export interface StaticServer {
  nexthop: string;
  mac?: string;
  port?: number;
}

/**
 * What a reply says about its server besides MAC and port: its address family, and which nexthops its VIP
 * has.
 */
export interface ReplyScope {
  family: 4 | 6;
  /** Whether a nexthop is one of the VIP's (narrows a MAC or port shared by several servers of a family). */
  isNexthop?: (nexthop: string) => boolean;
}

/** A map key -> the distinct nexthops seen with it. */
function add<K>(m: Map<K, string[]>, k: K, nexthop: string): void {
  const cur = m.get(k);
  if (cur === undefined) m.set(k, [nexthop]);
  else if (!cur.includes(nexthop)) cur.push(nexthop);
}

const familyOfNexthop = (nh: string): 4 | 6 => (nh.includes(':') ? 6 : 4);

/**
 * The one nexthop of `cands` the scope leaves: 'unknown' where none of the family, 'ambiguous'
 * where several remain after the VIP's nexthops narrowed them.
 */
type Picked = { nexthop: string } | { why: 'unknown' | 'ambiguous' };

function pick(cands: readonly string[] | undefined, scope: ReplyScope | undefined): Picked {
  let c =
    scope === undefined ? (cands ?? []) : (cands ?? []).filter((n) => familyOfNexthop(n) === scope.family);
  if (c.length > 1 && scope?.isNexthop !== undefined) {
    const ofVip = c.filter(scope.isNexthop);
    if (ofVip.length > 0) c = ofVip;
  }
  return c.length === 0
    ? { why: 'unknown' }
    : c.length > 1
      ? { why: 'ambiguous' }
      : { nexthop: c[0] as string };
}

export function normalMac(mac: string): string {
  const hex = mac.toLowerCase().replace(/[^0-9a-f]/g, '');
  if (hex.length !== 12) throw new Error(`not a MAC address: '${mac}'`);
  return hex.match(/../g)?.join(':') ?? hex;
}

export class ServerIdentityMap {
  private readonly staticMac = new Map<string, string[]>();
  private readonly staticPort = new Map<number, string[]>();
  private learntMac = new Map<string, string[]>();
  private learntPort = new Map<number, string[]>();
  /** When the learnt part was last replaced (clock ms), and how many entries it had. */
  learntAt: number | undefined;
  learntCount = 0;
  lastError: string | undefined;

  constructor(statics: readonly StaticServer[] = []) {
    for (const s of statics) {
      if (s.mac !== undefined) add(this.staticMac, normalMac(s.mac), s.nexthop);
      if (s.port !== undefined) add(this.staticPort, s.port, s.nexthop);
    }
  }

  /** Replaces what was learnt from the switch. */
  learn(ids: readonly ServerIdentity[], at: number): void {
    const macs = new Map<string, string[]>();
    const ports = new Map<number, string[]>();
    for (const id of ids) {
      if (id.mac !== undefined) add(macs, normalMac(id.mac), id.nexthop);
      if (id.portIndex !== undefined) add(ports, id.portIndex, id.nexthop);
    }
    this.learntMac = macs;
    this.learntPort = ports;
    this.learntAt = at;
    this.learntCount = ids.length;
    this.lastError = undefined;
  }

  /**
   * The server a reply came from: by MAC first (static, then learnt), then by mirror port;
   * among the nexthops a MAC or port stands for, those of the reply's family and VIP (`scope`).
   */
  lookup(mac: string | undefined, port: number | undefined, scope?: ReplyScope): IdentityAnswer {
    if (mac === undefined && port === undefined) return { nexthop: undefined, why: 'no-identity' };
    // Static entries first; what the switch reports where they leave no nexthop of the family.
    const find = <K>(k: K, s: Map<K, string[]>, l: Map<K, string[]>): Picked => {
      const a = pick(s.get(k), scope);
      return 'why' in a && a.why === 'unknown' ? pick(l.get(k), scope) : a;
    };
    let why: UnknownServerReason | undefined;
    if (mac !== undefined) {
      const m = find(mac, this.staticMac, this.learntMac);
      if ('nexthop' in m) return m;
      why = m.why === 'ambiguous' ? 'ambiguous-mac' : 'unknown-mac';
    }
    if (port !== undefined) {
      const p = find(port, this.staticPort, this.learntPort);
      if ('nexthop' in p) return p;
      why ??= p.why === 'ambiguous' ? 'ambiguous-port' : 'unknown-port';
    }
    return { nexthop: undefined, why: why ?? 'no-identity' };
  }
}
