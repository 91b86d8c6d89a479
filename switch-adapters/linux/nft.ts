// The adapter's nftables text: the pin table (maps keyed by the 5-tuple giving a mark), the
// forwarding witness used to check hashing, the SYN mirror, element lines for `nft -f -`
// transactions, and reading `nft -j list map` back. Syntax and behaviour: nft(8) (maps,
// `flags timeout`, `counter` on sets, `update @set`, `dup to` in the netdev family), checked
// against nftables 1.0.6 here; see docs/linux.md.
//
// Idle timeouts: an IPv4 pin is refreshed by the packet path (`update @pins4 { key timeout T :
// meta mark }`) and the kernel removes it after T idle. nft 1.0.6 cannot do that for an IPv6
// key in a map, so IPv6 pins live in pins6 with a long timeout and each packet refreshes the
// same key in the timed set seen6; a pin whose seen6 entry expired is idle (the adapter
// removes it when it lists pins).
//
// The fence (high availability): a one-element set (`size 1`) holding the owner's epoch as two
// 32-bit halves (`mark . mark`). Every batch a fenced writer applies starts by deleting the
// element of its own epoch and adding it back; `nft -f` applies a batch as one transaction, so
// when the element holds another epoch (a newer owner took over) the delete fails (ENOENT) and
// nothing of the batch lands. Checked on the kernel of this machine (test/linux-fence.test.ts).

import type { FlowSpec } from '../contract.js';
import { checkNftName } from './validate.js';

export const TABLE = 'flowpin';
export const MIRROR_TABLE = 'flowpin_mirror';
/** The bits of the packet mark a pin sets (`ip rule fwmark M/0xff`). */
export const PIN_MARK_MASK = '0xff';
/** How long the witness sets remember a forwarded SYN. */
export const WITNESS_S = 120;
/** IPv6 pins' map timeout: long; their idle timeout is seen6's. */
export const PIN6_HOLD_S = 7 * 86400;

export interface NftLayout {
  pinTableSize: number;
  idleTimeoutS: number;
}

/** Creates (or keeps) the table, its maps and sets, and rewrites its chains. One transaction. */
export function baseRuleset(l: NftLayout): string {
  const t = `inet ${TABLE}`;
  const k4 = 'ip saddr . ip daddr . tcp sport . tcp dport';
  const k6 = 'ip6 saddr . ip6 daddr . tcp sport . tcp dport';
  return (
    [
      `add table ${t}`,
      `add map ${t} pins4 { type ipv4_addr . ipv4_addr . inet_service . inet_service : mark; flags timeout; timeout ${l.idleTimeoutS}s; size ${l.pinTableSize}; counter; }`,
      `add map ${t} pins6 { type ipv6_addr . ipv6_addr . inet_service . inet_service : mark; flags timeout; timeout ${PIN6_HOLD_S}s; size ${l.pinTableSize}; counter; }`,
      `add set ${t} seen6 { type ipv6_addr . ipv6_addr . inet_service . inet_service; flags dynamic,timeout; timeout ${l.idleTimeoutS}s; size ${l.pinTableSize}; }`,
      `add set ${t} witness4 { type ipv4_addr . ipv4_addr . inet_service . inet_service . iface_index; flags dynamic,timeout; timeout ${WITNESS_S}s; size 4096; }`,
      `add set ${t} ${FENCE_SET} { type mark . mark; size 1; }`,
      `add set ${t} witness6 { type ipv6_addr . ipv6_addr . inet_service . inet_service . iface_index; flags dynamic,timeout; timeout ${WITNESS_S}s; size 4096; }`,
      `add chain ${t} pin { type filter hook prerouting priority mangle; policy accept; }`,
      `flush chain ${t} pin`,
      `add rule ${t} pin meta l4proto tcp meta mark set ${k4} map @pins4 update @pins4 { ${k4} timeout ${l.idleTimeoutS}s : meta mark }`,
      `add rule ${t} pin meta l4proto tcp meta mark set ${k6} map @pins6 update @seen6 { ${k6} }`,
      `add chain ${t} witness { type filter hook forward priority filter; policy accept; }`,
      `flush chain ${t} witness`,
      // Only SYNs the group forwarded: one a pin marked (a reused 5-tuple) went where its pin says.
      `add rule ${t} witness meta mark & ${PIN_MARK_MASK} == 0 tcp flags & (syn | ack) == syn add @witness4 { ${k4} . meta oif }`,
      `add rule ${t} witness meta mark & ${PIN_MARK_MASK} == 0 tcp flags & (syn | ack) == syn add @witness6 { ${k6} . meta oif }`,
    ].join('\n') + '\n'
  );
}

