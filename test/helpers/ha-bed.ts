// The high-availability test bed, in real processes: a three-member etcd cluster on loopback,
// the simulator with the load's traffic in its own process (one mirror session per
// controller) and `flowpin run` instances with `ha:`. An instance may run in a network
// namespace of the test's (it reaches etcd, the simulator's eAPI and gNMI target through a
// veth pair; the simulator mirrors to it there), and the switch may be written through the
// simulator's gNMI target instead of its eAPI. Also: the change chain (a change asked of the
// owner, each next owner killed at a point of its protocol until the last finishes it), judged
// against the simulator's reset log and epoch ledger (torture/truth.ts).

import assert from 'node:assert/strict';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { rendezvousOwner } from '../../controller/ha/rendezvous.js';
import type { ResetLine } from '../../switch-sim/reset-log.js';
import {
  flowpin,
  freePort,
  http,
  placeConfig,
  startSim,
  TOPOLOGY,
  until,
  writeControllerConfig,
  type NsPlacement,
  type Proc,
  type SimHandle,
} from '../../torture/procs.js';

export { http, type Body } from '../../torture/procs.js';
import { attribute, judge, type RecordView, type Watched } from '../../torture/truth.js';
import { startEtcdCluster, type EtcdCluster } from './etcd.js';

export const seed = Number(process.env['FLOWPIN_SEED'] ?? Math.floor(Math.random() * 1e6));
export const TOKEN = 'ha-failover-token-0123456789';
export const PREFIX = '/flowpin-failover/';
export const VIP = '192.0.2.80';
export const NH = '10.0.1.2';
/** A spare server, out of the VIP's group, that an addition puts in. */
export const SPARE = TOPOLOGY.spare[0] as string;
export const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

export interface Instance {
  name: string;
  api: string;
  proc: Proc;
}

/** The switch's ownership as an instance reports it (GET /api/v1/switches). */
export async function ownership(
  i: Instance,
): Promise<{ owned: boolean; owner: string | null; epoch: number; takeover: string | null } | undefined> {
  const r = await http(`${i.api}/api/v1/switches`, { headers: auth }, 3000);
  if (r.status !== 200) return undefined;
  return (
    r.body as {
      switches: {
        name: string;
        ha?: { owned: boolean; owner: string | null; epoch: number; takeover: string | null };
      }[];
    }
  ).switches.find((s) => s.name === 'sim1')?.ha;
}

/** Waits until `i` owns the switch (under `epoch`, or any); returns when, and the epoch. */
export async function ownedAt(i: Instance, epoch: number | undefined, ms: number): Promise<[number, number]> {
  let e = 0;
  await until(
    async () => {
      if (i.proc.exited()) return true;
      const o = await ownership(i);
      if (o?.owned !== true || (epoch !== undefined && o.epoch !== epoch)) return false;
      e = o.epoch;
      return true;
    },
    ms,
    `${i.name} to own sim1 under epoch ${epoch ?? 'any'}`,
    50,
  );
  if (i.proc.exited()) throw new Error(`${i.name} exited: ${i.proc.out().slice(-3000)}`);
  return [Date.now(), e];
}

/** The names of `n` instances in the order the rendezvous gives them the switch (each next one once the
 * ones before are gone). */
export function successionOf(names: string[]): string[] {
  const left = [...names];
  const order: string[] = [];
  while (left.length > 0) {
    const o = rendezvousOwner('sim1', left) as string;
    order.push(o);
    left.splice(left.indexOf(o), 1);
  }
  return order;
}

export type { NsPlacement };

export interface Bed {
  dir: string;
  etcd: EtcdCluster;
  client: Etcd3;
  sim: SimHandle;
  instances: Instance[];
  load: Proc | undefined;
  byName(n: string): Instance;
}

export interface BedOptions {
  env?: Record<string, Record<string, string>>;
  pinMode?: string;
  /** Instances the simulator sends no mirror to (a switch whose sessions miss one). */
  unmirrored?: string[];
  /** More configuration, appended to each instance's. */
  extra?: string;
  /** Run against etcd before any instance starts. */
  before?: (client: Etcd3) => Promise<unknown>;
  /** More keys of the `ha:` section (a flow mapping's entries, each starting with a comma). */
  ha?: string;
  /** Instances run in a network namespace each (test/helpers/netns-partition.ts). */
  netns?: Record<string, NsPlacement>;
  /** Write the switch through the simulator's gNMI target (adapter: gnmi) instead of its eAPI. */
  gnmi?: boolean;
}

