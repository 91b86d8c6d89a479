// `npm run bench [--tiny] [--out DIR] [name...]`: runs the benchmarks (all, or those named),
// prints their figures, and records them in bench/results.json, BENCHMARKS.md and the README's
// table. `--tiny` runs small versions (what `npm test` does to keep them working); `--out DIR`
// writes results.json, BENCHMARKS.md and README.md copies into DIR instead of the repository.
// A benchmark is one entry below: a name, and a run that returns figures and a section.

import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CLI_FULL, CLI_TINY, cliBench } from './cli.bench.js';
import { DECODE_FULL, DECODE_TINY, decodeBench } from './decode.bench.js';
import { GNMI_FULL, GNMI_TINY, gnmiBench } from './gnmi.bench.js';
import { LINUX_FULL, LINUX_TINY, linuxBench } from './linux.bench.js';
import { observeBench } from './observe.bench.js';
import { persistBench } from './persist.bench.js';
import { HA_FULL, HA_TINY, haBench, type HaSize } from './ha.bench.js';
import { PINNING_FULL, PINNING_TINY, pinningBench, type PinningSize } from './pinning.bench.js';
import { scenarioBench } from './scenario.bench.js';
import { quickstartBench } from './quickstart.bench.js';
import { REALISTIC_FULL, REALISTIC_TINY, realisticBench } from './realistic.bench.js';
import { RECEIVE_FULL, RECEIVE_TINY, receiveBench } from './receive.bench.js';
import {
  TORTURE_FULL,
  TORTURE_TINY,
  tortureBench,
  tortureFigures,
  type TortureSize,
} from './torture.bench.js';
import type { RunReport } from '../torture/runner.js';
import {
  printFigures,
  recordResults,
  repoPaths,
  runContext,
  type BenchOutput,
  type Figure,
  type OutputPaths,
} from './results.js';

interface Bench {
  /** Small version for `npm test`; absent when the benchmark has none. */
  tiny?: () => Promise<BenchOutput>;
  full: () => Promise<BenchOutput>;
}

const PINNING_ABOUT = `
**What runs.** The switch simulator runs in its own process (a switch is its own box) and serves
its eAPI over HTTP with 1 ms or 10 ms added to every request. flowpin, in \`always\` mode,
takes 30,000 connections, 1,000 open at a time, each ending (a FIN) once its pin is programmed
so that the next one starts (throughput: pins per second until all are programmed, as read
back from the switch); then a steady rate (latency: SYN in to the read-back that shows the pin
programmed). The switch thus holds what a DirectFlow table can hold (about 1,500 entries on a
7050X), and every write is read back with \`show directflow detail\`, which lists the whole
table. **Baseline:** the prototype's algorithm against
the same endpoint in the same run: per SYN one look-up call and one configuration call, one SYN
at a time; it never reads a pin back, so its figure is pins accepted, which favours it.
**Why it is fair:** both talk to the same simulated switch over the same HTTP
transport with the same added latency; the difference is batching and pipelining, which is
what flowpin adds. Both share the machine's two cores with the simulator, so absolute figures
move with machine load; the ratio is the robust figure.
`;

/** The pinning benchmark's figures as a section, with each flowpin figure beside its baseline. */
async function pinning(size: PinningSize): Promise<BenchOutput> {
  const measured = runContext();
  const figures = await pinningBench(size);
  for (const f of figures) {
    if (/\.baseline_/.test(f.id)) f.isBaseline = true;
    const m = /^(pinning\.\d+ms)\.flowpin_(pins_per_s|p50_ms|p99_ms)$/.exec(f.id);
    if (m) f.baseline = `${m[1]}.baseline_${m[2]}`;
  }
  return {
    figures,
    section: {
      key: 'pinning',
      title: 'Pinning against a switch API: flowpin and the serial prototype',
      about: PINNING_ABOUT,
      figures: figures.filter((f) => f.isBaseline !== true).map((f) => f.id),
      measured,
    },
  };
}

