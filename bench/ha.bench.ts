// High availability on etcd: a three-member etcd cluster on loopback (Debian's etcd-server),
// two flowpin instances in this process, each with its own etcd client. Measured: the lease's
// keep-alive cadence and round trip, etcd writes (revisions) and time per change-log save, and
// the time for the other instance to own a stopped instance's switches, when the stopped one
// left (lease revoked) and when it just stopped renewing (lease left to expire, as after a kill).

import { Etcd3 } from 'etcd3';
import type { HaConfig } from '../controller/ha/config.js';
import { HaCoordinator } from '../controller/ha/coordinator.js';
import { haKeys } from '../controller/ha/keys.js';
import { HaLease, monoNow } from '../controller/ha/lease.js';
import type { ChangeRecord } from '../controller/change-record.js';
import { startEtcdCluster, type EtcdCluster } from '../lib/etcd-cluster.js';
import { until } from '../lib/until.js';
import type { Figure } from './results.js';
import { haProcesses, type HaProcessSize } from './ha-processes.js';

export interface HaSize {
  ttlS: number;
  failovers: number;
  saves: number;
  /** Real `flowpin run` processes (lease TTL 4 s). */
  processes: HaProcessSize;
}
export const HA_FULL: HaSize = {
  ttlS: 5,
  failovers: 5,
  saves: 200,
  processes: { failovers: 10, changes: 8 },
};
export const HA_TINY: HaSize = { ttlS: 2, failovers: 2, saves: 20, processes: { failovers: 1, changes: 2 } };
/** The processes' lease TTL: as in test/ha-failover.test.ts. */
const PROCESS_TTL_S = 4;

const SWITCHES = ['leaf1', 'leaf2', 'leaf3', 'leaf4', 'leaf5', 'leaf6'];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.floor((s.length - 1) / 2)] as number);
};
const r1 = (x: number): number => Math.round(x * 10) / 10;

function coordinator(cluster: EtcdCluster, name: string, prefix: string, ttlS: number): HaCoordinator {
  const cfg: HaConfig = {
    endpoints: cluster.endpoints,
    tls: undefined,
    leaseTtlS: ttlS,
    auditIntervalS: 60,
    prefix,
    name,
    apiAddress: 'http://127.0.0.1:8080',
  };
  const c = new HaCoordinator(cfg, { switches: SWITCHES, inFlight: () => false });
  c.on('error', () => undefined);
  return c;
}

async function cadence(cluster: EtcdCluster, size: HaSize): Promise<{ everyMs: number; rttMs: number }> {
  const client = new Etcd3({ hosts: cluster.endpoints });
  const lease = new HaLease(client, { ttlS: size.ttlS });
  await lease.grant();
  const sends: number[] = [];
  const rtts: number[] = [];
  let seen = lease.acked;
  await until('six keep-alives', size.ttlS * 4000, () => {
    if (lease.acked > seen) {
      seen = lease.acked;
      sends.push(lease.lastAckedSentAt);
      rtts.push(lease.lastRoundTripMs);
    }
    return sends.length >= 6;
  });
  await lease.revoke();
  client.close();
  return { everyMs: median(sends.slice(1).map((t, i) => t - (sends[i] as number))), rttMs: median(rtts) };
}

async function saves(cluster: EtcdCluster, size: HaSize): Promise<{ revs: number; ms: number }> {
  const prefix = `/bench-${process.pid}-saves/`;
  const a = coordinator(cluster, 'a', prefix, size.ttlS);
  await a.start();
  await until('a owns leaf1', 10_000, () => a.ownedSwitches().has('leaf1'));
  const log = a.changeLog('leaf1');
  const admin = new Etcd3({ hosts: cluster.endpoints });
  const rev = async (): Promise<number> =>
    Number((await admin.get(haKeys(prefix).epoch('leaf1')).exec()).header.revision);
  const rec = (i: number): ChangeRecord =>
    ({
      id: `c${i}`,
      kind: 'drain',
      switch: 'leaf1',
      vip: '192.0.2.80',
      nexthop: '10.0.1.1',
      phase: 'pending',
      maxAtRisk: 0,
      queuedAt: i,
      startedAt: i,
    }) as unknown as ChangeRecord;
  const r0 = await rev();
  const times: number[] = [];
  for (let i = 0; i < size.saves; i++) {
    const t0 = performance.now();
    await log.saveChanges({
      changes: { leaf1: [rec(i)] },
      watch: { leaf1: { watched: [{ from: 0, to: i }] } },
    });
    times.push(performance.now() - t0);
  }
  const r1v = await rev();
  await a.stop();
  admin.close();
  return { revs: (r1v - r0) / size.saves, ms: median(times) };
}

/** Times from a's stop until b owns every switch a owned. */
async function failover(cluster: EtcdCluster, size: HaSize, revoke: boolean, run: number): Promise<number> {
  const prefix = `/bench-${process.pid}-${revoke ? 'revoke' : 'expire'}-${run}/`;
  const a = coordinator(cluster, 'a', prefix, size.ttlS);
  const b = coordinator(cluster, 'b', prefix, size.ttlS);
  await a.start();
  await b.start();
  await until(
    'both own switches',
    20_000,
    () => a.ownedSwitches().size + b.ownedSwitches().size === SWITCHES.length,
  );
  const had = [...a.ownedSwitches().keys()];
  const t0 = monoNow();
  await a.stop({ revoke });
  await until("b owns a's switches", size.ttlS * 4000, () => had.every((sw) => b.ownedSwitches().has(sw)));
  const ms = monoNow() - t0;
  await b.stop();
  return ms;
}

