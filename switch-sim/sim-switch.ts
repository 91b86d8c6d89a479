// SimSwitch: the behavioural model of one switch. Each VIP is routed over an ECMP group of
// server nexthops; a pin table (DirectFlow-like) takes priority over ECMP; packets are
// delivered to simulated servers, which reset connections they do not hold. SYNs (and
// optionally FIN/RST) are handed to the mirror hook, as a switch's mirror session would.
// With a programming delay, configuration (group changes, pins) is accepted at once but
// reaches forwarding only after the delay, in the order it was accepted, as on hardware
// where the agent programs the ASIC after the configuration is committed.
// A second mirror session on the server-facing ports (replyMirror) copies each server's
// SYN-ACK, with the server's MAC and the port it came in on, as an ACL matching TCP from the
// VIP with SYN and ACK would; optionally its RSTs and FINs too (each a separate ACL line).

import { canonicalIp } from '../lib/addr.js';
import { tupleOf } from '../mirror-receiver/tuple.js';
import { ModNGroup, ResilientGroup, type EcmpGroup } from './ecmp-group.js';
import { flowHash } from './hash.js';
import { PinTable, type PinEntry } from './pin-table.js';
import { parsePrefix, prefixContains, type Prefix } from '../lib/prefix.js';
import { SimServer, type SegmentOutcome } from './servers.js';

export const TCP = 6;
const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;

export interface SimPacket {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  protocol: number;
  flags: number;
  bytes: number;
}

export interface SimSwitchOptions {
  hostname: string;
  /** Seed of the ECMP hash. */
  hashSeed: number;
  /** 'resilient' (bucket table) or 'mod-n'. */
  ecmpMode: 'resilient' | 'mod-n';
  /** Buckets per resilient group unless a VIP sets its own (capacity x redundancy). */
  bucketCount: number;
  /** Hardware pin table entries. */
  pinCapacity: number;
  /** Client-facing interface and the prefixes of clients routed through it. */
  uplink: { interface: string; nexthop: string; prefixes: string[] };
  /** Mirror FIN and RST segments too, not only SYNs. */
  mirrorFinRst: boolean;
  /** Time from accepting a group change or a pin to its effect in forwarding (ms). */
  programDelayMs?: number;
  /** Pins only, where they take longer than group changes (a TCAM entry per flow); default programDelayMs. */
  pinProgramDelayMs?: number;
  /** Pin table entries held by other owners (the table is shared). */
  reservedPinEntries?: number;
  /**
   * Client routes other than the uplink, checked first: connected subnets (vias without a
   * nexthop address) and ECMP routes toward clients (several vias).
   */
  clientRoutes?: ClientRoute[];
  now: () => number;
}

export interface ClientRoute {
  prefix: string;
  /** `port`: where clients of a connected subnet on an SVI are learnt (for ARP answers). */
  vias: { interface: string; nexthopAddr?: string; port?: string }[];
}

/** How a server is reached: its routed interface and the physical ports behind it. */
export interface ServerAttachment {
  /** The interface the VIP route's via names: EthernetN, VlanN or Port-ChannelN. */
  via: string;
  /** VLAN of an SVI-attached server. */
  vlan?: number;
  /** Where the server's MAC is learnt on an SVI: a port or a port-channel. */
  l2?: string;
  /** Physical ports packets to the server leave on (a port-channel's members). */
  ports: string[];
  mac: string;
}

export interface Vip {
  readonly address: string;
  readonly prefix: Prefix;
  /** The group as configured (what `show ip route` lists). */
  readonly group: EcmpGroup;
  /** The group forwarding uses: the configured one once programming has caught up. */
  readonly fwd: EcmpGroup;
}

interface GroupOp {
  at: number;
  vip: string;
  op: 'add' | 'remove';
  nexthop: string;
  /** Its entry in groupChanges, completed when it reaches forwarding. */
  record?: SimSwitch['groupChanges'][number];
}