const SCENARIO_ABOUT = `
**What runs.** \`flowpin scenario --live 10000,100000,1000000 --rate 5000 --latency-ms 5
--program-delay-ms 50 --changes drain,add\` on the simulator with a virtual clock: 10 k, 100 k
and 1 M long-lived connections open before the first change, 5,000 new connections per second,
a switch API that answers in 5 ms and programs pins and group changes 50 ms after accepting
them; one member is drained, then a spare is added, while traffic runs. The switch's pin table
holds 200,000 entries at 10 k and 100 k and twice the live connections at 1 M (\`--table\`), so
every size asks the same of flowpin. Each configuration
runs as its own process, smallest size first (at 1 M in the order on-change, resilient,
mod-n, prototype, always: \`always\` holds a pin per connection and is the slowest to simulate), within a wall-time budget for all sizes: one not finished when the
budget runs out is stopped and named, so what fits on this machine in bounded time is shown. **Baselines**, same traffic, same seed: the
switch alone (\`mod-n\`, \`resilient\` ECMP; flowpin's broken connections stand beside
\`resilient\`) and the prototype's algorithm (\`prototype\`: per SYN one look-up call and one
configuration call at the switch's latency, one SYN at a time). **Why it is fair:** every
configuration sees the same connections and the same changes at the same simulated times;
only what stands between the switch and the changes differs. \`brokenProtected\` counts resets
of connections whose SYN flowpin saw before the change's hold; the others are counted by the
change record (window flows, at risk). **Time and memory.** Simulated times (call to applied)
do not depend on the machine; wall times and memory do: the wall time of a change is what the
whole simulation (switch model, traffic and controller in one process) took to reach
*applied*, and RSS and heap are high-water marks of that configuration's process, sampled after
the live connections are taken in, after each change and at the end, so they include the
simulated switch and its connections, not flowpin alone (flowpin's own memory per flow is in the decode
section). The last rows time the two steps of a drain that grow with the table, with 100 k
live flows tracked: the dry run (what a drain would pin and put at risk) and the pinning step
(every live flow on the member wanted as a pin, most recently seen first).
`;

const REALISTIC_ABOUT = `
**What runs.** \`flowpin scenario --configs on-change --lifetimes realistic --live 100000 --rate 1400
--table 1500 --half-close-share 0.1 --server-close-share 0.1 --rst-share 0.01 --idle-share 0.02
--idle-gap-s 120 --mirror-ends both-ways|syn-only --latency-ms 5 --program-delay-ms 50 --changes
drain,add\` on the simulator with a virtual clock: the traffic model \`npm start\` runs
(heavy-tailed lifetimes, median 5 s, mean 71 s, 5 % from 300 s to 4 hours; clients that
half-close, servers that close first, resets, idle connections with a packet every 120 s), the
100,000 live connections as found open at a random moment of its steady state (so most are the
long-lived ones) and new ones at the steady state's rate (100,000 / 71 s), one switch with a
1,500-entry pin table (a 7050X's DirectFlow table), a drain of one of four servers and then the
addition of a fifth. **Pins per live connection moved**: the pins each change spent (wanted
for it and programmed when it returned) over the live connections its group write moved, as the
simulated switch counts them when the change reaches forwarding. The table cannot hold what a
change moves at this size: flowpin pins the most recently active connections first, counts
the rest at risk (\`table-full\` in the dry run, consented to here with an unbounded bound), and
those that send within the next 4 s are reset, each one covered by the record (\`counted\`); a
protected reset would be one flowpin saw before the hold and pinned. Without FIN/RST mirrored,
flowpin cannot tell ended connections from live ones, and pins stay until they idle out: the
addition then finds the table full. **Baseline**: the switch alone (resilient ECMP), same
traffic and seed. Each run is its own process; wall times move with the machine's load.
`;

