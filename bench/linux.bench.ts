// Linux router benchmark on the real kernel, in a namespace lab (root): look-ups per second
// through `ip -j -force -batch -` (IPv4 and IPv6 mixed), pins per second and the time of one
// `nft -f -` transaction at 1k / 10k / 100k pins, SYN-to-pin p50/p99 on the real path (VXLAN
// mirror, decode, batched look-up, nft write; pin mode `always` so every SYN is pinned), and
// connections broken across a drain and an add with and without flowpin.

import type { FlowEvent } from '../mirror-receiver/flow-event.js';
import type { FlowSpec, PinRule } from '../switch-adapters/contract.js';
import { LinuxRouterAdapter } from '../switch-adapters/linux/adapter.js';
import { LAB_VIP4, LAB_VIP6, LabTopology } from '../switch-adapters/linux/lab/topology.js';
import { LabTraffic } from '../switch-adapters/linux/lab/traffic.js';
import { labController, SWITCH, withWarmTraffic } from '../cli/lab-controller.js';
import { until } from '../lib/until.js';
import type { Figure } from './results.js';

const PREFIX = 'fpbench';

export interface LinuxBenchSize {
  /** Flows looked up in one batch. */
  lookups: number;
  /** Pins per nft transaction, one transaction each (the largest is also listed back). */
  transactions: number[];
  /** Rounds of new connections (IPv4, IPv6 per round) for SYN-to-pin, 100 ms apart. */
  synRounds: number;
  /** IPv4 and IPv6 connections open across the drain and the add. */
  connections: [number, number];
}

export const LINUX_FULL: LinuxBenchSize = {
  lookups: 60_000,
  transactions: [1000, 10_000, 100_000],
  synRounds: 20,
  connections: [300, 150],
};
export const LINUX_TINY: LinuxBenchSize = {
  lookups: 2_000,
  transactions: [1000],
  synRounds: 3,
  connections: [30, 15],
};

