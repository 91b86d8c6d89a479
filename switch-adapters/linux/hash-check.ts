// Is `ip route get` a true answer for where the kernel forwards a flow? Two checks:
//  1. the multipath hash policy: IPv4 0, 1, or 3 with the address, protocol and port fields;
//     IPv6 1 only (with policy 3 the kernel's look-up and forwarding hash differently, and the
//     IPv6 flow label of policy 0 is not in a look-up); a wrong policy refuses the start;
//  2. forwarding itself: the `witness` chain records, for SYNs the router forwards by its groups
//     (not by a pin), the 5-tuple and the output device; each is looked up and must leave by the
//     same device. A packet that arrives with an L4 hash (NIC RSS, or a veth peer's socket hash)
//     is forwarded on that hash under policy 1 (net/ipv4/route.c fib_multipath_hash), which no
//     look-up can reproduce.
// A SYN is compared only with the group it was forwarded by: one forwarded before this process
// started, or before the last group write of its VIP (by this adapter), may have left by a group
// that is gone, and is not checked. Its forwarding time is bounded from below by its witness
// element's age (the set's timeout minus what `nft -j` says is left, whole seconds rounded down).
// A family is answered for once `want` of its SYNs agreed. A VIP whose SYNs disagree is held back
// (no answers for its flows; `problems()` says why) until `want` later SYNs of it agree: nothing
// latches, and other VIPs go on. SYNs are checked at connect and whenever pins are listed.

import { performance } from 'node:perf_hooks';
import type { CommandRunner } from './exec.js';
import { SwitchProtocolError } from '../errors.js';
import { parseTimedSetKeys, TABLE } from './nft.js';
import { checkIfname, checkIp, checkPort, familyOf } from './validate.js';

type RouteGet = (lines: string[]) => Promise<({ gateway?: string; dev?: string } | undefined)[]>;

/** SYNs looked up per check, at most (the rest wait for the next one). */
const PER_CHECK = 256;
/** Witness keys remembered as checked, at most (the witness sets hold 4096 each). */
const MAX_CHECKED = 16_384;
/** Client addresses whose device toward them is remembered, at most. */
const MAX_CLIENTS = 65_536;

interface Policy {
  p4: number;
  fields: number;
  p6: number;
}

interface Held {
  why: string;
  /** SYNs of the VIP that agreed since. */
  streak: number;
}

export interface HashCheckOptions {
  switchName: string;
  /** The client-facing devices, for the advice. */
  clientInterfaces: readonly string[];
  /** Agreeing SYNs that verify a family, or release a held VIP. */
  want: number;
  now?: () => number;
}

export class HashCheck {
  private readonly agreed = new Map<4 | 6, number>();
  private readonly held = new Map<string, Held>();
  /** Local clock (ms): SYNs forwarded earlier are not checked (set at each connect). */
  private since = Infinity;
  /** VIP -> when its group was last written here (local clock, ms, after the write returned). */
  private readonly written = new Map<string, number>();
  private checked = new Set<string>();
  private readonly iif = new Map<string, string>();
  private readonly now: () => number;

  constructor(
    private readonly run: CommandRunner,
    private readonly o: HashCheckOptions,
  ) {
    this.now = o.now ?? (() => performance.now());
  }

  /** Whether `want` SYNs of the family agreed with their look-ups. */
  verified(family: 4 | 6): boolean {
    return (this.agreed.get(family) ?? 0) >= this.o.want;
  }

  /** Whether look-ups answer for this VIP (of this family): the family verified, the VIP not held back. */
  answers(family: 4 | 6, vip: string): boolean {
    return this.verified(family) && !this.held.has(vip);
  }

  /** Why VIPs are held back, one line each. */
  problems(): string[] {
    return [...this.held].map(
      ([vip, h]) =>
        `VIP ${vip}: ${h.why}; its flows get no look-up answer until ${this.o.want} later SYNs agree (${h.streak} so far)`,
    );
  }

  /**
   * The VIP's group was written (call once the write returned, failed or not): earlier SYNs are not checked.
   */
  groupWritten(vip: string): void {
    this.written.set(vip, this.now());
  }

