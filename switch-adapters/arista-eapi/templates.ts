// How a VIP's group is changed on the switch: explicit templates for the two real
// deployments, never a silent default. Placeholders: {vip}, {nexthop}, {len} (32/128),
// {ip} (ip/ipv6), {seq} (a per-nexthop sequence number), and the BGP names.
//
// static-ecmp: the group is static routes to the VIP (`[no] ip route VIP/32 NH`;
//   `ipv6 route` for IPv6).
// bgp-route-map: the group is BGP multipath of servers announcing the VIP (the prototype,
//   networkop/ecmp-conntrack config/s7058: a peer-group of servers, `maximum-paths`). A drain
//   lowers the drained nexthop's local preference with an inbound route-map on that peer
//   group, as the prototype's RMAP-TRAEFIK-IN did (`match ip next-hop prefix-list`,
//   `set local-preference 1`); undrain removes the nexthop from the prefix-list. A trailing
//   `permit` entry keeps every other route (a route-map ends in an implicit deny). Adding a
//   brand new member is the server announcing the VIP itself: flowpin only lifts a drain.

import { canonicalIp } from '../../lib/addr.js';

export interface GroupCommandTemplates {
  /** Lines run to add a member. */
  add: string[];
  /** Lines run to remove (drain) a member. */
  remove: string[];
  /** The routeType values of a VIP route these templates can change (connect() checks). */
  routeTypes?: string[];
}

export interface BgpTemplateOptions {
  asn: number;
  peerGroup: string;
  routeMap: string;
  /** The prefix-list of drained nexthops; default FLOWPIN-DRAINED (IPv6: FLOWPIN-DRAINED6). */
  prefixList?: string;
}

export type GroupTemplate =
  | { kind: 'static-ecmp' }
  | ({ kind: 'bgp-route-map' } & BgpTemplateOptions)
  | ({ kind: 'custom' } & GroupCommandTemplates);

export const STATIC_ECMP: GroupCommandTemplates = {
  add: ['enable', 'configure', '{ip} route {vip}/{len} {nexthop}'],
  remove: ['enable', 'configure', 'no {ip} route {vip}/{len} {nexthop}'],
  routeTypes: ['static'],
};

export function bgpRouteMap(o: BgpTemplateOptions, family: 4 | 6): GroupCommandTemplates {
  const pl = o.prefixList ?? (family === 6 ? 'FLOWPIN-DRAINED6' : 'FLOWPIN-DRAINED');
  // IPv4 prefix-lists take the one-line form; IPv6 prefix-lists are a mode with seq lines.
  const listAdd =
    family === 4
      ? [`ip prefix-list ${pl} seq {seq} permit {nexthop}/32`]
      : [`ipv6 prefix-list ${pl}`, 'seq {seq} permit {nexthop}/128', 'exit'];
  const listDel =
    family === 4 ? [`no ip prefix-list ${pl} seq {seq}`] : [`ipv6 prefix-list ${pl}`, 'no seq {seq}', 'exit'];
  return {
    remove: [
      'enable',
      'configure',
      ...listAdd,
      `route-map ${o.routeMap} permit 10`,
      `match {ip} next-hop prefix-list ${pl}`,
      'set local-preference 1',
      'exit',
      `route-map ${o.routeMap} permit 1000`,
      'exit',
      `router bgp ${o.asn}`,
      `neighbor ${o.peerGroup} route-map ${o.routeMap} in`,
      'exit',
    ],
    add: ['enable', 'configure', ...listDel],
    routeTypes: ['eBGP', 'iBGP'],
  };
}

/** The templates for a VIP's family. */
export function templatesFor(t: GroupTemplate, family: 4 | 6): GroupCommandTemplates {
  if (t.kind === 'static-ecmp') return STATIC_ECMP;
  if (t.kind === 'bgp-route-map') return bgpRouteMap(t, family);
  return t;
}

/** A prefix-list sequence number for a nexthop: its low 16 bits (+1), stable across restarts. */
export function seqOf(nexthop: string): number {
  const a = canonicalIp(nexthop);
  if (a.includes(':')) {
    const last = a.split(':').pop() ?? '0';
    return (parseInt(last === '' ? '0' : last, 16) % 65535) + 1;
  }
  const o = a.split('.').map(Number);
  return (((o[2] ?? 0) * 256 + (o[3] ?? 0)) % 65535) + 1;
}

/** Fills a template line. */
export function fillTemplate(line: string, vip: string, nexthop: string): string {
  const v = canonicalIp(vip);
  const six = v.includes(':');
  return line
    .replaceAll('{vip}', v)
    .replaceAll('{nexthop}', canonicalIp(nexthop))
    .replaceAll('{len}', six ? '128' : '32')
    .replaceAll('{ip}', six ? 'ipv6' : 'ip')
    .replaceAll('{seq}', String(seqOf(nexthop)));
}