/**
 * Copies SYNs, FINs and RSTs arriving on the client-facing devices to the mirror device, and
 * the servers' SYN-ACKs, FINs and RSTs arriving on the server-facing ones (replies name the
 * server that holds a connection; FINs both ways tell when it is over).
 */
export function mirrorRuleset(device: string, clients: string[], servers: string[] = []): string {
  const t = `netdev ${MIRROR_TABLE}`;
  const lines = [`add table ${t}`, `delete table ${t}`, `add table ${t}`];
  const chain = (name: string, dev: string, first: string): void => {
    checkNftName(name);
    lines.push(
      `add chain ${t} ${name} { type filter hook ingress device "${dev}" priority 0; policy accept; }`,
    );
    lines.push(`add rule ${t} ${name} ${first} dup to "${device}"`);
    lines.push(`add rule ${t} ${name} tcp flags & (fin | rst) != 0 dup to "${device}"`);
  };
  clients.forEach((dev, i) => chain(`in${i}`, dev, 'tcp flags & (syn | ack) == syn'));
  servers.forEach((dev, i) => chain(`srv${i}`, dev, 'tcp flags & (syn | ack) == syn | ack'));
  return lines.join('\n') + '\n';
}

/** The fence set: the epoch of the switch's owner, one element. */
export const FENCE_SET = 'fence';

/** An epoch as the fence set's key: its high and low 32 bits. */
export function fenceKey(epoch: bigint): string {
  return `${(epoch >> 32n) & 0xffffffffn} . ${epoch & 0xffffffffn}`;
}

/** The first lines of a fenced writer's batch: its own fence element deleted and added back. */
export function fenceLines(epoch: bigint): string[] {
  const set = `inet ${TABLE} ${FENCE_SET}`;
  return [`delete element ${set} { ${fenceKey(epoch)} }`, `add element ${set} { ${fenceKey(epoch)} }`];
}

/** Whether nft's error output names the fence element (the batch was refused by the fence). */
export const fenceRefused = (stderr: string): boolean => stderr.includes(`${FENCE_SET} {`);

/** The epochs the fence set holds (`nft -j list set inet flowpin fence`): none, or one. */
export function parseFence(doc: unknown): bigint[] {
  return parseSetKeys(doc).map(([hi, lo]) => (BigInt(Number(hi)) << 32n) | BigInt(Number(lo)));
}

export const pinKey = (f: FlowSpec): string => `${f.src} . ${f.dst} . ${f.sport} . ${f.dport}`;
export const pinMap = (f: FlowSpec): string => (f.family === 6 ? 'pins6' : 'pins4');

export function addPinLines(f: FlowSpec, mark: number, idleTimeoutS: number, replace: boolean): string[] {
  const out: string[] = [];
  const map = `inet ${TABLE} ${pinMap(f)}`;
  if (replace) out.push(`delete element ${map} { ${pinKey(f)} }`);
  if (f.family === 4) out.push(`add element ${map} { ${pinKey(f)} timeout ${idleTimeoutS}s : ${mark} }`);
  else {
    out.push(`add element ${map} { ${pinKey(f)} : ${mark} }`);
    // A fresh pin counts as used now: seen6 holds it for one idle period.
    out.push(`add element inet ${TABLE} seen6 { ${pinKey(f)} timeout ${idleTimeoutS}s }`);
  }
  return out;
}