/** A group change as it reaches forwarding: the VIP, what changed, and when it was due. */
export interface ForwardingChange {
  vip: string;
  op: 'add' | 'remove';
  nexthop: string;
  at: number;
}

/**
 * Sees each group change reach forwarding: `before` with the group forwarding used until now,
 * `after` with the one it uses from now. Neither may deliver packets or ask the switch for a
 * nexthop (forwarding is mid-change): pick from the group given, with `hashOf`.
 */
export interface ForwardingWatcher {
  before(change: ForwardingChange, group: EcmpGroup): void;
  after(change: ForwardingChange, group: EcmpGroup): void;
}

export interface Delivery {
  nexthop: string | undefined;
  via: 'pin' | 'ecmp' | 'drop' | 'no-route';
  outcome: SegmentOutcome | 'lost';
  pin?: PinEntry;
}

/** Where a mirrored reply entered the switch: the server, its MAC and the physical port. */
export interface ReplySource {
  server: string;
  mac: string;
  port: string;
}

export interface SwitchCounters {
  packets: number;
  viaPin: number;
  viaEcmp: number;
  dropped: number;
  mirrored: number;
}

export class SimSwitch {
  readonly pins: PinTable;
  readonly vips = new Map<string, Vip>();
  readonly servers = new Map<string, SimServer>();
  /** Nexthop address -> interface name (the routed interface of the VIP route's via). */
  readonly interfaces = new Map<string, string>();
  /** Nexthop address -> how the server is attached (ports, VLAN, MAC). */
  readonly attachments = new Map<string, ServerAttachment>();
  /** Port-channel name -> member ports. */
  readonly portChannels = new Map<string, string[]>();
  /** Configuration revision of the VIP groups, for ON_CHANGE subscribers. */
  groupRevision = 0;
  directflowEnabled = false;
  mirror: ((pkt: SimPacket) => void) | undefined;
  /** The reply mirror session: called with each server's SYN-ACK and where it came from. */
  replyMirror: ((reply: SimPacket, from: ReplySource) => void) | undefined;
  /**
   * The reply session's ACL also matches RST from a VIP: a server's reset of a connection it
   * does not hold (one moved to it) is mirrored too, so resets after a change can be counted.
   */
  replyMirrorRst = false;
  /** The reply session also matches FIN from a VIP: the server's half of each close. */
  replyMirrorFin = false;
  readonly counters: SwitchCounters = { packets: 0, viaPin: 0, viaEcmp: 0, dropped: 0, mirrored: 0 };
  /** The last group changes as accepted (simulated and wall-clock ms), newest last, at most 1,000. */
  readonly groupChanges: {
    at: number;
    wallAt: number;
    vip: string;
    op: 'add' | 'remove';
    nexthop: string;
    /** Programmed pins of the VIP toward the nexthop when the change reached forwarding (the truth a
     * drain's `pinned` figure is judged by). */
    pinsToward?: number;
    /** Of those, the pins of connections the nexthop's server still holds open. */
    pinsTowardOpen?: number;
  }[] = [];
  private readonly uplinkPrefixes: Prefix[];
  private nextPort = 1;
  private groupOps: GroupOp[] = [];
  /** Time from accepting a group change to its effect in forwarding. */
  groupDelayMs: number;
  /**
   * Called around each group change's effect in forwarding: `before` with the old group in use, `after` with
   * the new.
   */
  private readonly forwardingWatchers: ForwardingWatcher[] = [];

  constructor(readonly options: SimSwitchOptions) {
    this.pins = new PinTable(options.pinCapacity, {
      programDelayMs: options.pinProgramDelayMs ?? options.programDelayMs ?? 0,
      reserved: options.reservedPinEntries ?? 0,
      now: options.now,
    });
    this.groupDelayMs = options.programDelayMs ?? 0;
    this.uplinkPrefixes = options.uplink.prefixes.map(parsePrefix);
  }

