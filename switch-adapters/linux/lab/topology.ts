// A Linux router lab in network namespaces: a client namespace, a router namespace (the ECMP
// dataplane flowpin drives), and server namespaces holding the VIPs on loopback with a TCP
// echo service each (and a half-close service beside it) (the first `inGroup` form the VIPs' groups, the rest
// are spares). The
// router mirrors to flowpin over VXLAN: the VXLAN device is made in the caller's namespace
// and moved into the router, so its underlay socket stays here and sends to 127.0.0.1, where
// flowpin listens (VXLAN devices keep the namespace they were created in for their socket).
// Namespaces are named `<prefix>-<pid>-<role>`; `cleanStale` removes those of dead processes,
// so a crash or a SIGKILL leaves nothing behind past the next start.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Socket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { invalidateRxHash } from './hash-invalidate.js';

export const LAB_VIP4 = '203.0.113.10';
export const LAB_VIP6 = '2001:db8:f10::10';
export const LAB_PORT = 7007;
/** The servers' half-close port: after the client's FIN they keep sending for `tailMs` (echo-server.ts). */
export const LAB_HALF_PORT = LAB_PORT + 1;
export const MIRROR_COLLECTOR = '192.0.2.2';

export interface LabOptions {
  /** Namespace name prefix (letters, digits, '-'). */
  prefix: string;
  /** Servers in the VIPs' groups (the rest are spares). */
  inGroup?: number;
  servers?: number;
  /** Client source addresses per family. */
  clientAddresses?: number;
  /** Clear the RX hash at the router's client-facing port (deterministic ECMP); default true. */
  deterministicHash?: boolean;
  /** Build the VXLAN mirror path (default true). */
  mirror?: boolean;
  /** How long servers keep sending on a half-closed connection (ms, default 8000). */
  tailMs?: number;
}

export interface LabServer {
  index: number;
  ns: string;
  /** Router-side device toward the server. */
  dev: string;
  addr4: string;
  addr6: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));