/** The switch's block of an instance's configuration, for the gNMI adapter at `address`. */
function gnmiSwitch(file: string, address: string): void {
  const yaml = readFileSync(file, 'utf8');
  const out = yaml
    .replace('adapter: arista-eapi', 'adapter: gnmi')
    .replace(
      /^ {4}eapi: .*$/m,
      `    gnmi: { address: '${address}', insecure: true, ingressInterfaces: [Ethernet47] }`,
    );
  writeFileSync(file, out);
}

/**
 * etcd (three members), the simulator (one mirror session per instance) and `names.length`
 * instances of `flowpin run` with `ha:` (lease TTL 4 s), each ready; `env` per instance.
 */
export async function startBed(names: string[], o: BedOptions, bed: Partial<Bed>): Promise<Bed> {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-ha-failover-'));
  bed.dir = dir;
  bed.instances = [];
  const ns = Object.entries(o.netns ?? {});
  const etcd = await startEtcdCluster(
    3,
    30_000,
    undefined,
    ns.map(([, p]) => p.hostAddr),
  );
  bed.etcd = etcd;
  bed.client = new Etcd3({ hosts: etcd.endpoints });
  await o.before?.(bed.client);
  const mirrorPorts: number[] = [];
  for (let k = 0; k < names.length; k++) mirrorPorts.push(await freePort('udp'));
  const local = names.filter((n) => o.netns?.[n] === undefined && !(o.unmirrored ?? []).includes(n));
  const sent = local.map((n) => mirrorPorts[names.indexOf(n)] as number);
  const sim = await startSim(
    dir,
    sent[0] as number,
    TOPOLOGY,
    path.join(dir, 'resets.jsonl'),
    undefined,
    sent.slice(1),
    {
      ...(ns.length === 0 ? {} : { host: '0.0.0.0' }),
      gnmi: o.gnmi === true,
      alsoTo: ns
        .filter(([n]) => !(o.unmirrored ?? []).includes(n))
        .map(([n, p]) => ({ host: p.nsAddr, port: mirrorPorts[names.indexOf(n)] as number })),
    },
  );
  bed.sim = sim;
  /** The URL (or host:port) with its host made `host`. */
  const at = (url: string, host: string): string => url.replace(/(^|\/\/)[^/:]+:(\d+)/, `$1${host}:$2`);
  for (const [k, name] of names.entries()) {
    const d = path.join(dir, name);
    mkdirSync(path.join(d, 'state'), { recursive: true });
    const apiPort = await freePort('tcp');
    const place = o.netns?.[name];
    const reach = place?.hostAddr ?? '127.0.0.1';
    const file = writeControllerConfig({
      dir: d,
      stateDir: path.join(d, 'state'),
      apiPort,
      mirrorPort: mirrorPorts[k] as number,
      token: TOKEN,
      eapi: at(sim.eapi, reach),
      topo: TOPOLOGY,
    });
    if (o.pinMode !== undefined)
      writeFileSync(file, readFileSync(file, 'utf8').replace('pinMode: on-change', `pinMode: ${o.pinMode}`));
    if (o.gnmi === true) gnmiSwitch(file, at(sim.gnmi, reach));
    appendFileSync(
      file,
      // Pins a new owner adopts of connections it never saw end are kept until the switch times
      // them out idle (as after a restart): 5 s here, beyond the load's longest connection.
      `${o.extra ?? ''}pinIdleTimeoutS: 5\nha: { endpoints: [${etcd.endpoints.join(', ')}], leaseTtlS: 4, prefix: ${PREFIX}, name: ${name}${o.ha ?? ''} }\n`,
    );
    if (place !== undefined) writeFileSync(file, placeConfig(readFileSync(file, 'utf8'), place));
    bed.instances.push({
      name,
      api: `http://${place?.nsAddr ?? '127.0.0.1'}:${apiPort}`,
      proc: flowpin(['run', '--config', file], {
        env: { FLOWPIN_LOG_LEVEL: 'info', ...o.env?.[name] },
        logFile: path.join(d, 'controller.log'),
        ...(place === undefined ? {} : { prefix: place.prefix }),
      }),
    });
  }
  for (const i of bed.instances)
    await until(
      async () => i.proc.exited() || (await http(`${i.api}/readyz`, {}, 2000)).status === 200,
      90_000,
      `${i.name} to be ready`,
      100,
    );
  for (const i of bed.instances)
    assert.ok(!i.proc.exited(), `${i.name} exited at its start: ${i.proc.out().slice(-3000)}`);
  const instances = bed.instances;
  bed.byName = (n) => instances.find((i) => i.name === n) as Instance;
  return bed as Bed;
}

