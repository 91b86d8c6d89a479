// flowpin under high availability in real processes, for tests and benchmarks that kill,
// stop and restart instances: a three-member etcd cluster on loopback, the simulator (one
// mirror session per instance; its reset log and epoch ledger are the ground truth) and
// `flowpin run` instances with `ha:`, each restartable on its own configuration. An instance may
// run in a network namespace of the caller's (placed: it reaches etcd and the eAPI at the root's
// end of a veth pair, the simulator mirrors to it at the namespace's end). Built from
// torture/procs.ts (processes) and lib/etcd-cluster.ts (etcd).

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
import { startEtcdCluster, type EtcdCluster } from '../lib/etcd-cluster.js';
import type { ResetLine } from '../switch-sim/reset-log.js';
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
} from './procs.js';

export const HA_TOKEN = 'ha-instances-token-0123456789';
export const HA_PREFIX = '/flowpin-ha/';
export const HA_AUTH = { authorization: `Bearer ${HA_TOKEN}`, 'content-type': 'application/json' };

export interface HaInstance {
  readonly name: string;
  readonly api: string;
  readonly config: string;
  readonly logFile: string;
  /** The network namespace it runs in; undefined: the root namespace. */
  readonly place: NsPlacement | undefined;
  proc: Proc;
  /** Stopped by SIGSTOP (the caller keeps it): nothing is sent to it meanwhile. */
  paused: boolean;
}

export interface SwitchHaView {
  owned: boolean;
  owner: string | null;
  epoch: number;
  takeover: string | null;
}

export interface SimCounters {
  pinsByNexthop: Record<string, number>;
  groupChanges: { wallAt: number; vip: string; op: string; nexthop: string }[];
  /** The epoch ledger: the highest epoch among the pins, writes of an older epoch landed after a newer
   * one's first, and each epoch's last landed write (wall clock, ms). */
  epochs: { highest: string; staleLanded: number; lastWriteAt: Record<string, number> };
  vips: { address: string; members: string[] }[];
}

export interface HaBed {
  readonly dir: string;
  readonly etcd: EtcdCluster;
  readonly client: Etcd3;
  readonly sim: SimHandle;
  readonly instances: HaInstance[];
  load: Proc | undefined;
  byName(name: string): HaInstance;
  /** Starts the instance again (after a kill) on its configuration; resolves once it is ready. */
  restart(i: HaInstance): Promise<void>;
  /** The switch's ownership as the instance reports it; undefined if it does not answer. */
  ownership(i: HaInstance): Promise<SwitchHaView | undefined>;
  /** The instance (running, not paused) that owns sim1 with its takeover done, and its epoch. */
  owner(): Promise<{ inst: HaInstance; epoch: number } | undefined>;
  counters(): Promise<SimCounters>;
  resets(): ResetLine[];
  close(): Promise<void>;
}

export interface HaBedOptions {
  names: string[];
  leaseTtlS: number;
  /** false: the instances run without `ha:` (the same bed, for a comparison). */
  ha?: boolean;
  pinMode?: string;
  env?: Record<string, string>;
  /** Instances run in a network namespace each (the caller makes and removes them). */
  netns?: Record<string, NsPlacement>;
}

async function ready(i: HaInstance): Promise<void> {
  await until(
    async () => i.proc.exited() || (await http(`${i.api}/readyz`, {}, 2000)).status === 200,
    90_000,
    `${i.name} to be ready`,
    100,
  );
  if (i.proc.exited()) throw new Error(`${i.name} exited: ${i.proc.out().slice(-3000)}`);
}

/**
 * The load (`flowpin load`) toward the VIP: `rate` connections/s of 1 s median life, 4 s at most, for
 * `durationS`; resolves once it sends.
 */
export async function startHaLoad(bed: HaBed, rate: number, durationS: number, seed: number): Promise<Proc> {
  const log = path.join(bed.dir, 'load.jsonl');
  const load = flowpin(
    [
      'load',
      '--dataplane',
      bed.sim.dataplane,
      '--vip',
      '192.0.2.80:443',
      '--rate',
      String(rate),
      '--duration-s',
      String(durationS),
      '--lifetime-median-s',
      '1',
      '--lifetime-sigma',
      '0.7',
      '--lifetime-max-s',
      '4',
      '--seed',
      String(seed),
      '--log',
      log,
      '--finish-s',
      '6',
    ],
    { logFile: path.join(bed.dir, 'load.out') },
  );
  bed.load = load;
  await until(
    () => load.exited() || (existsSync(log) && statSync(log).size > 0),
    60_000,
    'the load to start',
  );
  if (load.exited()) throw new Error(`the load exited: ${load.out().slice(-500)}`);
  return load;
}

