// `flowpin sim`: runs the switch simulator alone (scenario from a YAML file and flags) and
// prints where its eAPI, gNMI, counters and mirror endpoints are; runs until SIGINT/SIGTERM.
// With --ipc it is the child process of `flowpin start`, talking to its parent over IPC.

import { once } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ConfigError, Reader } from '../controller/validate.js';
import { readScenario, type Scenario } from '../switch-sim/scenario.js';
import { MirrorSender } from '../switch-sim/mirror.js';
import { startSimulator, type RunningSimulator, type SimCounters } from '../switch-sim/run.js';

export const SIM_USAGE = `usage: flowpin sim [--config FILE] [--eapi-port N] [--gnmi-port N] [--status-port N]
                  [--mirror HOST:PORT] [--mirror-raw] [--rate N] [--no-traffic] [--seed N]
  (--ipc: run as the simulator of \`flowpin start\`, its child process)`;

type Doc = Record<string, Record<string, unknown>>;

/** Reads the scenario file (if any) with the flags laid over it. */
export function scenarioFromArgs(args: string[], name = 'sim'): { scenario: Scenario } {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      config: { type: 'string' },
      'eapi-port': { type: 'string' },
      'gnmi-port': { type: 'string' },
      'status-port': { type: 'string' },
      mirror: { type: 'string' },
      'mirror-raw': { type: 'boolean', default: false },
      rate: { type: 'string' },
      'no-traffic': { type: 'boolean', default: false },
      seed: { type: 'string' },
    },
  });
  const file = values.config ?? `(${name} defaults)`;
  const doc = (values.config === undefined ? {} : (Reader.parseFile(values.config) ?? {})) as Doc;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(file, '', 'the top level must be a mapping');
  const section = (k: string): Record<string, unknown> => {
    const v = doc[k];
    if (v === undefined || v === null) doc[k] = {};
    else if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(file, k, 'must be a mapping');
    return doc[k] as Record<string, unknown>;
  };
  const num = (flag: string, v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new ConfigError('command line', `--${flag}`, `must be a number, got '${v}'`);
    return n;
  };
  if (values['eapi-port'] !== undefined) section('eapi')['port'] = num('eapi-port', values['eapi-port']);
  if (values['gnmi-port'] !== undefined) section('gnmi')['port'] = num('gnmi-port', values['gnmi-port']);
  if (values['status-port'] !== undefined) section('status')['port'] = num('status-port', values['status-port']);
  if (values.mirror !== undefined) {
    const at = values.mirror.lastIndexOf(':');
    if (at < 0) throw new ConfigError('command line', '--mirror', `expected HOST:PORT, got '${values.mirror}'`);
    section('mirror')['host'] = values.mirror.slice(0, at).replace(/^\[|\]$/g, '');
    section('mirror')['port'] = num('mirror', values.mirror.slice(at + 1));
  }
  if (values['mirror-raw']) section('mirror')['transport'] = 'raw';
  if (values.rate !== undefined) section('traffic')['connectionsPerSecond'] = num('rate', values.rate);
  if (values['no-traffic']) section('traffic')['enabled'] = false;
  if (values.seed !== undefined) section('traffic')['seed'] = num('seed', values.seed);
  return { scenario: readScenario(Reader.fromObject(file, doc)) };
}

export function describeSimulator(sim: RunningSimulator, scenario: Scenario): string {
  const lines = [`switch ${scenario.switch.hostname} (${scenario.switch.ecmpMode} ECMP, ${scenario.switch.bucketCount} buckets, pin table ${scenario.switch.pinCapacity})`];
  for (const v of sim.sw.vips.values()) lines.push(`  VIP ${v.address} -> ${v.group.members().join(' ')}`);
  if (scenario.spareServers.length > 0) lines.push(`  spare servers: ${scenario.spareServers.join(' ')}`);
  if (sim.endpoints.eapi) lines.push(`  eAPI     ${sim.endpoints.eapi} (user ${scenario.eapi.username})`);
  if (sim.endpoints.gnmi) lines.push(`  gNMI     ${sim.endpoints.gnmi}${scenario.gnmi.username ? ` (user ${scenario.gnmi.username})` : ' (no auth)'}`);
  if (sim.endpoints.status) lines.push(`  counters ${sim.endpoints.status}/counters`);
  if (sim.endpoints.mirror) lines.push(`  mirror   ${sim.endpoints.mirror} (switch address ${scenario.mirror.sourceAddress})`);
  if (scenario.traffic.enabled) lines.push(`  traffic  ${scenario.traffic.connectionsPerSecond} connections/s to ${scenario.vips.map((v) => `${v.address}:${v.port}`).join(' ')}`);
  return lines.join('\n') + '\n';
}