/** The load: connections of 1 s median, 4 s at most, to the VIP; resolves once it sends. */
export async function startLoad(
  bed: Bed,
  rate: number,
  life: { medianS: number; sigma: number; maxS: number } = { medianS: 1, sigma: 0.7, maxS: 4 },
  durationS = 90,
): Promise<Proc> {
  const load = flowpin(
    [
      'load',
      '--dataplane',
      bed.sim.dataplane,
      '--vip',
      `${VIP}:443`,
      '--rate',
      String(rate),
      '--duration-s',
      String(durationS),
      '--lifetime-median-s',
      String(life.medianS),
      '--lifetime-sigma',
      String(life.sigma),
      '--lifetime-max-s',
      String(life.maxS),
      '--seed',
      String(seed),
      '--log',
      path.join(bed.dir, 'load.jsonl'),
      '--finish-s',
      '6',
    ],
    { logFile: path.join(bed.dir, 'load.out') },
  );
  bed.load = load;
  const log = path.join(bed.dir, 'load.jsonl');
  await until(
    () => load.exited() || (existsSync(log) && statSync(log).size > 0),
    60_000,
    'the load to start',
  );
  assert.ok(!load.exited(), `the load exited: ${load.out().slice(-500)}`);
  return load;
}

export async function closeBed(bed: Partial<Bed>): Promise<void> {
  bed.load?.signal('SIGKILL');
  await Promise.all((bed.instances ?? []).map((i) => i.proc.stop(5000)));
  await bed.sim?.stop();
  bed.client?.close();
  await bed.etcd?.close();
  if (bed.dir === undefined) return;
  if (process.env['FLOWPIN_KEEP'] === undefined) rmSync(bed.dir, { recursive: true, force: true });
  else process.stdout.write(`kept ${bed.dir}\n`);
}

/** A counter of an instance's /metrics (its first series matching `series`, a regex source), or undefined. */
export async function metric(i: Instance, series: string): Promise<number | undefined> {
  const r = await http(`${i.api}/metrics`, { headers: auth }, 3000);
  const m = new RegExp(`^${series} (\\d+)$`, 'm').exec(String(r.body));
  return m === null ? undefined : Number(m[1]);
}

/** SYNs an instance has decoded from its mirror (flowpin_mirror_events_total, kind syn). */
export async function syns(i: Instance): Promise<number> {
  return (await metric(i, 'flowpin_mirror_events_total\\{switch="sim1",kind="syn"\\}')) ?? 0;
}

/** Waits until `i` has seen `n` more SYNs of the load (its flows are warm). */
export async function warm(i: Instance, n: number): Promise<void> {
  const from = await syns(i);
  await until(async () => (await syns(i)) >= from + n, 30_000, `${i.name} to see ${n} SYNs`, 100);
}

export interface Counters {
  pinsByNexthop: Record<string, number>;
  groupChanges: { wallAt: number; vip: string; op: string; nexthop: string }[];
  epochs: { highest: string; staleLanded: number; lastWriteAt: Record<string, number> };
  gnmi?: { staleRefused: number; staleLanded: number; highest: Record<string, string> };
  vips: { address: string; members: string[] }[];
}

export async function counters(bed: Bed): Promise<Counters> {
  return (await http(`${bed.sim.status}/counters`, {}, 3000)).body as Counters;
}