export async function haBench(size: HaSize): Promise<Figure[]> {
  const p = await haProcesses(size.processes, PROCESS_TTL_S);
  const cluster = await startEtcdCluster(3);
  try {
    const c = await cadence(cluster, size);
    const s = await saves(cluster, size);
    const expired: number[] = [];
    const revoked: number[] = [];
    for (let i = 0; i < size.failovers; i++) {
      expired.push(await failover(cluster, size, false, i));
      revoked.push(await failover(cluster, size, true, i));
    }
    const ttl = `TTL ${size.ttlS} s`;
    const n = size.processes.failovers;
    const failMed = median(p.failoverMs);
    const revs = median(p.revisionsPerChange);
    const haMs = median(p.appliedHaMs);
    const plainMs = median(p.appliedPlainMs);
    const processFigures: Figure[] = [
      {
        id: 'ha.process_failover_ms',
        what: `Owner SIGKILLed (real \`flowpin run\` processes) → its open drain resuming on the new owner (median of ${n}; TTL ${PROCESS_TTL_S} s)`,
        value: Math.round(failMed),
        unit: 'ms',
        target: `≤ ${(PROCESS_TTL_S * 1000 + 1000).toLocaleString('en-US')}`,
        met: failMed <= PROCESS_TTL_S * 1000 + 1000,
        runs: p.failoverMs.map(Math.round),
      },
      {
        id: 'ha.process_failover_worst_ms',
        what: `Same, worst of ${n}`,
        value: Math.round(Math.max(...p.failoverMs)),
        unit: 'ms',
        target: `≤ ${(PROCESS_TTL_S * 1000 + 2000).toLocaleString('en-US')}`,
        met: Math.max(...p.failoverMs) <= PROCESS_TTL_S * 1000 + 2000,
      },
      {
        id: 'ha.takeover_work_ms',
        what: 'Takeover work on the new owner, one switch (audit, fence, mirror gate, change log read; median)',
        value: Math.round(median(p.takeoverMs)),
        unit: 'ms',
        target: '≤ 500',
        met: median(p.takeoverMs) <= 500,
        runs: p.takeoverMs,
      },
      {
        id: 'ha.revisions_per_change',
        what: 'etcd writes (revisions) per change, call to final record (a whole drain or addition; median)',
        value: revs,
        unit: '',
        target: '≤ 20',
        met: revs <= 20,
        runs: p.revisionsPerChange,
      },
      {
        id: 'ha.applied_ms',
        what: `Change call to applied with \`ha:\` (drains and additions in turn, 150 connections/s; median of ${p.appliedHaMs.length})`,
        value: Math.round(haMs),
        unit: 'ms',
        target: '',
        met: true,
        runs: p.appliedHaMs.map(Math.round),
        baseline: 'ha.applied_plain_ms',
      },
      {
        id: 'ha.applied_plain_ms',
        what: 'Same changes without `ha:`',
        value: Math.round(plainMs),
        unit: 'ms',
        target: '',
        met: true,
        runs: p.appliedPlainMs.map(Math.round),
        isBaseline: true,
      },
      {
        id: 'ha.added_latency_ms',
        what: 'Added latency per change with `ha:` (call to applied, median with minus median without)',
        value: Math.round(haMs - plainMs),
        unit: 'ms',
        target: '≤ 100',
        met: haMs - plainMs <= 100,
      },
    ];
    return [
      ...processFigures,
      {
        id: 'ha.keepalive_every_ms',
        what: `Lease keep-alive cadence (${ttl})`,
        value: Math.round(c.everyMs),
        unit: 'ms',
        target: '',
        met: true,
      },
      {
        id: 'ha.keepalive_rtt_ms',
        what: 'Lease keep-alive round trip (loopback)',
        value: r1(c.rttMs),
        unit: 'ms',
        target: '',
        met: true,
      },
      {
        id: 'ha.revisions_per_save',
        what: 'etcd writes (revisions) per change-log save',
        value: s.revs,
        unit: '',
        target: '1',
        met: s.revs === 1,
      },
      {
        id: 'ha.save_ms',
        what: 'Change-log save, fenced etcd transaction (median)',
        value: r1(s.ms),
        unit: 'ms',
        target: '',
        met: true,
      },
      {
        id: 'ha.takeover_expired_ms',
        what: `Owner stopped without revoking (as if killed): the other owns its switches (median; ${ttl})`,
        value: Math.round(median(expired)),
        unit: 'ms',
        target: '',
        met: true,
        runs: expired.map(Math.round),
      },
      {
        id: 'ha.takeover_expired_worst_ms',
        what: `Same, worst of ${size.failovers}`,
        value: Math.round(Math.max(...expired)),
        unit: 'ms',
        target: '',
        met: true,
      },
      {
        id: 'ha.takeover_revoked_ms',
        what: 'Owner left (lease revoked): the other owns its switches (median)',
        value: Math.round(median(revoked)),
        unit: 'ms',
        target: '',
        met: true,
        runs: revoked.map(Math.round),
      },
    ];
  } finally {
    await cluster.close();
  }
}