export const untilSignal = (): Promise<string> =>
  new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });

export async function simCommand(args: string[]): Promise<number> {
  const ipc = args.includes('--ipc');
  const { scenario } = scenarioFromArgs(args.filter((a) => a !== '--ipc'));
  if (ipc) return simChild(scenario);
  const sim = await startSimulator(scenario);
  process.stdout.write(`flowpin sim: ${describeSimulator(sim, scenario)}`);
  await untilSignal();
  const c = sim.counters();
  await sim.stop();
  process.stdout.write(`flowpin sim: stopped; connections opened ${c.connections.opened}, closed cleanly ${c.connections.closedCleanly}, reset ${c.connections.reset}\n`);
  return 0;
}

/** What the simulator child of `flowpin start` tells its parent. */
export type SimChildMessage =
  | { type: 'ready'; endpoints: RunningSimulator['endpoints']; description: string }
  | { type: 'counters'; connections: SimCounters['connections'] }
  | { type: 'started' };

/** What the parent tells it: where flowpin's mirror receiver listens (then the traffic starts). */
export interface SimParentMessage {
  type: 'go';
  mirrorPort: number;
}

/**
 * The simulator as `flowpin start`'s child process: it serves its eAPI, gNMI and counters at
 * once, holds its traffic until the parent says where flowpin listens for the mirror (a SYN
 * flowpin never saw is a connection it cannot keep), reports its connection counters twice a
 * second, and stops on SIGINT/SIGTERM or when the parent goes away.
 */
async function simChild(scenario: Scenario): Promise<number> {
  const send = (m: SimChildMessage): void => {
    if (process.connected) process.send?.(m);
  };
  if (process.send === undefined) throw new Error('--ipc: no parent process to talk to (it is for `flowpin start`)');
  const sim = await startSimulator({ ...scenario, mirror: { ...scenario.mirror, enabled: false } }, { holdTraffic: true });
  // How late this process ran: the simulator stamps a connection with its clock's time, which
  // trails the wall clock by as much as its event loop was held up (on a busy box, the OS).
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let mirror: MirrorSender | undefined;
  const timer = setInterval(() => send({ type: 'counters', connections: sim.counters().connections }), 500);
  process.on('message', (m: SimParentMessage) => {
    if (m.type !== 'go' || mirror !== undefined) return;
    const sender = new MirrorSender({ ...scenario.mirror, port: m.mirrorPort });
    mirror = sender;
    sender.start().then(() => {
      sim.sw.mirror = (p) => sender.send(p);
      sim.traffic?.start();
      send({ type: 'started' });
    }, (err: unknown) => {
      process.stderr.write(`flowpin sim: cannot send the mirror: ${err instanceof Error ? err.message : String(err)}\n`);
      process.kill(process.pid, 'SIGTERM');
    });
  });
  send({ type: 'ready', endpoints: sim.endpoints, description: describeSimulator(sim, scenario) });
  await Promise.race([untilSignal(), once(process, 'disconnect')]);
  clearInterval(timer);
  sim.traffic?.stop();
  mirror?.stop();
  send({ type: 'counters', connections: sim.counters().connections });
  await sim.stop();
  delay.disable();
  process.stdout.write(`flowpin sim: stopped; its event loop was held up at most ${Math.round(delay.max / 1e6)} ms\n`);
  process.disconnect?.();
  return 0;
}