/** Starts etcd, the simulator and the instances (each ready); `close` undoes all of it. */
export async function startHaBed(o: HaBedOptions): Promise<HaBed> {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-ha-bed-'));
  let etcd: EtcdCluster | undefined;
  let client: Etcd3 | undefined;
  let sim: SimHandle | undefined;
  const instances: HaInstance[] = [];
  const bed: Partial<HaBed> & { load: Proc | undefined } = { dir, instances, load: undefined };
  const spawnInstance = (i: Pick<HaInstance, 'config' | 'logFile' | 'place'>): Proc =>
    flowpin(['run', '--config', i.config], {
      env: { FLOWPIN_LOG_LEVEL: 'info', ...o.env },
      logFile: i.logFile,
      ...(i.place === undefined ? {} : { prefix: i.place.prefix }),
    });
  const placed = Object.entries(o.netns ?? {});
  bed.close = async () => {
    bed.load?.signal('SIGKILL');
    await Promise.all(instances.map((i) => i.proc.stop(5000)));
    await sim?.stop();
    client?.close();
    await etcd?.close();
    if (process.env['FLOWPIN_KEEP'] === undefined) rmSync(dir, { recursive: true, force: true });
    else process.stdout.write(`kept ${dir}\n`);
  };
  try {
    etcd = await startEtcdCluster(
      3,
      30_000,
      undefined,
      placed.map(([, p]) => p.hostAddr),
    );
    client = new Etcd3({ hosts: etcd.endpoints });
    const mirrorPorts: number[] = [];
    for (let k = 0; k < o.names.length; k++) mirrorPorts.push(await freePort('udp'));
    const local = o.names
      .filter((n) => o.netns?.[n] === undefined)
      .map((n) => mirrorPorts[o.names.indexOf(n)]);
    sim = await startSim(
      dir,
      // With every instance in a namespace, the simulator's first session goes to a port nobody reads.
      local[0] ?? (await freePort('udp')),
      TOPOLOGY,
      path.join(dir, 'resets.jsonl'),
      undefined,
      local.slice(1) as number[],
      placed.length === 0
        ? {}
        : {
            host: '0.0.0.0',
            alsoTo: placed.map(([n, p]) => ({
              host: p.nsAddr,
              port: mirrorPorts[o.names.indexOf(n)] as number,
            })),
          },
    );
    for (const [k, name] of o.names.entries()) {
      const d = path.join(dir, name);
      mkdirSync(path.join(d, 'state'), { recursive: true });
      const apiPort = await freePort('tcp');
      const config = writeControllerConfig({
        dir: d,
        stateDir: path.join(d, 'state'),
        apiPort,
        mirrorPort: mirrorPorts[k] as number,
        token: HA_TOKEN,
        // The root namespace's instances reach the eAPI on loopback (served on every address if one is
        // placed).
        eapi: sim.eapi.replace(/\/\/[^/:]+:/, '//127.0.0.1:'),
        topo: TOPOLOGY,
      });
      if (o.pinMode !== undefined)
        writeFileSync(
          config,
          readFileSync(config, 'utf8').replace('pinMode: on-change', `pinMode: ${o.pinMode}`),
        );
      // Pins a new owner adopts of connections it never saw end are kept until the switch times them
      // out idle: 5 s, beyond the load's longest connection.
      appendFileSync(
        config,
        `pinIdleTimeoutS: 5\n${o.ha === false ? '# ' : ''}ha: { endpoints: [${etcd.endpoints.join(', ')}], leaseTtlS: ${o.leaseTtlS}, prefix: ${HA_PREFIX}, name: ${name} }\n`,
      );
      const place = o.netns?.[name];
      if (place !== undefined) writeFileSync(config, placeConfig(readFileSync(config, 'utf8'), place));
      const logFile = path.join(d, 'controller.log');
      instances.push({
        name,
        api: `http://${place?.nsAddr ?? '127.0.0.1'}:${apiPort}`,
        config,
        logFile,
        place,
        proc: spawnInstance({ config, logFile, place }),
        paused: false,
      });
    }
    for (const i of instances) await ready(i);
  } catch (err) {
    await bed.close();
    throw err;
  }
  const e = etcd;
  const s = sim;
  const ownership = async (i: HaInstance): Promise<SwitchHaView | undefined> => {
    const r = await http(`${i.api}/api/v1/switches`, { headers: HA_AUTH }, 3000);
    if (r.status !== 200) return undefined;
    return (r.body as { switches: { name: string; ha?: SwitchHaView }[] }).switches.find(
      (x) => x.name === 'sim1',
    )?.ha;
  };
  return Object.assign(bed, {
    etcd: e,
    client,
    sim: s,
    byName: (n: string) => instances.find((i) => i.name === n) as HaInstance,
    async restart(i: HaInstance) {
      if (!i.proc.exited()) throw new Error(`${i.name} is running`);
      i.proc = spawnInstance(i);
      i.paused = false;
      await ready(i);
    },
    ownership,
    async owner() {
      for (const i of instances) {
        if (i.paused || i.proc.exited()) continue;
        const v = await ownership(i);
        if (v?.owned === true && v.takeover === 'done') return { inst: i, epoch: v.epoch };
      }
      return undefined;
    },
    async counters() {
      return (await http(`${s.status}/counters`, {}, 3000)).body as SimCounters;
    },
    resets() {
      const file = path.join(dir, 'resets.jsonl');
      return existsSync(file)
        ? readFileSync(file, 'utf8')
            .split('\n')
            .filter((x) => x !== '')
            .map((x) => JSON.parse(x) as ResetLine)
        : [];
    },
  }) as HaBed;
}