  get programDelayMs(): number {
    return this.groupDelayMs;
  }

  /** Sets the programming delay of group changes and pins (takes effect for later changes). */
  set programDelayMs(ms: number) {
    this.groupDelayMs = ms;
    this.pins.programDelayMs = ms;
  }

  get now(): () => number {
    return this.options.now;
  }

  /** Attaches a server (a nexthop) on the next free interface; returns the interface. */
  addServer(address: string): string {
    const a = canonicalIp(address);
    const existing = this.interfaces.get(a);
    if (existing !== undefined) return existing;
    if (this.nextPort === Number(this.options.uplink.interface.replace(/\D+/g, ''))) this.nextPort++;
    const ifname = `Ethernet${this.nextPort++}`;
    this.interfaces.set(a, ifname);
    this.attachments.set(a, { via: ifname, ports: [ifname], mac: macOf(a) });
    this.servers.set(a, new SimServer(a));
    return ifname;
  }

  /** Creates (or replaces) a port-channel with its member ports. */
  addPortChannel(name: string, members: string[]): void {
    this.portChannels.set(name, [...members]);
  }

  /**
   * Attaches a server behind a routed port-channel (`via: 'Port-Channel1'`), or behind an SVI
   * (`via: 'Vlan10'`) with its MAC learnt on `l2` (a port or a port-channel). Several servers
   * may share one interface; the physical port a packet leaves on is picked by the LAG hash.
   */
  attachServer(address: string, at: { via: string; vlan?: number; l2?: string }): ServerAttachment {
    const a = canonicalIp(address);
    const behind = at.l2 ?? at.via;
    const members = this.portChannels.get(behind);
    if (/^Port-Channel/i.test(behind) && members === undefined)
      throw new Error(`${behind} is not configured`);
    const att: ServerAttachment = {
      via: at.via,
      ports: members ?? [behind],
      mac: macOf(a),
      ...(at.vlan === undefined ? {} : { vlan: at.vlan }),
      ...(at.l2 === undefined ? {} : { l2: at.l2 }),
    };
    this.attachments.set(a, att);
    this.interfaces.set(a, at.via);
    if (!this.servers.has(a)) this.servers.set(a, new SimServer(a));
    return att;
  }

  /** The physical port a flow to `nexthop` leaves on (a port-channel member by the LAG hash). */
  egressPort(nexthop: string, hash: number): string | undefined {
    const att = this.attachments.get(nexthop);
    if (att === undefined) return undefined;
    return att.ports[(hash >>> 8) % att.ports.length];
  }

  /** The client route covering an address: a configured client route first, then the uplink. */
  clientRouteFor(address: string): { prefix: Prefix; route: ClientRoute } | undefined {
    let best: { prefix: Prefix; route: ClientRoute } | undefined;
    for (const r of this.options.clientRoutes ?? []) {
      const p = parsePrefix(r.prefix);
      if (prefixContains(p, address) && (best === undefined || p.length > best.prefix.length))
        best = { prefix: p, route: r };
    }
    if (best !== undefined) return best;
    const up = this.uplinkPrefixFor(address);
    if (up === undefined) return undefined;
    return {
      prefix: up,
      route: {
        prefix: up.text,
        vias: [{ interface: this.options.uplink.interface, nexthopAddr: this.options.uplink.nexthop }],
      },
    };
  }

  /** Creates a VIP routed over `members` (attached as servers if new). */
  addVip(address: string, members: string[], bucketCount = this.options.bucketCount): Vip {
    const a = canonicalIp(address);
    if (this.vips.has(a)) throw new Error(`VIP ${a} exists`);
    const ms = members.map((m) => canonicalIp(m));
    for (const m of ms) this.addServer(m);
    const make = (): EcmpGroup =>
      this.options.ecmpMode === 'resilient' ? new ResilientGroup(bucketCount, ms) : new ModNGroup(ms);
    const vip: Vip = { address: a, prefix: parsePrefix(a), group: make(), fwd: make() };
    this.vips.set(a, vip);
    this.groupRevision++;
    return vip;
  }