const QUICKSTART_ABOUT = `
**What runs.** The README's quick start, as quickstart.test runs it: \`flowpin start\` (the
simulator in its own process, managed through its eAPI, FIN and RST mirrored both ways, the
realistic traffic model at 20 new connections per simulated second) with the simulator's clock
at \`--speed 10\` for 60 s (10 simulated minutes), then the README's curl calls read from the
README and sent as written: the dry run, the drain of 10.0.1.2 and the addition of 10.0.1.5,
then 30 s (5 simulated minutes) more traffic. **Pins spent** is the change record's
\`pinned\`; **live connections moved** is the simulator's own count, made when each group
change reaches forwarding: the live connections whose ECMP choice was their server and no
longer is. The addition misses its target by design of the adapter, not by accident: the eAPI
adapter cannot ask the switch which flows an addition moves (\`predictsMovedFlows: false\`),
so an addition pins every tracked flow of the VIP (its record's \`pinned\` counts the drain's
pins still held too, and flows that ended while the addition wrote its pins), several times
the one in five live connections it moves with four members and a fifth added. A switch that
answers which flows an addition moves (the simulator's own adapter, Linux) pins about one per
moved connection: see the realistic scenario. Real processes in real time on a shared two-core
machine.
`;

const OBSERVE_ABOUT = `
**What runs.** \`flowpin scenario --configs on-change --live 20000 --rate 2000 --latency-ms 5
--program-delay-ms 50 --client-rtt-ms 30 --changes drain,add\` three times, same traffic and
seed: \`--resolution lookup\` (the baseline: one batched look-up per new flow),
\`--resolution observe --lookup none\` (the servers' SYN-ACKs mirrored from the server-facing
ports, on a switch with no look-up call) and \`--resolution both --lookup wrong-hash\` (a look-up
with a deliberately wrong hash model, which the observation corrects). SYN-to-server runs from
the SYN reaching flowpin to the flow's server being known; replies reach the switch 0.2 ms after
the SYN in the simulator (a server on the same switch). Window flows are SYNs that arrived
during a change whose pin was not programmed when it took effect. Time is simulated.
`;

const GNMI_ABOUT = `
**What runs.** \`flowpin scenario --configs on-change --live N --rate 1000 --latency-ms 5
--changes drain,add --seed 99\` at 5,000 and 100,000 live connections, through the gNMI adapter
(\`--adapter gnmi\`: flowpin's adapter and the simulator's gNMI target in one process, talking
gRPC over loopback) and, as the **baseline**, the simulator adapter (\`--adapter sim\`: the same
switch model called in process), alternating, each run its own process under GNU time, default
V8 heap settings; the gNMI adapter streams rule counters at its default sample interval
(\`gnmi.sampleIntervalMs\`, 10 s). **Why it is fair:** same traffic, seed, switch model and changes;
only the path to the switch differs. gNMI cannot tell which flows an addition moves (no look-up call), so the
controller pins every flow of the VIP there, and it reads its servers by observation: the pin
peak is larger than through the simulator adapter, which is part of what gNMI costs. Wall time
moves with the machine's other load; CPU time (user + system) moves less, and is shown beside it.
**Before** the target kept its configuration as a tree, the adapter read pins back by naming
their rules and took freed sequence ids from a free list, the 5,000 run did not finish in 900 s
(3.5 GB resident) and 2,000 live at 200/s took 19 s and 1.3 GB.
`;

const HA_ABOUT = `
**What runs.** A three-member etcd cluster on loopback (Debian's etcd-server) and two flowpin
HA coordinators in one process, each with its own etcd client, sharing six switches. The
takeover figures run from the moment one instance stops to the moment the other owns every
switch the stopped one owned: left to expire (no revoke, as after a kill) the time is the
lease TTL after the stopped instance's last keep-alive, plus etcd's expiry check (every 500 ms),
plus the watch and one ownership pass; revoked (a clean stop) it is a watch event and one pass.
The change-log save is one fenced transaction (compares on owner and epoch). **In real
processes** (torture/ha-instances.ts): the same etcd cluster, the simulator with a load of 150
connections/s (1 s median, 4 s at most) and three \`flowpin run\` instances with \`ha:\`
(\`leaseTtlS: 4\`). Failover: a drain is asked of the owner, which is SIGKILLed as soon as it
answers; the time runs to the new owner's log line saying the switch is taken over and the drain
among the open changes it resumes (pino's time, same machine clock); then the killed instance
starts again (and may take the switch back). Takeover work is the new owner's logged
\`takeoverMs\`. etcd writes per change: the cluster's revision before the call and once the
final record is in etcd, for drains and additions in turn with no fault. Added latency: the
same changes, same load, on the same bed with one instance and no \`ha:\` (baseline), call to
the record's \`appliedAt\`. See docs/ha.md.
`;

