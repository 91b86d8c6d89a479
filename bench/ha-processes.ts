// High availability measured in real processes (torture/ha-instances.ts): three `flowpin run`
// instances with `ha:` on a three-member etcd cluster, the simulator with a load, and the same
// bed without `ha:` for comparison. Measured: from the owner's SIGKILL to its open change
// resuming on the new owner (the new owner's log line, stamped by its own clock, on the same
// machine), the takeover's work on the new owner (its logged takeoverMs: audit, fence, mirror
// gate, change log read), etcd writes (revisions) per change from call to final record, and the
// call-to-applied time of the same drains and additions with `ha:` and without.

import { startHaBed, startHaLoad, HA_AUTH, HA_PREFIX, type HaBed } from '../torture/ha-instances.js';
import { http } from '../torture/procs.js';
import { until } from '../torture/procs.js';

const VIP = '192.0.2.80';
const NH = '10.0.1.2';
const FINAL = ['drained', 'complete', 'failed', 'cancelled'];

export interface HaProcessSize {
  failovers: number;
  /** Changes (a drain, then its undrain, in turn) timed with and without `ha:`. */
  changes: number;
}

export interface HaProcessResult {
  /** Owner SIGKILL to its open change resuming on the new owner, per failover (ms). */
  failoverMs: number[];
  /** The new owner's takeover work (ms), per failover. */
  takeoverMs: number[];
  /** etcd revisions from a change's call to its final record, per change. */
  revisionsPerChange: number[];
  /** Call to applied (ms), per change, with `ha:` and without. */
  appliedHaMs: number[];
  appliedPlainMs: number[];
}

interface Rec {
  id: string;
  phase: string;
  appliedAt?: number;
  deadlineReached?: boolean;
}

const inGroup = async (bed: HaBed): Promise<boolean> =>
  (await bed.counters()).vips.find((v) => v.address === VIP)?.members.includes(NH) === true;

/** Drain of NH if it is in the group, else its undrain (an addition); the change's id and call time. */
async function change(bed: HaBed, deadlineS: number): Promise<{ id: string; at: number }> {
  const drain = await inGroup(bed);
  for (;;) {
    const o = await until(() => bed.owner(), 40_000, 'an owner of sim1', 50);
    const at = Date.now();
    const r = await http(
      `${o.inst.api}/api/v1/switches/sim1/vips/${VIP}/nexthops/${NH}/${drain ? 'drain' : 'undrain'}`,
      {
        method: 'POST',
        headers: HA_AUTH,
        body: JSON.stringify({ ...(drain ? { deadlineSeconds: deadlineS } : {}), maxAtRisk: 1e6 }),
      },
    );
    if (r.status >= 200 && r.status < 300) {
      const id = (r.body as { id?: string }).id;
      if (id !== undefined) return { id, at };
      // An undrain answers with the nexthop's state: its change is the addition recorded since the call.
      const rec = await until(
        async () => {
          const l = await http(`${o.inst.api}/api/v1/switches/sim1/changes`, { headers: HA_AUTH }, 3000);
          return (
            l.body as { changes?: (Rec & { kind: string; nexthop: string; queuedAt: number })[] }
          ).changes?.find((x) => x.kind === 'add' && x.nexthop === NH && x.queuedAt >= at - 50);
        },
        10_000,
        'the undrain in the change list',
      );
      return { id: rec.id, at };
    }
    if (r.status !== 421 && r.status !== 503) throw new Error(`change refused: ${JSON.stringify(r.body)}`);
  }
}

/** The change's record once it ends (final, or a drain past its deadline), from the owner's API. */
async function ended(bed: HaBed, id: string, ms: number): Promise<Rec> {
  return until(
    async () => {
      const o = await bed.owner();
      if (o === undefined) return undefined;
      const r = await http(`${o.inst.api}/api/v1/switches/sim1/changes`, { headers: HA_AUTH }, 3000);
      const rec = (r.body as { changes?: Rec[] }).changes?.find((x) => x.id === id);
      return rec !== undefined && (FINAL.includes(rec.phase) || rec.deadlineReached === true)
        ? rec
        : undefined;
    },
    ms,
    `change ${id} to end`,
    100,
  );
}

const revision = async (bed: HaBed): Promise<number> =>
  Number((await bed.client.get(`${HA_PREFIX}switches/sim1/epoch`).exec()).header.revision);