  removeVip(address: string): boolean {
    const ok = this.vips.delete(canonicalIp(address));
    if (ok) this.groupRevision++;
    return ok;
  }

  /** Adds a nexthop to a VIP's group (creating the VIP if needed). */
  groupAdd(vipAddress: string, nexthop: string): void {
    const a = canonicalIp(vipAddress);
    const nh = canonicalIp(nexthop);
    const vip = this.vips.get(a);
    if (vip === undefined) {
      this.addVip(a, [nh]);
      return;
    }
    this.addServer(nh);
    vip.group.add(nh);
    this.groupRevision++;
    this.program({ at: this.options.now() + this.groupDelayMs, vip: a, op: 'add', nexthop: nh });
  }

  groupRemove(vipAddress: string, nexthop: string): void {
    const vip = this.vips.get(canonicalIp(vipAddress));
    if (vip === undefined) return;
    const nh = canonicalIp(nexthop);
    vip.group.remove(nh);
    this.groupRevision++;
    this.program({ at: this.options.now() + this.groupDelayMs, vip: vip.address, op: 'remove', nexthop: nh });
    if (vip.group.members().length === 0) this.removeVip(vip.address);
  }

  /** Members forwarding uses now (the configured ones once programming has caught up). */
  programmedMembers(vipAddress: string): readonly string[] {
    this.settle(this.options.now());
    return this.vips.get(canonicalIp(vipAddress))?.fwd.members() ?? [];
  }

  /** Group changes not yet in forwarding. */
  get pendingGroupChanges(): number {
    this.settle(this.options.now());
    return this.groupOps.length;
  }

  private program(op: GroupOp): void {
    op.record = {
      at: this.options.now(),
      wallAt: Date.now(),
      vip: op.vip,
      op: op.op,
      nexthop: op.nexthop,
    };
    this.groupChanges.push(op.record);
    if (this.groupChanges.length > 1000) this.groupChanges.shift();
    this.groupOps.push(op);
    this.settle(this.options.now());
  }

  /** Watches group changes as they reach forwarding (what a change moves is measured there). */
  watchForwarding(w: ForwardingWatcher): void {
    this.forwardingWatchers.push(w);
  }

  /** Applies the group changes whose programming time has come to forwarding, in order. */
  private settle(now: number): void {
    let i = 0;
    for (; i < this.groupOps.length; i++) {
      const op = this.groupOps[i] as GroupOp;
      if (op.at > now) break;
      const vip = this.vips.get(op.vip);
      if (vip === undefined) continue;
      const change = { vip: op.vip, op: op.op, nexthop: op.nexthop, at: op.at };
      for (const w of this.forwardingWatchers) w.before(change, vip.fwd);
      if (op.op === 'add') vip.fwd.add(op.nexthop);
      else vip.fwd.remove(op.nexthop);
      for (const w of this.forwardingWatchers) w.after(change, vip.fwd);
      if (op.record !== undefined) {
        op.record.pinsToward = this.pins.programmedToward(op.vip, op.nexthop);
        // Of those, the pins of connections the server still holds (a closed one's pin protects nothing).
        const server = this.servers.get(op.nexthop);
        op.record.pinsTowardOpen = this.pins.programmedToward(
          op.vip,
          op.nexthop,
          (e) => server?.holds(`${e.match.src}|${e.match.sport}|${e.match.dst}|${e.match.dport}`) === true,
        );
      }
    }
    if (i > 0) this.groupOps = this.groupOps.slice(i);
  }

  /** The VIP a destination address belongs to. */
  vipFor(dst: string): Vip | undefined {
    return this.vips.get(dst);
  }

