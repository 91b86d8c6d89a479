// Is `ip route get` a true answer for where the kernel forwards a flow? Two checks, and the
// adapter refuses to start (or stops answering) when either fails:
//  1. the multipath hash policy: IPv4 0, 1, or 3 with the address, protocol and port fields;
//     IPv6 1 only (with policy 3 the kernel's look-up and forwarding hash differently, and the
//     IPv6 flow label of policy 0 is not in a look-up);
//  2. forwarding itself: the `witness` chain records, for SYNs the router forwards, the 5-tuple
//     and the output device; each is looked up and must leave by the same device. A packet that
//     arrives with an L4 hash (NIC RSS, or a veth peer's socket hash) is forwarded on that hash
//     under policy 1 (net/ipv4/route.c fib_multipath_hash), which no look-up can reproduce.
// SYNs are checked at connect and again whenever pins are listed; a family is answered for only
// once its SYNs were checked.

import type { CommandRunner } from './exec.js';
import { SwitchProtocolError } from '../errors.js';
import { parseSetKeys, TABLE } from './nft.js';

type RouteGet = (lines: string[]) => Promise<({ gateway?: string; dev?: string } | undefined)[]>;

const FIX = 'fix: net.ipv4.fib_multipath_hash_policy=1 and net.ipv6.fib_multipath_hash_policy=1, and no RX hash on the client-facing ports (ethtool -K DEV rxhash off, no RPS/RFS; on veth clear the socket hash at ingress, see docs/linux.md)';

export class HashCheck {
  private broken: string | undefined;
  private readonly ok = new Set<4 | 6>();
  private readonly checked = new Set<string>();

  constructor(
    private readonly run: CommandRunner,
    private readonly name: string,
  ) {}

  verified(family: 4 | 6): boolean {
    return this.broken === undefined && this.ok.has(family);
  }

  throwIfBroken(): void {
    if (this.broken !== undefined) throw new SwitchProtocolError(this.name, this.broken);
  }

  async checkPolicy(): Promise<void> {
    const out = await this.run.ok(['sysctl', '-n', 'net.ipv4.fib_multipath_hash_policy', 'net.ipv4.fib_multipath_hash_fields', 'net.ipv6.fib_multipath_hash_policy']);
    const [p4, fields, p6] = out.trim().split('\n').map((l) => Number(l.trim()));
    const needed = 0x01 | 0x02 | 0x04 | 0x10 | 0x20;
    const v4ok = p4 === 0 || p4 === 1 || (p4 === 3 && ((fields ?? 0) & needed) === needed && ((fields ?? 0) & 0x08) === 0);
    if (!v4ok) throw new SwitchProtocolError(this.name, `refusing to start: net.ipv4.fib_multipath_hash_policy is ${p4} (fields 0x${(fields ?? 0).toString(16)}); look-ups would not tell where flows go; ${FIX}`);
    if (p6 !== 1) throw new SwitchProtocolError(this.name, `refusing to start: net.ipv6.fib_multipath_hash_policy is ${p6}; under it IPv6 look-ups and forwarding hash differently; ${FIX}`);
  }

  /** Waits for forwarded SYNs of each family and checks them; the families verified. */
  async probe(families: (4 | 6)[], want: number, timeoutMs: number, routeGet: RouteGet): Promise<(4 | 6)[]> {
    const deadline = Date.now() + timeoutMs;
    const need = new Set(families);
    for (;;) {
      const counts = await this.recheck(routeGet);
      this.throwIfBroken();
      for (const f of need) if ((counts.get(f) ?? 0) >= want) this.ok.add(f);
      if ([...need].every((f) => this.ok.has(f)) || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    return [...this.ok];
  }

  /** Checks witnessed SYNs not checked yet; returns how many of each family have been checked. */
  async recheck(routeGet: RouteGet): Promise<Map<4 | 6, number>> {
    const fresh: { family: 4 | 6; key: string; line: string; dev: string }[] = [];
    for (const family of [4, 6] as const) {
      const keys = parseSetKeys(await this.run.json(['nft', '-j', 'list', 'set', 'inet', TABLE, `witness${family}`]));
      for (const k of keys) {
        const [src, dst, sport, dport, dev] = k;
        const key = k.join(' ');
        if (this.checked.has(key) || typeof src !== 'string' || typeof dst !== 'string' || typeof dev !== 'string') continue;
        if (fresh.length >= 256) break;
        fresh.push({ family, key, dev, line: `route get ${dst} from ${src} iif ${this.iifOf(src)} ipproto tcp sport ${Number(sport)} dport ${Number(dport)}` });
      }
    }
    if (fresh.some((f) => f.line.includes('iif undefined'))) await this.learnIif(fresh.map((f) => f.line.split(' ')[4] ?? ''), routeGet);
    const lines = fresh.map((f) => f.line.replace(/iif \S+/, `iif ${this.iifOf(f.line.split(' ')[4] ?? '')}`));
    const answers = lines.length === 0 ? [] : await routeGet(lines);
    const bad: string[] = [];
    fresh.forEach((f, i) => {
      this.checked.add(f.key);
      const a = answers[i];
      if (a?.dev !== f.dev) bad.push(`${f.key.replace(/ \S+$/, '')}: forwarded via ${f.dev}, look-up says ${a?.dev ?? 'nothing'}`);
      else this.counts.set(f.family, (this.counts.get(f.family) ?? 0) + 1);
    });
    if (bad.length > 0 && this.broken === undefined) this.broken = `refusing to answer: ${bad.length} of ${fresh.length} forwarded SYNs left by another device than the look-up says (${bad.slice(0, 3).join('; ')}); ${FIX}`;
    return this.counts;
  }

  private readonly counts = new Map<4 | 6, number>();
  private readonly iif = new Map<string, string>();

  private iifOf(src: string): string {
    return this.iif.get(src) ?? 'undefined';
  }

  private async learnIif(srcs: string[], routeGet: RouteGet): Promise<void> {
    const todo = [...new Set(srcs)].filter((s) => !this.iif.has(s));
    const answers = await routeGet(todo.map((s) => `route get ${s}`));
    todo.forEach((s, i) => {
      const dev = answers[i]?.dev;
      if (dev !== undefined) this.iif.set(s, dev);
    });
  }
}