function ip(args: string[], input?: string): string {
  return execFileSync('ip', args, { input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 20_000 }).toString();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills what runs inside a namespace, then deletes it. */
export function removeNamespace(ns: string): void {
  let pids: number[] = [];
  try {
    pids = ip(['netns', 'pids', ns])
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map(Number);
  } catch {
    pids = [];
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  try {
    ip(['netns', 'del', ns]);
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr;
    if (!(stderr?.toString() ?? '').includes('No such file')) throw err;
  }
}

/** Names of namespaces with this prefix. */
export function labNamespaces(prefix: string): string[] {
  return ip(['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${prefix}-`));
}

/** Removes namespaces left by processes with this prefix that no longer run. */
export function cleanStale(prefix: string): string[] {
  const removed: string[] = [];
  for (const ns of labNamespaces(prefix)) {
    const pid = Number(ns.slice(prefix.length + 1).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && alive(pid) && pid !== process.pid) continue;
    if (pid === process.pid) continue;
    removeNamespace(ns);
    removed.push(ns);
  }
  return removed;
}

export class LabTopology {
  readonly router: string;
  readonly client: string;
  readonly collector: string;
  readonly servers: LabServer[] = [];
  readonly clients4: string[] = [];
  readonly clients6: string[] = [];
  /** The router's client-facing device. */
  readonly clientDev = 'c0';
  readonly mirrorDev = 'fpmirror';
  readonly vni = 1 + (randomBytes(2).readUInt16BE(0) % 60000);
  readonly inGroup: number;
  /** When the lab was made (epoch ms): no connection through it is older. */
  readonly createdAt = Date.now();
  private readonly children: ChildProcess[] = [];
  private readonly made: string[] = [];
  private readonly tag = randomBytes(2).toString('hex');

  private constructor(readonly options: LabOptions) {
    const base = `${options.prefix}-${process.pid}-${this.tag}`;
    this.router = `${base}-r`;
    this.client = `${base}-c`;
    this.collector = `${base}-m`;
    this.inGroup = options.inGroup ?? 4;
  }

  /** Builds the topology; on any failure removes what it made and throws. */
  static async create(options: LabOptions): Promise<LabTopology> {
    cleanStale(options.prefix);
    const lab = new LabTopology(options);
    try {
      lab.build();
      await lab.startEchoServers();
    } catch (err) {
      lab.destroy();
      throw err;
    }
    return lab;
  }

  get members4(): string[] {
    return this.servers.slice(0, this.inGroup).map((s) => s.addr4);
  }

  get members6(): string[] {
    return this.servers.slice(0, this.inGroup).map((s) => s.addr6);
  }

  /** The router's devices toward the servers. */
  get serverDevs(): string[] {
    return this.servers.map((s) => s.dev);
  }

  /** Command prefix that runs a command in the router namespace. */
  get routerPrefix(): string[] {
    return ['ip', 'netns', 'exec', this.router];
  }

  private ns(name: string): void {
    ip(['netns', 'add', name]);
    this.made.push(name);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
  }

  private sysctl(ns: string, key: string, value: string): void {
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `${key}=${value}`], { stdio: 'ignore' });
  }

  private build(): void {
    const r = this.router;
    this.ns(r);
    this.ns(this.client);
    for (const [k, v] of [
      ['net.ipv4.ip_forward', '1'],
      ['net.ipv6.conf.all.forwarding', '1'],
      ['net.ipv4.fib_multipath_hash_policy', '1'],
      ['net.ipv6.fib_multipath_hash_policy', '1'],
      ['net.ipv4.conf.all.rp_filter', '0'],
      ['net.ipv4.conf.default.rp_filter', '0'],
    ] as const)
      this.sysctl(r, k, v);
    // Client side: one veth, several source addresses per family.
    ip([
      '-n',
      r,
      'link',
      'add',
      this.clientDev,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      this.client,
    ]);
    const n = this.options.clientAddresses ?? 4;
    const batchR = [
      `addr add 198.18.0.1/24 dev ${this.clientDev}`,
      `addr add fd00:18::1/64 dev ${this.clientDev} nodad`,
      `link set ${this.clientDev} up`,
    ];
    const batchC = ['link set eth0 up'];
    for (let i = 0; i < n; i++) {
      this.clients4.push(`198.18.0.${i + 2}`);
      this.clients6.push(`fd00:18::${(i + 2).toString(16)}`);
      batchC.push(
        `addr add 198.18.0.${i + 2}/24 dev eth0`,
        `addr add fd00:18::${(i + 2).toString(16)}/64 dev eth0 nodad`,
      );
    }
    batchC.push('route add default via 198.18.0.1', 'route add default via fd00:18::1');
    ip(['-n', r, '-batch', '-'], batchR.join('\n') + '\n');
    ip(['-n', this.client, '-batch', '-'], batchC.join('\n') + '\n');
    const total = this.options.servers ?? this.inGroup + 1;
    for (let i = 1; i <= total; i++) {
      const s: LabServer = {
        index: i,
        ns: `${this.router.slice(0, -2)}-s${i}`,
        dev: `s${i}`,
        addr4: `198.19.${i}.2`,
        addr6: `fd00:19:${i}::2`,
      };
      this.ns(s.ns);
      ip(['-n', r, 'link', 'add', s.dev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', s.ns]);
      ip(
        ['-n', r, '-batch', '-'],
        [
          `addr add 198.19.${i}.1/24 dev ${s.dev}`,
          `addr add fd00:19:${i}::1/64 dev ${s.dev} nodad`,
          `link set ${s.dev} up`,
        ].join('\n') + '\n',
      );
      ip(
        ['-n', s.ns, '-batch', '-'],
        [
          'link set eth0 up',
          `addr add ${s.addr4}/24 dev eth0`,
          `addr add ${s.addr6}/64 dev eth0 nodad`,
          `addr add ${LAB_VIP4}/32 dev lo`,
          `addr add ${LAB_VIP6}/128 dev lo nodad`,
          `route add default via 198.19.${i}.1`,
          `route add default via fd00:19:${i}::1`,
        ].join('\n') + '\n',
      );
      this.servers.push(s);
    }
    if (this.options.deterministicHash ?? true) invalidateRxHash(r, [this.clientDev]);
    if (this.options.mirror ?? true) this.makeMirror();
  }

  /**
   * The mirror path: a collector namespace behind the router's `m0` (192.0.2.2), and a VXLAN
   * device `fpmirror` in the router sending there on UDP 4789. (A VXLAN device sending to an
   * address local to its own namespace bypasses encapsulation, drivers/net/vxlan:
   * vxlan_encap_bypass, so the collector has to be another namespace.)
   */
  private makeMirror(): void {
    const r = this.router;
    this.ns(this.collector);
    ip(['-n', r, 'link', 'add', 'm0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.collector]);
    ip(
      ['-n', r, '-batch', '-'],
      [
        'addr add 192.0.2.1/30 dev m0',
        'link set m0 up',
        `link add ${this.mirrorDev} type vxlan id ${this.vni} local 192.0.2.1 remote ${MIRROR_COLLECTOR} dstport 4789 dev m0`,
        `link set ${this.mirrorDev} up`,
      ].join('\n') + '\n',
    );
    ip(
      ['-n', this.collector, '-batch', '-'],
      ['addr add 192.0.2.2/30 dev eth0', 'link set eth0 up'].join('\n') + '\n',
    );
    // Room for SYN bursts: the collector socket's buffer is capped by this namespace's rmem_max.
    this.sysctl(this.collector, 'net.core.rmem_max', String(32 * 1024 * 1024));
  }

  /** A UDP socket bound to 192.0.2.2:4789 in the collector namespace, for flowpin's VXLAN source. */
  collectorSocket(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        'ip',
        [
          'netns',
          'exec',
          this.collector,
          process.execPath,
          path.join(here, 'collector-socket.js'),
          MIRROR_COLLECTOR,
          '4789',
        ],
        { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] },
      );
      this.children.push(child);
      const timer = setTimeout(() => reject(new Error('collector socket: no answer')), 15_000);
      child.on('message', (_m, handle) => {
        clearTimeout(timer);
        if (handle instanceof Socket) resolve(handle);
        else reject(new Error('collector socket: no socket passed'));
      });
      child.once(
        'exit',
        (code) => code !== 0 && reject(new Error(`collector socket helper exited (${code})`)),
      );
    });
  }

  /** Runs a node script of this folder inside a namespace. */
  spawnIn(ns: string, script: string, args: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, path.join(here, script), ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.children.push(child);
    return child;
  }

  private async startEchoServers(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve, reject) => {
            const child = this.spawnIn(s.ns, 'echo-server.js', [
              String(LAB_PORT),
              String(this.options.tailMs ?? 8000),
            ]);
            const timer = setTimeout(() => reject(new Error(`echo server in ${s.ns} did not start`)), 15_000);
            child.stdout?.once('data', () => {
              clearTimeout(timer);
              resolve();
            });
            child.once('exit', (code) => reject(new Error(`echo server in ${s.ns} exited (${code})`)));
          }),
      ),
    );
  }

  /** TCP connections of the echo services on a server (established, or half-closed by either side). */
  serverConnections(s: LabServer): number {
    const out = execFileSync('ip', [
      'netns',
      'exec',
      s.ns,
      'ss',
      '-Htn',
      'state',
      'connected',
      `( sport = :${LAB_PORT} or sport = :${LAB_HALF_PORT} )`,
    ]).toString();
    return out.split('\n').filter((l) => l.trim() !== '').length;
  }

  /** Removes every namespace it made and stops what runs in them. Safe to call twice. */
  destroy(): void {
    for (const c of this.children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    const errors: unknown[] = [];
    for (const ns of this.made.splice(0).reverse()) {
      try {
        removeNamespace(ns);
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new Error(`lab cleanup: ${errors.map(String).join('; ')}`);
  }
}