const PERSIST_ABOUT = `
**What runs.** 1,000,000 tracked flows are written to the file state store while the event loop's
delay is sampled (\`monitorEventLoopDelay\`, 10 ms resolution). The store writes a slice of
flows between turns of the loop, so the controller keeps receiving and pinning meanwhile. The
earlier design serialised the whole table at once: 3.1 s of blocked loop at 1 M flows.
`;

const TORTURE_ABOUT = `
**What runs.** \`flowpin torture\` (docs/torture.md): the switch simulator, the controller
(\`flowpin run\`, eAPI, state file) and the load (\`flowpin load\`, through the simulator's
dataplane endpoint) each in a real process, in real time, on this 2-core machine. First a
schedule of faults at 2,000 new connections/s (lifetimes of seconds): SIGKILL at random and at
named phases of drains and additions, SIGSTOP past the timeouts, a queued change killed, a full
state disk, damaged state files, eAPI failures; after each, the records are checked against the
simulator's own log of every reset connection. Then a drain and an addition without faults,
five runs at each rate, for their wall time from the call to \`appliedAt\`. **Truth:** a
protected reset is a connection whose SYN crossed the switch 250 ms before the change's hold and
that had a programmed pin; an uncounted reset is one the record's at-risk and window counts do
not cover; a false record is a figure the ground truth contradicts. **Caveat:** the three
processes share two cores, so wall times include the simulator's and the load's CPU; the
\`bed\` rows say how late the simulator answered. At 5,000/s the bed itself is overloaded on
this machine (the simulator's eAPI p99 near 3 s, load segments unanswered): no change there
completes, and the figure is what this machine can show, not flowpin's ceiling.
\`FLOWPIN_TORTURE_LINES=FILE npm run bench -- torture\` records the figures of a saved run's
JSON lines without running it again.
`;

/** `FLOWPIN_TORTURE_LINES=FILE`: the figures from a saved run's JSON lines, without running again. */
async function torture(size: TortureSize): Promise<BenchOutput> {
  const measured = runContext();
  const saved = process.env['FLOWPIN_TORTURE_LINES'];
  const figures =
    saved === undefined
      ? (await tortureBench(size)).figures
      : tortureFigures(
          readFileSync(saved, 'utf8')
            .split('\n')
            .filter((l) => l.startsWith('{"run"'))
            .map((l) => JSON.parse(l) as RunReport),
        );
  return {
    figures,
    section: {
      key: 'torture',
      title: 'Real processes, real time: kills, faults and the wall time of changes',
      about: TORTURE_ABOUT,
      figures: figures.map((f) => f.id),
      measured,
    },
  };
}

/** A benchmark that reports figures only, as a section of its own. */
/** The HA section: its baseline (the same changes without `ha:`) shown beside its figure, not as a row. */
function haSection(size: HaSize): () => Promise<BenchOutput> {
  return async () => {
    const out = await section('ha', 'High availability on etcd: lease, change log, takeover', HA_ABOUT, () =>
      haBench(size),
    )();
    if (out.section !== undefined)
      out.section.figures = out.figures.filter((f) => f.isBaseline !== true).map((f) => f.id);
    return out;
  };
}

function section(
  key: string,
  title: string,
  about: string,
  bench: () => Promise<Figure[]>,
): () => Promise<BenchOutput> {
  return async () => {
    const measured = runContext();
    const figures = await bench();
    return { figures, section: { key, title, about, figures: figures.map((f) => f.id), measured } };
  };
}