/** Call-to-applied of `n` changes in turn on a warm bed (and, with `ha:`, the etcd revisions each took). */
async function timedChanges(bed: HaBed, n: number, ha: boolean): Promise<{ ms: number[]; revs: number[] }> {
  const ms: number[] = [];
  const revs: number[] = [];
  for (let k = 0; k < n; k++) {
    const r0 = ha ? await revision(bed) : 0;
    const c = await change(bed, 30);
    const rec = await ended(bed, c.id, 40_000);
    if (rec.appliedAt !== undefined) ms.push(rec.appliedAt - c.at);
    // The record's last save follows the API's final phase: read once it is in etcd.
    if (ha) {
      await until(
        async () => {
          const all = (await bed.client.get(`${HA_PREFIX}switches/sim1/changes`).json()) as Rec[] | null;
          return all?.find((x) => x.id === c.id)?.phase === rec.phase;
        },
        10_000,
        'the final record in etcd',
        50,
      );
      revs.push((await revision(bed)) - r0);
    }
  }
  return { ms, revs };
}

async function warm(bed: HaBed): Promise<void> {
  await until(
    async () => {
      const o = await bed.owner();
      if (o === undefined) return false;
      const m = await http(`${o.inst.api}/metrics`, { headers: HA_AUTH }, 3000);
      const syn = /flowpin_mirror_events_total\{switch="sim1",kind="syn"\} (\d+)/.exec(String(m.body));
      return Number(syn?.[1] ?? 0) >= 300;
    },
    60_000,
    'the owner to see 300 SYNs',
    200,
  );
}

/** The bed without `ha:`: one instance, the same load and changes. */
async function plain(size: HaProcessSize): Promise<number[]> {
  const bed = await startHaBed({ names: ['fp-a'], leaseTtlS: 4, ha: false });
  try {
    // Without ha: the only instance answers for the switch; `owner()` reads ha.owned, absent here.
    bed.owner = () => Promise.resolve({ inst: bed.instances[0] as HaBed['instances'][number], epoch: 0 });
    await startHaLoad(bed, 150, 120, 7);
    await warm(bed);
    return (await timedChanges(bed, size.changes, false)).ms;
  } finally {
    await bed.close();
  }
}

export async function haProcesses(size: HaProcessSize, ttlS: number): Promise<HaProcessResult> {
  const appliedPlainMs = await plain(size);
  const bed = await startHaBed({ names: ['fp-a', 'fp-b', 'fp-c'], leaseTtlS: ttlS });
  try {
    await until(() => bed.owner(), 30_000, 'an owner of sim1', 100);
    await startHaLoad(bed, 150, 280, 7);
    await warm(bed);
    const t = await timedChanges(bed, size.changes, true);
    const failoverMs: number[] = [];
    const takeoverMs: number[] = [];
    for (let k = 0; k < size.failovers; k++) {
      // A drain in flight when the owner dies (NH put back first where the last round left it out).
      if (!(await inGroup(bed))) await ended(bed, (await change(bed, 10)).id, 40_000);
      const o = await until(() => bed.owner(), 40_000, 'an owner of sim1', 50);
      const c = await change(bed, 10);
      const killedAt = Date.now();
      o.inst.proc.signal('SIGKILL');
      await o.inst.proc.exit;
      // The new owner's line: the switch taken over, the change among the open ones it resumes.
      const line = await until(
        () => {
          for (const i of bed.instances) {
            if (i === o.inst) continue;
            for (const l of i.proc.out().split('\n')) {
              if (!l.includes('resuming its open changes') || !l.includes(c.id)) continue;
              const j = JSON.parse(l) as { time: number; takeoverMs: number; epoch: number };
              if (j.epoch > o.epoch) return j;
            }
          }
          return undefined;
        },
        ttlS * 4000,
        `the change ${c.id} resumed on a new owner`,
        20,
      );
      failoverMs.push(line.time - killedAt);
      takeoverMs.push(line.takeoverMs);
      await ended(bed, c.id, 40_000);
      // Put back by the owner that finished the drain, before the killed instance is back.
      if (!(await inGroup(bed))) await ended(bed, (await change(bed, 10)).id, 40_000);
      await bed.restart(o.inst);
      // The restarted instance may take the switch back (handed over once no change is in flight).
      await until(
        async () => {
          const own = await bed.owner();
          const views = await Promise.all(bed.instances.map((i) => bed.ownership(i)));
          return own !== undefined && views.every((v) => v?.owner === own.inst.name && v.epoch === own.epoch);
        },
        30_000,
        'one owner that every instance names',
        200,
      );
    }
    return {
      failoverMs,
      takeoverMs,
      revisionsPerChange: t.revs,
      appliedHaMs: t.ms,
      appliedPlainMs,
    };
  } finally {
    await bed.close();
  }
}