  private async readPolicy(): Promise<Policy> {
    const out = await this.run.ok([
      'sysctl',
      '-n',
      'net.ipv4.fib_multipath_hash_policy',
      'net.ipv4.fib_multipath_hash_fields',
      'net.ipv6.fib_multipath_hash_policy',
    ]);
    const [p4, fields, p6] = out
      .trim()
      .split('\n')
      .map((l) => Number(l.trim()));
    return { p4: p4 ?? NaN, fields: fields ?? 0, p6: p6 ?? NaN };
  }

  /** What is wrong with the hash policy, one phrase each with its fix (none: it is right). */
  private static policyFaults(p: Policy): string[] {
    const needed = 0x01 | 0x02 | 0x04 | 0x10 | 0x20;
    const v4ok =
      p.p4 === 0 || p.p4 === 1 || (p.p4 === 3 && (p.fields & needed) === needed && (p.fields & 0x08) === 0);
    const out: string[] = [];
    if (!v4ok)
      out.push(
        `net.ipv4.fib_multipath_hash_policy is ${p.p4} (fields 0x${p.fields.toString(16)}), under which look-ups would not tell where flows go; fix: sysctl -w net.ipv4.fib_multipath_hash_policy=1`,
      );
    if (p.p6 !== 1)
      out.push(
        `net.ipv6.fib_multipath_hash_policy is ${p.p6}, under which IPv6 look-ups and forwarding hash differently; fix: sysctl -w net.ipv6.fib_multipath_hash_policy=1`,
      );
    return out;
  }

  /** Refuses the start under a hash policy look-ups cannot follow. */
  async checkPolicy(): Promise<void> {
    const faults = HashCheck.policyFaults(await this.readPolicy());
    if (faults.length > 0)
      throw new SwitchProtocolError(this.o.switchName, `refusing to start: ${faults.join('; ')}`);
  }

  /**
   * The advice for disagreeing SYNs: the policy's fix where it is wrong, else what else makes them disagree.
   */
  private async advice(): Promise<string> {
    const p = await this.readPolicy();
    const faults = HashCheck.policyFaults(p);
    if (faults.length > 0) return faults.join('; ');
    const devs = this.o.clientInterfaces.join(', ');
    return `net.ipv4.fib_multipath_hash_policy is already ${p.p4} and net.ipv6.fib_multipath_hash_policy ${p.p6}: either packets arrive on ${devs} with a receive hash that forwarding reuses (fix: ethtool -K DEV rxhash off and no RPS/RFS on ${devs}; on veth, clear the hash at ingress, docs/linux.md "A receive hash on veth"), or the VIP's group was changed outside flowpin while they were forwarded`;
  }