/** Waits until the newest epoch among the switch's pins is `epoch` (`whose`: for the message). */
export async function untilPinsOfEpoch(bed: Bed, epoch: number, whose = ''): Promise<void> {
  await until(
    async () => BigInt((await counters(bed)).epochs.highest) === BigInt(epoch),
    30_000,
    `pins of epoch ${epoch}${whose === '' ? '' : ` (${whose})`} on the switch`,
    200,
  );
}

/** The simulator's reset log. */
export function resetsOf(bed: Bed): ResetLine[] {
  const file = path.join(bed.dir, 'resets.jsonl');
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((x) => x !== '')
        .map((x) => JSON.parse(x) as ResetLine)
    : [];
}

/** The change's URL on an instance: a drain of NH, or an addition (of the spare). */
export const changeUrl = (i: Instance, kind: 'drain' | 'add'): string =>
  kind === 'drain'
    ? `${i.api}/api/v1/switches/sim1/vips/${VIP}/nexthops/${NH}/drain`
    : `${i.api}/api/v1/switches/sim1/vips/${VIP}/nexthops`;

/**
 * A change (`drain` of NH, or `add` of the spare) asked of the switch's owner; the owner and each next
 * one kill themselves at the protocol point `points[k]` (FLOWPIN_CRASH_AT); the last instance takes the
 * switch after the last kill and finishes the change. Judged against the simulator's reset log and epoch
 * ledger: no protected connection reset, every other reset counted by the record, the record in etcd as
 * the API says, no stale write landed, the group as the change wants it.
 */