const BENCHES: Record<string, Bench> = {
  decode: { tiny: () => decodeBench(DECODE_TINY), full: () => decodeBench(DECODE_FULL) },
  cli: { tiny: () => cliBench(CLI_TINY), full: () => cliBench(CLI_FULL) },
  receive: { tiny: () => receiveBench(RECEIVE_TINY), full: () => receiveBench(RECEIVE_FULL) },
  pinning: { tiny: () => pinning(PINNING_TINY), full: () => pinning(PINNING_FULL) },
  scenario: {
    tiny: section(
      'scenario',
      'Connection safety at 10 k, 100 k and 1 M live connections: a drain and an add under load',
      SCENARIO_ABOUT,
      () => withEnv('FLOWPIN_BENCH_SCALE', '0.001', scenarioBench),
    ),
    full: section(
      'scenario',
      'Connection safety at 10 k, 100 k and 1 M live connections: a drain and an add under load',
      SCENARIO_ABOUT,
      scenarioBench,
    ),
  },
  realistic: {
    tiny: section(
      'realistic',
      'Realistic traffic: 100,000 live connections, a 1,500-entry pin table, with and without FIN/RST mirrored',
      REALISTIC_ABOUT,
      () => realisticBench(REALISTIC_TINY),
    ),
    full: section(
      'realistic',
      'Realistic traffic: 100,000 live connections, a 1,500-entry pin table, with and without FIN/RST mirrored',
      REALISTIC_ABOUT,
      () => realisticBench(REALISTIC_FULL),
    ),
  },
  quickstart: {
    full: section(
      'quickstart',
      'The quick start after 10 simulated minutes: pins spent against live connections moved',
      QUICKSTART_ABOUT,
      quickstartBench,
    ),
  },
  observe: {
    tiny: section(
      'observe',
      'Resolution by observation: mirrored replies against look-ups',
      OBSERVE_ABOUT,
      () => withEnv('FLOWPIN_BENCH_SCALE', '0.02', observeBench),
    ),
    full: section(
      'observe',
      'Resolution by observation: mirrored replies against look-ups',
      OBSERVE_ABOUT,
      observeBench,
    ),
  },
  gnmi: {
    tiny: section('gnmi', 'gNMI at the loads the other adapters carry', GNMI_ABOUT, () =>
      gnmiBench(GNMI_TINY),
    ),
    full: section('gnmi', 'gNMI at the loads the other adapters carry', GNMI_ABOUT, () =>
      gnmiBench(GNMI_FULL),
    ),
  },
  persist: {
    tiny: section('persist', 'Persistence at scale', PERSIST_ABOUT, () =>
      withEnv('FLOWPIN_BENCH_FLOWS', '20000', persistBench),
    ),
    full: section('persist', 'Persistence at scale', PERSIST_ABOUT, persistBench),
  },
  ha: {
    tiny: haSection(HA_TINY),
    full: haSection(HA_FULL),
  },
  torture: { tiny: () => torture(TORTURE_TINY), full: () => torture(TORTURE_FULL) },
  linux: {
    tiny: section(
      'linux',
      'The Linux router adapter on the real kernel',
      'Look-ups, nft transactions and pins on this kernel; see docs/linux.md.',
      () => linuxBench(LINUX_TINY),
    ),
    full: section(
      'linux',
      'The Linux router adapter on the real kernel',
      'Look-ups, nft transactions and pins on this kernel; see docs/linux.md.',
      () => linuxBench(LINUX_FULL),
    ),
  },
};

async function withEnv<T>(name: string, value: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env[name];
  process.env[name] = value;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { tiny: { type: 'boolean', default: false }, out: { type: 'string' } },
  });
  const unknown = positionals.filter((w) => !(w in BENCHES));
  if (unknown.length > 0)
    throw new Error(`unknown benchmark ${unknown.join(', ')}; have: ${Object.keys(BENCHES).join(', ')}`);
  let paths: OutputPaths = repoPaths;
  if (values.out !== undefined) {
    paths = {
      results: path.join(values.out, 'results.json'),
      readme: path.join(values.out, 'README.md'),
      benchmarks: path.join(values.out, 'BENCHMARKS.md'),
    };
    if (!existsSync(paths.readme)) copyFileSync(repoPaths.readme, paths.readme);
  }
  for (const [name, bench] of Object.entries(BENCHES)) {
    if (positionals.length > 0 && !positionals.includes(name)) continue;
    const run = values.tiny ? bench.tiny : bench.full;
    if (run === undefined) {
      process.stdout.write(`\n== ${name}: no tiny version, skipped\n`);
      continue;
    }
    process.stdout.write(`\n== ${name}${values.tiny ? ' (tiny)' : ''}\n`);
    const output = await run();
    printFigures(output.figures);
    recordResults(output, paths);
  }
  process.stdout.write(`\nrecorded in ${paths.results}, ${paths.benchmarks} and ${paths.readme}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