  /**
   * At connect: checks SYNs forwarded from now on until every family of `vips` is verified
   * (refusing the start if any disagree) or the time is up (refusing: nothing to check yet).
   */
  async probe(vips: readonly string[], timeoutMs: number, routeGet: RouteGet): Promise<void> {
    // What was found before counts no more: only SYNs forwarded from now on are checked.
    this.since = this.now();
    this.agreed.clear();
    this.held.clear();
    const deadline = Date.now() + timeoutMs;
    const families = [...new Set(vips.map(familyOf))];
    for (;;) {
      await this.recheck(routeGet);
      const held = vips.filter((v) => this.held.has(v));
      if (held.length > 0)
        throw new SwitchProtocolError(
          this.o.switchName,
          `refusing to start: ${held.map((v) => `VIP ${v}: ${this.held.get(v)?.why ?? ''}`).join('; ')}`,
        );
      if (families.every((f) => this.verified(f))) return;
      if (Date.now() >= deadline) {
        const short = families
          .filter((f) => (this.agreed.get(f) ?? 0) < this.o.want)
          .map((f) => `IPv${f} ${this.agreed.get(f) ?? 0}`);
        throw new SwitchProtocolError(
          this.o.switchName,
          `cannot check hashing yet: fewer than ${this.o.want} SYNs forwarded toward the VIPs since connecting, in ${timeoutMs} ms (checked: ${short.join(', ')}); SYNs forwarded before are not checked, as a group may have changed since`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Checks witnessed SYNs not checked yet (at most PER_CHECK): VIPs held back or released. */
  async recheck(routeGet: RouteGet): Promise<void> {
    const fresh: { family: 4 | 6; vip: string; key: string; src: string; line: string; dev: string }[] = [];
    const addr = (a: unknown): string | undefined => {
      try {
        return typeof a === 'string' ? checkIp(a) : undefined;
      } catch {
        return undefined; // not an address (never from this kernel): not looked up
      }
    };
    const present = new Set<string>();
    for (const family of [4, 6] as const) {
      // Before the listing: an element's age is measured from no later than this.
      const listedAt = this.now();
      const keys = parseTimedSetKeys(
        await this.run.json(['nft', '-j', 'list', 'set', 'inet', TABLE, `witness${family}`]),
      );
      for (const k of keys) {
        const [, , sport, dport, dev] = k.parts;
        const src = addr(k.parts[0]);
        const vip = addr(k.parts[1]);
        if (src === undefined || vip === undefined || typeof dev !== 'string') continue;
        const key = k.parts.join(' ');
        present.add(key);
        if (this.checked.has(key) || fresh.length >= PER_CHECK) continue;
        // Forwarded no earlier than this (local clock); unknown age: taken as old.
        const earliest =
          k.timeoutS === undefined || k.expiresS === undefined
            ? -Infinity
            : listedAt - (k.timeoutS - k.expiresS) * 1000;
        if (earliest < Math.max(this.since, this.written.get(vip) ?? -Infinity)) {
          this.checked.add(key); // forwarded by a group that may be gone: never checked
          continue;
        }
        fresh.push({
          family,
          vip,
          key,
          src,
          dev,
          line: `ipproto tcp sport ${checkPort(Number(sport))} dport ${checkPort(Number(dport))}`,
        });
      }
    }
    // Keys no longer witnessed are forgotten (a reused 5-tuple is a new SYN).
    if (this.checked.size > present.size)
      this.checked = new Set([...this.checked].filter((k) => present.has(k)));
    if (this.checked.size > MAX_CHECKED) this.checked.clear();
    if (fresh.length === 0) return;
    await this.learnIif(
      fresh.map((f) => f.src),
      routeGet,
    );
    const asked = fresh.filter((f) => this.iif.has(f.src));
    const answers = await routeGet(
      asked.map((f) => `route get ${f.vip} from ${f.src} iif ${this.iif.get(f.src) ?? ''} ${f.line}`),
    );
    const byVip = new Map<string, { family: 4 | 6; good: number; bad: string[] }>();
    asked.forEach((f, i) => {
      this.checked.add(f.key);
      const v = byVip.get(f.vip) ?? { family: f.family, good: 0, bad: [] };
      byVip.set(f.vip, v);
      const a = answers[i];
      if (a?.dev === f.dev) v.good++;
      else
        v.bad.push(
          `${f.key.replace(/ \S+$/, '')}: forwarded via ${f.dev}, look-up says ${a?.dev ?? 'nothing'}`,
        );
    });
    let advice: string | undefined;
    for (const [vip, v] of byVip) {
      if (v.bad.length > 0) {
        advice ??= await this.advice();
        this.held.set(vip, {
          why: `${v.bad.length} of ${v.bad.length + v.good} SYNs forwarded toward it left by another device than the look-up says (${v.bad.slice(0, 3).join('; ')}); ${advice}`,
          streak: 0,
        });
        continue;
      }
      this.agreed.set(v.family, (this.agreed.get(v.family) ?? 0) + v.good);
      const h = this.held.get(vip);
      if (h === undefined) continue;
      h.streak += v.good;
      if (h.streak >= this.o.want) this.held.delete(vip);
    }
  }

  /** The router's device toward each client (the `iif` of a look-up). */
  private async learnIif(srcs: string[], routeGet: RouteGet): Promise<void> {
    const todo = [...new Set(srcs)].filter((s) => !this.iif.has(s));
    if (todo.length === 0) return;
    if (this.iif.size + todo.length > MAX_CLIENTS) this.iif.clear();
    const answers = await routeGet(todo.map((s) => `route get ${s}`));
    todo.forEach((s, i) => {
      const dev = answers[i]?.dev;
      if (dev !== undefined) this.iif.set(s, checkIfname(dev));
    });
  }
}
