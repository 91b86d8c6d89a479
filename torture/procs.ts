// The torture runner's processes: the simulator (`flowpin sim` with its dataplane endpoint
// and reset log), the controller (`flowpin run` on a generated configuration, its pino log
// kept in a file and watched line by line) and the load (`flowpin load`). Each is a real
// process of its own; the runner kills, stops and restarts them by pid.

import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createWriteStream, writeFileSync, type WriteStream } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FLOWPIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/flowpin.js');

export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  out(): string;
  exited(): boolean;
  readonly exit: Promise<[number | null, NodeJS.Signals | null]>;
  /** Called with each complete line of stdout and stderr. */
  onLine(fn: (line: string, at: number) => void): void;
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `flowpin ARGS` with its output kept (the last 2 MB) and, if `logFile`, copied there. */
export function flowpin(
  args: string[],
  o: { env?: Record<string, string>; logFile?: string; cpuProfDir?: string; prefix?: string[] } = {},
): Proc {
  const node = o.cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`];
  const argv = [...node, FLOWPIN, ...args];
  const cmd = o.prefix === undefined ? process.execPath : (o.prefix[0] as string);
  const child = spawn(
    cmd,
    o.prefix === undefined ? argv : [...o.prefix.slice(1), process.execPath, ...argv],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } },
  );
  const log: WriteStream | undefined =
    o.logFile === undefined ? undefined : createWriteStream(o.logFile, { flags: 'a' });
  let out = '';
  const listeners: ((line: string, at: number) => void)[] = [];
  const reader = (): ((d: Buffer) => void) => {
    let partial = '';
    return (d: Buffer) => {
      const at = Date.now();
      const text = d.toString();
      log?.write(text);
      out += text;
      if (out.length > 2_000_000) out = out.slice(-1_000_000);
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) for (const fn of listeners) fn(l, at);
    };
  };
  child.stdout?.on('data', reader());
  child.stderr?.on('data', reader());
  const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  void exit.then(() => log?.end());
  const p: Proc = {
    child,
    pid: child.pid ?? 0,
    startedAt: Date.now(),
    exit,
    out: () => out,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    onLine: (fn) => void listeners.push(fn),
    signal(sig) {
      if (!p.exited()) child.kill(sig);
    },
    async stop(graceMs = 10_000) {
      if (p.exited()) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(t);
    },
  };
  return p;
}

/** Waits until `get` gives a value, polling every `everyMs`, at most `ms`. */
export async function until<T>(
  get: () => T | undefined | false | Promise<T | undefined | false>,
  ms: number,
  what: string,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    let v: T | undefined | false;
    try {
      v = await get();
    } catch {
      v = undefined;
    }
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A TCP and a UDP port free on loopback now (bound and released). */
/** An API answer's JSON, read loosely (callers name the fields they check). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Body = any;

/** One HTTP exchange with a deadline; status 0 and the error's message when it did not complete. */
export async function http(
  url: string,
  init: RequestInit = {},
  timeoutMs = 10_000,
): Promise<{ status: number; body: Body }> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    try {
      return { status: res.status, body: JSON.parse(text) as unknown };
    } catch {
      return { status: res.status, body: text };
    }
  } catch (err) {
    return { status: 0, body: err instanceof Error ? err.message : String(err) };
  }
}

export async function freePort(kind: 'tcp' | 'udp'): Promise<number> {
  if (kind === 'udp') {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const port = s.address().port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface SimHandle extends Proc {
  eapi: string;
  /** host:port of the gNMI target, '' unless started with one. */
  gnmi: string;
  status: string;
  dataplane: string;
}

export interface Topology {
  vips: { address: string; nexthops: string[] }[];
  spare: string[];
  pinCapacity: number;
}

export const TOPOLOGY: Topology = {
  vips: [
    { address: '192.0.2.80', nexthops: ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'] },
    { address: '192.0.2.81', nexthops: ['10.0.2.1', '10.0.2.2', '10.0.2.3'] },
  ],
  spare: ['10.0.1.5'],
  pinCapacity: 100_000,
};

/** Where the simulator serves, beyond the defaults (eAPI on loopback, no gNMI target). */
export interface SimServe {
  /** The address the eAPI (and the gNMI target) listen on. */
  host?: string;
  /** Serve the gNMI target too (with master arbitration). */
  gnmi?: boolean;
  /** Mirror sessions toward collectors on other hosts (another network namespace). */
  alsoTo?: readonly { host: string; port: number }[];
}

/**
 * The simulator: eAPI on, mirror of SYN, FIN and RST both ways toward `mirrorPort` (and as many more
 * sessions toward `alsoMirrorPorts`: one per further controller), no traffic of its own.
 */
export async function startSim(
  dir: string,
  mirrorPort: number,
  topo: Topology,
  resetLog: string,
  cpuProfDir?: string,
  alsoMirrorPorts: readonly number[] = [],
  serve: SimServe = {},
): Promise<SimHandle> {
  const host = serve.host === undefined ? '' : `host: ${serve.host}, `;
  const alsoTo = (serve.alsoTo ?? []).map((t) => `{ host: ${t.host}, port: ${t.port} }`).join(', ');
  const file = path.join(dir, 'sim.yaml');
  writeFileSync(
    file,
    [
      `switch: { pinCapacity: ${topo.pinCapacity}, mirrorFinRst: true }`,
      'vips:',
      ...topo.vips.map((v) => `  - { address: ${v.address}, nexthops: [${v.nexthops.join(', ')}] }`),
      `spareServers: [${topo.spare.join(', ')}]`,
      `mirror: { replies: true, replyRst: true, replyFin: true, alsoPorts: [${alsoMirrorPorts.join(', ')}], alsoTo: [${alsoTo}] }`,
      `eapi: { ${host}enabled: true }`,
      `gnmi: { ${host}enabled: ${serve.gnmi === true} }`,
      '',
    ].join('\n'),
  );
  const p = flowpin(
    [
      'sim',
      '--config',
      file,
      '--eapi-port',
      '0',
      ...(serve.gnmi === true ? ['--gnmi-port', '0'] : []),
      '--status-port',
      '0',
      '--mirror',
      `127.0.0.1:${mirrorPort}`,
      '--no-traffic',
      '--dataplane',
      '127.0.0.1:0',
      '--reset-log',
      resetLog,
    ],
    { logFile: path.join(dir, 'sim.log'), ...(cpuProfDir === undefined ? {} : { cpuProfDir }) },
  );
  try {
    await until(() => /dataplane (\S+)/.test(p.out()) || p.exited(), 30_000, 'the simulator');
    if (p.exited()) throw new Error(`the simulator exited: ${p.out()}`);
    const m = (re: RegExp): string => re.exec(p.out())?.[1] ?? '';
    return Object.assign(p, {
      eapi: m(/eAPI\s+(http:\S+)/),
      gnmi: m(/gNMI\s+(\S+)/),
      status: m(/counters (http:\S+)\/counters/),
      dataplane: m(/dataplane (\S+)/),
    });
  } catch (err) {
    await p.stop();
    throw err;
  }
}

/** An instance run in another network namespace: how to run a process there, and its veth pair's ends. */
export interface NsPlacement {
  /** The command prefix that runs a process in the namespace (`ip netns exec NAME`). */
  prefix: string[];
  /** The root namespace's end of the veth pair: etcd, the eAPI and the gNMI target are reached there. */
  hostAddr: string;
  /** The namespace's end: the instance's API and mirror receiver listen there. */
  nsAddr: string;
}

/**
 * A configuration of writeControllerConfig's (with its `ha:` section or not) for an instance placed in a
 * network namespace: its API and mirror receiver on the namespace's address, the mirror's source the
 * root namespace's end of the veth pair, and the eAPI and every loopback URL (etcd's) reached at that end.
 */
export function placeConfig(yaml: string, place: NsPlacement): string {
  return yaml
    .replace('api: { host: 127.0.0.1', `api: { host: ${place.nsAddr}`)
    .replace('udp: [{ host: 127.0.0.1', `udp: [{ host: ${place.nsAddr}`)
    .replace('mirrorSources: [127.0.0.2]', `mirrorSources: [${place.hostAddr}]`)
    .replace(/(eapi: \{ url: 'https?:\/\/)[^/:']+:/, `$1${place.hostAddr}:`)
    .replaceAll('//127.0.0.1:', `//${place.hostAddr}:`);
}

export interface ControllerSetup {
  dir: string;
  stateDir: string;
  apiPort: number;
  mirrorPort: number;
  token: string;
  eapi: string;
  topo: Topology;
}

/**
 * Writes the controller's configuration: the simulator over eAPI, mirror with replies, state in `stateDir`.
 */
export function writeControllerConfig(s: ControllerSetup): string {
  const file = path.join(s.dir, 'flowpin.yaml');
  writeFileSync(
    file,
    [
      `api: { host: 127.0.0.1, port: ${s.apiPort}, token: ${s.token} }`,
      `mirror: { udp: [{ host: 127.0.0.1, port: ${s.mirrorPort} }], raw: false }`,
      'pinMode: on-change',
      `stateFile: ${path.join(s.stateDir, 'state.json')}`,
      'persistIntervalS: 5',
      'switches:',
      '  - name: sim1',
      '    adapter: arista-eapi',
      '    mirrorSources: [127.0.0.2]',
      `    pinTableSize: ${s.topo.pinCapacity}`,
      '    mirrorReplies: true',
      // The bed's load starts after this file is written: no connection to its VIPs is older. The
      // records' unseen figures then estimate the gaps while the controller was down, not a warm-up.
      `    connectionsSince: ${Date.now()}`,
      `    eapi: { url: '${s.eapi}', username: admin, password: flowpin, groupTemplate: static-ecmp }`,
      '    vips:',
      ...s.topo.vips.map((v) => `      - { address: ${v.address}, nexthops: [${v.nexthops.join(', ')}] }`),
      '',
    ].join('\n'),
  );
  return file;
}