  /**
   * The nexthop forwarding picks for a flow, ignoring pins (what `show load-balance destination` answers).
   */
  ecmpNexthop(src: string, dst: string, protocol: number, sport: number, dport: number): string | undefined {
    this.settle(this.options.now());
    const vip = this.vips.get(dst);
    if (vip === undefined) return undefined;
    return vip.fwd.pick(
      flowHash(
        tupleOf({ family: src.includes(':') ? 6 : 4, src, dst, sport, dport }),
        protocol,
        this.options.hashSeed,
      ),
    );
  }

  /**
   * The nexthop a flow would take were the switch to hash with `seed` instead of its own (a
   * wrong model of the switch, for tests of resolution by observation), ignoring pins.
   */
  ecmpNexthopSeeded(
    src: string,
    dst: string,
    protocol: number,
    sport: number,
    dport: number,
    seed: number,
  ): string | undefined {
    return this.vips
      .get(canonicalIp(dst))
      ?.fwd.pick(
        flowHash(tupleOf({ family: src.includes(':') ? 6 : 4, src, dst, sport, dport }), protocol, seed),
      );
  }

  /**
   * For each flow, whether adding `nexthop` to the VIP's group moves it: the buckets the
   * resilient table would hand over (ResilientGroup.previewAdd); every flow with mod-N.
   */
  movedByAdd(
    vipAddress: string,
    nexthop: string,
    flows: readonly { src: string; dst: string; sport: number; dport: number }[],
  ): boolean[] {
    const group = this.vips.get(canonicalIp(vipAddress))?.fwd;
    if (!(group instanceof ResilientGroup)) return flows.map(() => true);
    const moved = new Set(group.previewAdd(canonicalIp(nexthop)));
    return flows.map((f) => moved.has(group.bucketOf(this.hashOf(f.src, f.dst, TCP, f.sport, f.dport))));
  }

  /**
   * Each server's MAC and, where it is alone behind one port, that port's index, as the ARP and MAC tables
   * would show.
   */
  serverIdentities(): { nexthop: string; mac: string; interface: string; portIndex?: number }[] {
    const perPort = new Map<string, number>();
    for (const att of this.attachments.values())
      for (const p of att.ports) perPort.set(p, (perPort.get(p) ?? 0) + 1);
    return [...this.attachments].map(([nexthop, att]) => {
      const only = att.ports.length === 1 ? att.ports[0] : undefined;
      const portIndex = only === undefined ? undefined : portIndexOf(only);
      return {
        nexthop,
        mac: att.mac,
        interface: att.via,
        ...(portIndex === undefined || perPort.get(only as string) !== 1 ? {} : { portIndex }),
      };
    });
  }

  /** The hash of a flow, as the ECMP groups see it. */
  hashOf(src: string, dst: string, protocol: number, sport: number, dport: number): number {
    return flowHash(
      tupleOf({ family: src.includes(':') ? 6 : 4, src, dst, sport, dport }),
      protocol,
      this.options.hashSeed,
    );
  }

  /** Whether a client address is routed through the uplink. */
  isClient(address: string): boolean {
    return this.uplinkPrefixes.some((p) => prefixContains(p, address));
  }

  uplinkPrefixFor(address: string): Prefix | undefined {
    return this.uplinkPrefixes.find((p) => prefixContains(p, address));
  }

