// Server identity: which nexthop sent a mirrored server reply, from the reply's source MAC
// or the mirror port it was copied on. Learnt from the switch (the adapter's
// serverIdentities: neighbour and MAC tables) and refreshed, with static entries from the
// configuration taking precedence. An answer is given only where it is unambiguous: a MAC or
// port the map does not know, or knows for several servers, is reported with the reason and
// never guessed.

import type { ServerIdentity } from '../switch-adapters/contract.js';

export type UnknownServerReason = 'no-identity' | 'unknown-mac' | 'ambiguous-mac' | 'unknown-port' | 'ambiguous-port';

export type IdentityAnswer = { nexthop: string } | { nexthop: undefined; why: UnknownServerReason };

/** A static entry from the configuration: a nexthop with its MAC and/or mirror port index. */
export interface StaticServer {
  nexthop: string;
  mac?: string;
  port?: number;
}

const AMBIGUOUS = '';

/** A map key -> nexthop where a key seen for two different nexthops maps to AMBIGUOUS. */
function add<K>(m: Map<K, string>, k: K, nexthop: string): void {
  const cur = m.get(k);
  m.set(k, cur === undefined || cur === nexthop ? nexthop : AMBIGUOUS);
}

export function normalMac(mac: string): string {
  const hex = mac.toLowerCase().replace(/[^0-9a-f]/g, '');
  if (hex.length !== 12) throw new Error(`not a MAC address: '${mac}'`);
  return hex.match(/../g)?.join(':') ?? hex;
}

export class ServerIdentityMap {
  private readonly staticMac = new Map<string, string>();
  private readonly staticPort = new Map<number, string>();
  private learntMac = new Map<string, string>();
  private learntPort = new Map<number, string>();
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
    const macs = new Map<string, string>();
    const ports = new Map<number, string>();
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

  /** The server a reply came from: by MAC first (static, then learnt), then by mirror port. */
  lookup(mac: string | undefined, port: number | undefined): IdentityAnswer {
    if (mac === undefined && port === undefined) return { nexthop: undefined, why: 'no-identity' };
    let why: UnknownServerReason | undefined;
    if (mac !== undefined) {
      const m = this.staticMac.get(mac) ?? this.learntMac.get(mac);
      if (m !== undefined && m !== AMBIGUOUS) return { nexthop: m };
      why = m === AMBIGUOUS ? 'ambiguous-mac' : 'unknown-mac';
    }
    if (port !== undefined) {
      const p = this.staticPort.get(port) ?? this.learntPort.get(port);
      if (p !== undefined && p !== AMBIGUOUS) return { nexthop: p };
      why ??= p === AMBIGUOUS ? 'ambiguous-port' : 'unknown-port';
    }
    return { nexthop: undefined, why: why ?? 'no-identity' };
  }
}