export const deletePinLine = (f: FlowSpec): string =>
  `delete element inet ${TABLE} ${pinMap(f)} { ${pinKey(f)} }`;

export interface ListedElement {
  flow: FlowSpec;
  mark: number;
  packets: number;
  bytes: number;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function setBody(doc: unknown): Json | undefined {
  if (!isObj(doc) || !Array.isArray(doc['nftables'])) return undefined;
  for (const item of doc['nftables'] as unknown[]) {
    if (isObj(item) && isObj(item['map'])) return item['map'];
    if (isObj(item) && isObj(item['set'])) return item['set'];
  }
  return undefined;
}

/** The key parts of one element of `nft -j list map|set` output (a concatenation). */
function keyOf(e: unknown): { parts: unknown[]; counter: Json | undefined } | undefined {
  // Shapes: {"concat": [...]}, or {"elem": {"val": {"concat": [...]}, "counter": {...}, "expires": N}}.
  if (isObj(e) && Array.isArray(e['concat'])) return { parts: e['concat'] as unknown[], counter: undefined };
  if (isObj(e) && isObj(e['elem'])) {
    const inner = e['elem'];
    const val = inner['val'];
    if (isObj(val) && Array.isArray(val['concat']))
      return {
        parts: val['concat'] as unknown[],
        counter: isObj(inner['counter']) ? inner['counter'] : undefined,
      };
  }
  return undefined;
}

/** Elements of a pins map from `nft -j list map inet flowpin pinsN`. */
export function parsePinMap(doc: unknown, family: 4 | 6): ListedElement[] {
  const body = setBody(doc);
  if (body === undefined) throw new Error('no map in nft output');
  const out: ListedElement[] = [];
  for (const item of (body['elem'] as unknown[] | undefined) ?? []) {
    if (!Array.isArray(item) || item.length !== 2) continue;
    const k = keyOf((item as unknown[])[0]);
    const mark: unknown = (item as unknown[])[1];
    if (k === undefined || typeof mark !== 'number') continue;
    const [src, dst, sport, dport] = k.parts;
    if (
      typeof src !== 'string' ||
      typeof dst !== 'string' ||
      typeof sport !== 'number' ||
      typeof dport !== 'number'
    )
      continue;
    out.push({
      flow: { family, src, dst, sport, dport },
      mark,
      packets: Number(k.counter?.['packets'] ?? 0),
      bytes: Number(k.counter?.['bytes'] ?? 0),
    });
  }
  return out;
}

export interface TimedKey {
  parts: unknown[];
  /** The element's timeout and what is left of it, whole seconds as `nft -j` prints them (rounded down). */
  timeoutS: number | undefined;
  expiresS: number | undefined;
}

/**
 * Keys of a timed set with their timeout and expiry (`nft -j list set`: the set's `timeout`, each element's
 * `expires`).
 */
export function parseTimedSetKeys(doc: unknown): TimedKey[] {
  const body = setBody(doc);
  if (body === undefined) throw new Error('no set in nft output');
  const setTimeout = typeof body['timeout'] === 'number' ? body['timeout'] : undefined;
  const out: TimedKey[] = [];
  for (const item of (body['elem'] as unknown[] | undefined) ?? []) {
    const k = keyOf(item);
    if (k === undefined) continue;
    const inner = isObj(item) && isObj(item['elem']) ? item['elem'] : undefined;
    const own = inner?.['timeout'];
    const exp = inner?.['expires'];
    out.push({
      parts: k.parts,
      timeoutS: typeof own === 'number' ? own : setTimeout,
      expiresS: typeof exp === 'number' ? exp : undefined,
    });
  }
  return out;
}

/** Keys of a set (seen6, witnessN) as arrays of their parts. */
export function parseSetKeys(doc: unknown): unknown[][] {
  const body = setBody(doc);
  if (body === undefined) throw new Error('no set in nft output');
  const out: unknown[][] = [];
  for (const item of (body['elem'] as unknown[] | undefined) ?? []) {
    const k = keyOf(item);
    if (k !== undefined) out.push(k.parts);
  }
  return out;
}