  /** Forwards a client packet toward the VIP and delivers it to the server it reaches. */
  deliver(pkt: SimPacket): Delivery {
    this.counters.packets++;
    const now = this.options.now();
    const isSyn = (pkt.flags & SYN) !== 0 && (pkt.flags & 0x10) === 0;
    if (
      this.mirror !== undefined &&
      (isSyn || (this.options.mirrorFinRst && (pkt.flags & (FIN | RST)) !== 0))
    ) {
      this.counters.mirrored++;
      this.mirror(pkt);
    }
    let nexthop: string | undefined;
    let via: Delivery['via'];
    const pin = this.pins.match(pkt, pkt.bytes, now, this.directflowEnabled);
    if (pin !== undefined) {
      nexthop = pin.nexthop;
      via = nexthop === undefined ? 'drop' : 'pin';
      this.counters.viaPin++;
    } else {
      nexthop = this.ecmpNexthop(pkt.src, pkt.dst, pkt.protocol, pkt.sport, pkt.dport);
      via = nexthop === undefined ? 'no-route' : 'ecmp';
      if (nexthop !== undefined) this.counters.viaEcmp++;
    }
    const server = nexthop === undefined ? undefined : this.servers.get(nexthop);
    if (server === undefined) {
      this.counters.dropped++;
      return { nexthop, via: nexthop === undefined ? via : 'drop', outcome: 'lost', pin };
    }
    const conn = `${pkt.src}|${pkt.sport}|${pkt.dst}|${pkt.dport}`;
    const outcome = server.receive(conn, pkt.flags);
    if (outcome === 'opened' && this.replyMirror !== undefined && nexthop !== undefined)
      this.mirrorReply(pkt, nexthop, 0x12);
    if (outcome === 'reset' && this.replyMirrorRst && this.replyMirror !== undefined && nexthop !== undefined)
      this.mirrorReply(pkt, nexthop, 0x04);
    return { nexthop, via, outcome, pin };
  }

  /**
   * The server of a connection closes it (FIN) or resets it (RST): the segment leaves the
   * server toward the client, entering the switch on the server's port, where only the reply
   * session sees it. `client` is the connection as the client sends it (src = client).
   * Returns false if that server does not hold the connection.
   */
  serverSend(client: SimPacket, server: string, kind: 'fin' | 'rst'): boolean {
    const srv = this.servers.get(server);
    const conn = `${client.src}|${client.sport}|${client.dst}|${client.dport}`;
    if (srv === undefined || !(kind === 'fin' ? srv.fin(conn) : srv.rst(conn))) return false;
    if (kind === 'fin' ? this.replyMirrorFin : this.replyMirrorRst)
      this.mirrorReply(client, server, kind === 'fin' ? 0x11 : 0x04);
    return true;
  }

  /**
   * The server's SYN-ACK (or RST) enters on the port toward it (a port-channel member by the LAG hash) and is
   * mirrored.
   */
  private mirrorReply(syn: SimPacket, server: string, flags: number): void {
    const att = this.attachments.get(server);
    if (att === undefined || this.replyMirror === undefined) return;
    const port =
      this.egressPort(server, this.hashOf(syn.src, syn.dst, syn.protocol, syn.sport, syn.dport)) ?? att.via;
    this.counters.mirrored++;
    this.replyMirror(
      {
        src: syn.dst,
        dst: syn.src,
        sport: syn.dport,
        dport: syn.sport,
        protocol: syn.protocol,
        flags,
        bytes: flags === 0x12 ? 74 : 54,
      },
      { server, mac: att.mac, port },
    );
  }

  /** Gives a server a new MAC (a replaced NIC or VM): the switch's tables show it from now on. */
  setServerMac(address: string, mac: string): void {
    const att = this.attachments.get(canonicalIp(address));
    if (att !== undefined) att.mac = mac;
  }
}

/**
 * The mirror port index of a port name (EthernetN: N; Ethernet1/2: 1002), as the sim's ERSPAN header carries
 * it.
 */
export function portIndexOf(port: string): number | undefined {
  const m = /^Ethernet(\d+)(?:\/(\d+))?$/i.exec(port);
  if (m === null) return undefined;
  return m[2] === undefined ? Number(m[1]) : Number(m[1]) * 1000 + Number(m[2]);
}

/** A stable locally administered MAC for a simulated host address. */
export function macOf(address: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < address.length; i++) h = Math.imul(h ^ address.charCodeAt(i), 0x01000193) >>> 0;
  const b = [0x02, 0x00, (h >>> 24) & 255, (h >>> 16) & 255, (h >>> 8) & 255, h & 255];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}