export async function changeChain(kind: 'drain' | 'add', points: readonly string[]): Promise<void> {
  const target = kind === 'drain' ? NH : SPARE;
  const partial: Partial<Bed> = {};
  try {
    const names = Array.from({ length: points.length + 1 }, (_, k) => `fp-${String.fromCharCode(97 + k)}`);
    const order = successionOf(names);
    const env = Object.fromEntries(points.map((p, k) => [order[k] as string, { FLOWPIN_CRASH_AT: p }]));
    const bed = await startBed(names, { env }, partial);
    const { client, sim } = bed;
    const owners = order.map((n) => bed.byName(n));
    const first = owners[0] as Instance;
    const last = owners.at(-1) as Instance;
    // Instances join one by one: the switch may change hands before all are in; then it stays.
    const [, e0] = await ownedAt(first, undefined, 30_000);

    const l = await startLoad(bed, 250);
    await warm(first, 300);

    // A change sent to a non-owner: 421, naming the owner and where its API is.
    const what = kind === 'add' ? { address: SPARE } : {};
    const mis = await http(changeUrl(last, kind), {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ ...what, dryRun: true }),
    });
    assert.equal(mis.status, 421, JSON.stringify(mis.body));
    assert.equal(mis.body.detail.owner, first.name);
    assert.equal(mis.body.detail.ownerApi, first.api);

    const dry = await http(changeUrl(first, kind), {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ ...what, dryRun: true, maxAtRisk: 0 }),
    });
    const consent =
      dry.status === 400 && JSON.stringify(dry.body).includes('maxAtRisk')
        ? { acceptRisk: true }
        : { maxAtRisk: 1_000_000 };
    const w: Watched = {
      id: undefined,
      kind,
      vip: VIP,
      nexthop: target,
      callAt: Date.now(),
      status: 0,
      seen: {},
    };
    const call = http(changeUrl(first, kind), {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ ...(kind === 'add' ? what : { deadlineSeconds: 60 }), ...consent }),
    });
    // Each owner in turn kills itself at its point; the next takes the switch under the next epoch.
    const down: { from: number; to: number }[] = [];
    const phasesAtKill: string[] = [];
    for (const [k, point] of points.entries()) {
      const o = owners[k] as Instance;
      await Promise.race([o.proc.exit, new Promise((r) => setTimeout(r, 60_000))]);
      const killAt = Date.now();
      assert.ok(o.proc.exited(), `${o.name} did not die at ${point}: ${o.proc.out().slice(-2000)}`);
      if (k === 0) {
        w.status = (await call).status;
        const rec0 = (await client.get(`${PREFIX}switches/sim1/changes`).json()) as RecordView[] | null;
        const written = rec0?.find((r) => r.kind === kind && r.nexthop === target);
        assert.ok(written !== undefined, `the ${kind} is in the change log in etcd`);
        w.id = written.id;
      }
      const rec = ((await client.get(`${PREFIX}switches/sim1/changes`).json()) as RecordView[] | null)?.find(
        (r) => r.id === w.id,
      );
      phasesAtKill.push(rec?.phase ?? '?');
      const next = owners[k + 1] as Instance;
      const [ownedNext] = await ownedAt(next, e0 + k + 1, 30_000).then(
        (x) => x,
        (err: unknown) => {
          // The next owner may have taken the switch and died at its own point already.
          if (next.proc.exited()) return [Date.now(), e0 + k + 1] as [number, number];
          throw err;
        },
      );
      down.push({ from: killAt, to: ownedNext });
    }
    const eLast = e0 + points.length;

    // The last owner finishes the change: the record reaches a final phase.
    let rec: RecordView | undefined;
    await until(
      async () => {
        const r = await http(`${last.api}/api/v1/switches/sim1/changes`, { headers: auth }, 3000);
        rec = (r.body as { changes?: RecordView[] }).changes?.find((x) => x.id === w.id);
        return rec !== undefined && !['queued', 'pending', 'applied'].includes(rec.phase);
      },
      90_000,
      `the ${kind} to end on the last owner`,
      250,
    );
    const fin = rec as RecordView;
    // The record in etcd says the same (once the write that follows the API's answer has landed).
    let inEtcd: RecordView | undefined;
    await until(
      async () => {
        const all = (await client.get(`${PREFIX}switches/sim1/changes`).json()) as RecordView[] | null;
        inEtcd = all?.find((x) => x.id === w.id);
        return inEtcd?.phase === fin.phase;
      },
      15_000,
      `the ${kind}'s record in etcd to read ${fin.phase}`,
      100,
    ).catch(() => undefined);
    assert.equal(inEtcd?.phase, fin.phase);
    assert.equal(await client.get(`${PREFIX}switches/sim1/epoch`).string(), String(eLast));

    // Let the load finish its connections.
    l.signal('SIGTERM');
    await Promise.race([l.exit, new Promise((r) => setTimeout(r, 15_000))]);
    const c = await counters(bed);
    w.groupWriteAt = c.groupChanges.find(
      (g) =>
        g.vip === VIP &&
        g.op === (kind === 'drain' ? 'remove' : 'add') &&
        g.nexthop === target &&
        g.wallAt >= w.callAt - 50,
    )?.wallAt;
    // While no instance wrote the switch (from each kill to the next takeover) the mirror still
    // reached the others: nothing was unseen, but nothing was pinned either.
    const { by, unattributed } = attribute(resetsOf(bed), [w]);
    const truth = judge(w, fin, by.get(w) ?? [], down, undefined);
    process.stdout.write(
      `${JSON.stringify({ seed, kind, points, phasesAtKill, order, failoverMs: down.map((d) => d.to - d.from), record: { phase: fin.phase, pinned: fin.pinned, atRisk: fin.atRisk, windowFlows: fin.windowFlows, unseen: fin['unseen'] }, truth, unattributed: unattributed.length, epochs: { highest: c.epochs.highest, staleLanded: c.epochs.staleLanded }, sim: sim.status, load: l.out().trim().split('\n').pop() })}\n`,
    );
    assert.equal(fin.phase, kind === 'drain' ? 'drained' : 'complete', JSON.stringify(fin));
    assert.equal(truth.protected, 0, `protected connections reset (seed ${seed})`);
    assert.equal(truth.uncounted, 0, `resets the record does not count (seed ${seed})`);
    assert.deepEqual(truth.false, [], `seed ${seed}`);
    assert.equal(unattributed.length, 0);
    assert.equal(c.epochs.staleLanded, 0, 'a stale write landed');
    // The pins in the switch's table name their writers' epochs: none newer than the last owner's.
    assert.ok(BigInt(c.epochs.highest) <= BigInt(eLast), c.epochs.highest);
    const inGroup = c.vips.find((v) => v.address === VIP)?.members.includes(target) === true;
    assert.equal(
      inGroup,
      kind === 'add',
      kind === 'drain' ? 'the nexthop left the group' : 'the spare joined',
    );
  } finally {
    await closeBed(partial);
  }
}