function flows(n: number, lab: LabTopology, v6Share: number): FlowSpec[] {
  return Array.from({ length: n }, (_, i) => {
    const v6 = i % Math.round(1 / v6Share) === 0;
    return {
      family: v6 ? 6 : 4,
      src: v6 ? (lab.clients6[i % 4] as string) : (lab.clients4[i % 4] as string),
      dst: v6 ? LAB_VIP6 : LAB_VIP4,
      sport: 1024 + (i % 60000),
      dport: 7000 + Math.floor(i / 60000),
    };
  });
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function lookupsAndPins(out: Figure[], size: LinuxBenchSize): Promise<void> {
  const lab = await LabTopology.create({ prefix: PREFIX });
  try {
    const adapter = new LinuxRouterAdapter({
      ...labOptions(lab),
      pinTableSize: 120_000,
      pinBatchSize: 100_000,
    });
    await withWarmTraffic(lab, adapter.connect());
    const fs = flows(size.lookups, lab, 1 / 3);
    await adapter.resolve(fs.slice(0, 1000));
    const t0 = performance.now();
    const got = await adapter.resolve(fs);
    const s = (performance.now() - t0) / 1000;
    if (got.some((g) => g === undefined)) throw new Error('a look-up failed');
    out.push({
      id: 'linux.lookups_per_s',
      what: 'Linux router: look-ups (ip -j -force -batch -, 2/3 IPv4 + 1/3 IPv6)',
      value: fs.length / s,
      unit: 'look-ups/s',
      target: '≥ 50,000',
      met: fs.length / s >= 50_000,
    });
    const largest = Math.max(...size.transactions);
    for (const n of size.transactions) {
      const rules: PinRule[] = flows(n, lab, 1 / 3).map((f, i) => ({
        flow: f,
        nexthop: (f.family === 4 ? lab.members4 : lab.members6)[i % 4] as string,
        idleTimeoutS: 300,
      }));
      const a = performance.now();
      const res = await adapter.installPins(rules);
      const ms = performance.now() - a;
      if (!res.every((r) => r.ok)) throw new Error('a pin failed');
      out.push({
        id: `linux.nft_tx_ms_${n}`,
        what: `Linux router: one nft transaction adding ${n.toLocaleString('en-US')} pins`,
        value: ms,
        unit: 'ms',
        target: '',
        met: true,
      });
      out.push({
        id: `linux.pins_per_s_${n}`,
        what: `Linux router: pins per second at ${n.toLocaleString('en-US')} per transaction`,
        value: n / (ms / 1000),
        unit: 'pins/s',
        target: '',
        met: true,
      });
      if (n === largest) {
        const l = performance.now();
        const listed = await adapter.listPins();
        if (listed.length !== n) throw new Error(`listed ${listed.length} of ${n}`);
        out.push({
          id: n === 100_000 ? 'linux.list_ms_100k' : `linux.list_ms_${n}`,
          what: `Linux router: listing ${n.toLocaleString('en-US')} pins with counters`,
          value: performance.now() - l,
          unit: 'ms',
          target: '',
          met: true,
        });
      }
      await adapter.removePins(rules.map((r) => r.flow));
    }
  } finally {
    lab.destroy();
  }
}

function labOptions(lab: LabTopology): ConstructorParameters<typeof LinuxRouterAdapter>[0] {
  return {
    switchName: SWITCH,
    prefix: lab.routerPrefix,
    vips: [
      { address: LAB_VIP4, nexthops: lab.members4 },
      { address: LAB_VIP6, nexthops: lab.members6 },
    ],
    clientInterfaces: [lab.clientDev],
    mirrorDevice: lab.mirrorDev,
    probeTimeoutMs: 20_000,
  };
}

async function synToPin(out: Figure[], size: LinuxBenchSize): Promise<void> {
  const lab = await LabTopology.create({ prefix: PREFIX });
  const traffic = new LabTraffic(lab);
  const controller = await labController(lab, { pinMode: 'always' });
  try {
    await withWarmTraffic(
      lab,
      until('ready', 30_000, () => controller.readiness().ready),
    );
    const synAt = new Map<string, number>();
    const lat: number[] = [];
    const onEvent = controller.onEvent.bind(controller);
    controller.onEvent = (ev: FlowEvent) => {
      if ((ev.flags & 0x12) === 0x02) synAt.set(`${ev.src}|${ev.sport}`, ev.at);
      onEvent(ev);
    };
    const adapter = controller.runtime(SWITCH).adapter;
    const install = adapter.installPins.bind(adapter);
    adapter.installPins = async (pins) => {
      const r = await install(pins);
      const now = Date.now();
      for (const p of pins) {
        const at = synAt.get(`${p.flow.src}|${p.flow.sport}`);
        if (at !== undefined) lat.push(now - at);
      }
      return r;
    };
    // Rounds of 20 new connections, 100 ms apart: about 200 SYNs per second.
    for (let i = 0; i < size.synRounds; i++) {
      await traffic.open(lab, 14, 6);
      await new Promise((r) => setTimeout(r, 100));
    }
    await until('every SYN pinned', 20_000, () => lat.length >= 20 * size.synRounds);
    out.push({
      id: 'linux.syn_to_pin_p50_ms',
      what: 'Linux router: SYN to programmed pin, p50 (VXLAN mirror, ip batch, nft)',
      value: pct(lat, 50),
      unit: 'ms',
      target: '',
      met: true,
    });
    out.push({
      id: 'linux.syn_to_pin_p99_ms',
      what: 'Linux router: SYN to programmed pin, p99',
      value: pct(lat, 99),
      unit: 'ms',
      target: '',
      met: true,
    });
  } finally {
    traffic.stop();
    await controller.stop();
    lab.destroy();
  }
}

/**
 * IPv4 + IPv6 connections (300 + 150 in the full run); drain server 2 and add server 5 (both VIPs);
 * connections broken.
 */
async function broken(withFlowpin: boolean, [c4, c6]: [number, number]): Promise<number> {
  const lab = await LabTopology.create({ prefix: PREFIX });
  const traffic = new LabTraffic(lab);
  const controller = withFlowpin ? await labController(lab) : undefined;
  // The lab's traffic starts now that flowpin watches: no connection is older (as `flowpin start` says of its
  // simulator).
  controller?.runtime(SWITCH).watchLedger.noConnectionsBefore(Date.now());
  try {
    const adapter = controller === undefined ? new LinuxRouterAdapter(labOptions(lab)) : undefined;
    await withWarmTraffic(
      lab,
      adapter !== undefined
        ? adapter.connect()
        : until('ready', 30_000, () => controller?.readiness().ready ?? false),
    );
    await traffic.open(lab, c4, c6);
    const [d, f] = [lab.servers[1], lab.servers[4]];
    if (d === undefined || f === undefined) throw new Error('lab has too few servers');
    if (controller !== undefined) {
      await until(
        'flows resolved',
        20_000,
        () => (controller.readiness().switches[0]?.flows ?? 0) >= c4 + c6,
      );
      const cm = controller.changeManager(SWITCH);
      await cm.drain(LAB_VIP4, d.addr4, { maxAtRisk: 'unbounded' });
      await cm.drain(LAB_VIP6, d.addr6, { maxAtRisk: 'unbounded' });
      await cm.add(LAB_VIP4, f.addr4, { maxAtRisk: 'unbounded' });
      await cm.add(LAB_VIP6, f.addr6, { maxAtRisk: 'unbounded' });
    } else if (adapter !== undefined) {
      await adapter.removeGroupMember(LAB_VIP4, d.addr4);
      await adapter.removeGroupMember(LAB_VIP6, d.addr6);
      await adapter.addGroupMember(LAB_VIP4, f.addr4);
      await adapter.addGroupMember(LAB_VIP6, f.addr6);
    }
    await new Promise((r) => setTimeout(r, 2000));
    return (await traffic.close()).broken;
  } finally {
    traffic.stop();
    await controller?.stop();
    lab.destroy();
  }
}

export async function linuxBench(size: LinuxBenchSize = LINUX_FULL): Promise<Figure[]> {
  if (process.getuid?.() !== 0)
    throw new Error('the linux benchmark needs root (network namespaces, nftables)');
  const out: Figure[] = [];
  await lookupsAndPins(out, size);
  await synToPin(out, size);
  const without = await broken(false, size.connections);
  const withFp = await broken(true, size.connections);
  const of = size.connections[0] + size.connections[1];
  out.push({
    id: 'linux.broken_without',
    what: `Linux router: connections broken by a drain + an add, without flowpin (of ${of})`,
    value: without,
    unit: 'connections',
    target: '',
    met: true,
  });
  out.push({
    id: 'linux.broken_with',
    what: `Linux router: connections broken by a drain + an add, with flowpin (of ${of})`,
    value: withFp,
    unit: 'connections',
    target: '0',
    met: withFp === 0,
  });
  return out;
}
