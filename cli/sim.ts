// `flowpin sim`: runs the switch simulator alone (scenario from a YAML file and flags) and
// prints where its eAPI, gNMI, counters and mirror endpoints are; runs until SIGINT/SIGTERM.
// With --ipc it is the child process of `flowpin start`, talking to its parent over IPC.

import { once } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadSwitch, saveSwitch } from '../switch-sim/persist.js';
import { ConfigError, Reader } from '../lib/validate.js';
import { readScenario, type Scenario } from '../switch-sim/scenario.js';
import { MirrorSender } from '../switch-sim/mirror.js';
import { portIndexOf } from '../switch-sim/sim-switch.js';
import {
  startSimulator,
  type RunningSimulator,
  type SimCounters,
  type SimulatorOptions,
} from '../switch-sim/run.js';

type Doc = Record<string, Record<string, unknown>>;

/**
 * What `flowpin start` runs unless told otherwise: FIN and RST mirrored both ways, the realistic traffic
 * model.
 */
export const DEMO_DEFAULTS: Doc = {
  switch: { mirrorFinRst: true },
  mirror: { replies: true, replyRst: true, replyFin: true },
  traffic: {
    lifetime: { kind: 'heavy-tail' },
    close: { halfCloseShare: 0.1, halfCloseS: 2, serverCloseShare: 0.1, rstShare: 0.01 },
    idleShare: 0.02,
    idleGapS: 120,
  },
};

type RunOptions = Pick<SimulatorOptions, 'dataplane' | 'resetLog' | 'speed'>;

/**
 * Reads the scenario file (if any) with the flags laid over it; `start` lays the demo's defaults under both.
 */
export function scenarioFromArgs(
  args: string[],
  name = 'sim',
): { scenario: Scenario; run: RunOptions; stateFile: string | undefined } {
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
      'state-file': { type: 'string' },
      dataplane: { type: 'string' },
      'reset-log': { type: 'string' },
      speed: { type: 'string' },
      'preexisting-s': { type: 'string' },
      'mirror-mode': { type: 'string' },
      'lifetime-model': { type: 'string' },
      'half-close-share': { type: 'string' },
      'idle-share': { type: 'string' },
      table: { type: 'string' },
      'reserved-entries': { type: 'string' },
    },
  });
  const file = values.config ?? `(${name} defaults)`;
  const doc = (values.config === undefined ? {} : (Reader.parseFile(values.config) ?? {})) as Doc;
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new ConfigError(file, '', 'the top level must be a mapping');
  if (name === 'start') underlay(doc, DEMO_DEFAULTS);
  const section = (k: string): Record<string, unknown> => {
    const v = doc[k];
    if (v === undefined || v === null) doc[k] = {};
    else if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(file, k, 'must be a mapping');
    return doc[k] as Record<string, unknown>;
  };
  const num = (flag: string, v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n))
      throw new ConfigError('command line', `--${flag}`, `must be a number, got '${v}'`);
    return n;
  };
  if (values['eapi-port'] !== undefined) section('eapi')['port'] = num('eapi-port', values['eapi-port']);
  if (values['gnmi-port'] !== undefined) section('gnmi')['port'] = num('gnmi-port', values['gnmi-port']);
  if (values['status-port'] !== undefined)
    section('status')['port'] = num('status-port', values['status-port']);
  if (values.mirror !== undefined) {
    const at = values.mirror.lastIndexOf(':');
    if (at < 0)
      throw new ConfigError('command line', '--mirror', `expected HOST:PORT, got '${values.mirror}'`);
    section('mirror')['host'] = values.mirror.slice(0, at).replace(/^\[|\]$/g, '');
    section('mirror')['port'] = num('mirror', values.mirror.slice(at + 1));
  }
  if (values['mirror-raw']) section('mirror')['transport'] = 'raw';
  if (values.rate !== undefined) section('traffic')['connectionsPerSecond'] = num('rate', values.rate);
  if (values['no-traffic']) section('traffic')['enabled'] = false;
  if (values.seed !== undefined) section('traffic')['seed'] = num('seed', values.seed);
  if (values['preexisting-s'] !== undefined)
    section('traffic')['preexistingS'] = num('preexisting-s', values['preexisting-s']);
  if (values['half-close-share'] !== undefined)
    section('traffic')['close'] = {
      ...(section('traffic')['close'] as object | undefined),
      halfCloseShare: num('half-close-share', values['half-close-share']),
    };
  if (values['idle-share'] !== undefined)
    section('traffic')['idleShare'] = num('idle-share', values['idle-share']);
  if (values['lifetime-model'] !== undefined) {
    const m = values['lifetime-model'];
    if (m !== 'lognormal' && m !== 'heavy-tail')
      throw new ConfigError('command line', '--lifetime-model', `is lognormal or heavy-tail, got '${m}'`);
    section('traffic')['lifetime'] = { kind: m };
  }
  if (values.table !== undefined) section('switch')['pinCapacity'] = num('table', values.table);
  if (values['reserved-entries'] !== undefined)
    section('switch')['reservedPinEntries'] = num('reserved-entries', values['reserved-entries']);
  if (values['mirror-mode'] !== undefined) {
    const m = values['mirror-mode'];
    if (m !== 'syn-only' && m !== 'fin-rst' && m !== 'both-ways')
      throw new ConfigError('command line', '--mirror-mode', `is syn-only, fin-rst or both-ways, got '${m}'`);
    section('switch')['mirrorFinRst'] = m !== 'syn-only';
    Object.assign(section('mirror'), {
      replies: m === 'both-ways',
      replyRst: m === 'both-ways',
      replyFin: m === 'both-ways',
    });
  }
  const run: RunOptions = {};
  if (values.speed !== undefined) {
    run.speed = num('speed', values.speed);
    if (!(run.speed > 0 && run.speed <= 1000))
      throw new ConfigError(
        'command line',
        '--speed',
        `must be above 0 and at most 1000, got '${values.speed}'`,
      );
  }
  if (values.dataplane !== undefined) {
    const at = values.dataplane.lastIndexOf(':');
    if (at < 0)
      throw new ConfigError('command line', '--dataplane', `expected HOST:PORT, got '${values.dataplane}'`);
    run.dataplane = {
      host: values.dataplane.slice(0, at).replace(/^\[|\]$/g, ''),
      port: num('dataplane', values.dataplane.slice(at + 1)),
    };
  }
  if (values['reset-log'] !== undefined) run.resetLog = values['reset-log'];
  return { scenario: readScenario(Reader.fromObject(file, doc)), run, stateFile: values['state-file'] };
}

/** Lays `defaults` under `doc`: a key the document sets wins, mappings merge. */
function underlay(doc: Record<string, unknown>, defaults: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(defaults)) {
    const have = doc[k];
    if (have === undefined || have === null) doc[k] = structuredClone(v);
    else if (
      typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      typeof have === 'object' &&
      !Array.isArray(have)
    )
      underlay(have as Record<string, unknown>, v as Record<string, unknown>);
  }
}

export function describeSimulator(sim: RunningSimulator, scenario: Scenario): string {
  const lines = [
    `switch ${scenario.switch.hostname} (${scenario.switch.ecmpMode} ECMP, ${scenario.switch.bucketCount} buckets, pin table ${scenario.switch.pinCapacity})`,
  ];
  for (const v of sim.sw.vips.values()) lines.push(`  VIP ${v.address} -> ${v.group.members().join(' ')}`);
  if (scenario.spareServers.length > 0) lines.push(`  spare servers: ${scenario.spareServers.join(' ')}`);
  if (sim.endpoints.eapi) lines.push(`  eAPI     ${sim.endpoints.eapi} (user ${scenario.eapi.username})`);
  if (sim.endpoints.gnmi)
    lines.push(
      `  gNMI     ${sim.endpoints.gnmi}${scenario.gnmi.username ? ` (user ${scenario.gnmi.username})` : ' (no auth)'}`,
    );
  if (sim.endpoints.status) lines.push(`  counters ${sim.endpoints.status}/counters`);
  if (sim.endpoints.dataplane) lines.push(`  dataplane ${sim.endpoints.dataplane} (udp)`);
  if (sim.endpoints.mirror)
    lines.push(`  mirror   ${sim.endpoints.mirror} (switch address ${scenario.mirror.sourceAddress})`);
  if (scenario.traffic.enabled)
    lines.push(
      `  traffic  ${scenario.traffic.connectionsPerSecond} connections/s to ${scenario.vips.map((v) => `${v.address}:${v.port}`).join(' ')}`,
    );
  return lines.join('\n') + '\n';
}

export const untilSignal = (): Promise<string> =>
  new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });

export async function simCommand(args: string[]): Promise<number> {
  const ipc = args.includes('--ipc');
  const { scenario, run, stateFile } = scenarioFromArgs(
    args.filter((a) => a !== '--ipc'),
    ipc ? 'start' : 'sim',
  );
  if (ipc) return simChild(scenario, run, stateFile);
  const sim = await startSimulator(scenario, run);
  if (stateFile !== undefined) loadSwitch(sim.sw, stateFile);
  process.stdout.write(`flowpin sim: ${describeSimulator(sim, scenario)}`);
  await untilSignal();
  const c = sim.counters();
  if (stateFile !== undefined) saveSwitch(sim.sw, stateFile);
  await sim.stop();
  process.stdout.write(
    `flowpin sim: stopped; connections opened ${c.connections.opened}, closed cleanly ${c.connections.closedCleanly}, reset ${c.connections.reset}\n`,
  );
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
async function simChild(scenario: Scenario, run: RunOptions, stateFile: string | undefined): Promise<number> {
  const send = (m: SimChildMessage): void => {
    if (process.connected) process.send?.(m);
  };
  if (process.send === undefined)
    throw new Error('--ipc: no parent process to talk to (it is for `flowpin start`)');
  const sim = await startSimulator(
    { ...scenario, mirror: { ...scenario.mirror, enabled: false } },
    { ...run, holdTraffic: true },
  );
  // The switch's configuration as the last run left it (groups; not pins: they do not survive a switch
  // restart).
  if (stateFile !== undefined) loadSwitch(sim.sw, stateFile);
  // Connections older than flowpin: the traffic starts now, the mirror reaches flowpin only after
  // preexistingS.
  const trafficFrom = sim.clock.now();
  if (scenario.traffic.preexistingS > 0) sim.traffic?.start();
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
    sender.start().then(
      () => {
        const attach = (): void => {
          sim.sw.mirror = (p) => sender.send(p);
          if (scenario.mirror.replies)
            sim.sw.replyMirror = (p, from) =>
              sender.sendReply(
                p,
                { mac: from.mac, portIndex: portIndexOf(from.port) },
                scenario.mirror.replyEncap,
              );
          sim.sw.replyMirrorRst = scenario.mirror.replies && scenario.mirror.replyRst;
          sim.sw.replyMirrorFin = scenario.mirror.replies && scenario.mirror.replyFin;
          sim.traffic?.start();
          send({ type: 'started' });
        };
        sim.clock.at(trafficFrom + scenario.traffic.preexistingS * 1000, attach);
      },
      (err: unknown) => {
        process.stderr.write(
          `flowpin sim: cannot send the mirror: ${err instanceof Error ? err.message : String(err)}\n`,
        );
        process.kill(process.pid, 'SIGTERM');
      },
    );
  });
  send({ type: 'ready', endpoints: sim.endpoints, description: describeSimulator(sim, scenario) });
  await Promise.race([untilSignal(), once(process, 'disconnect')]);
  clearInterval(timer);
  sim.traffic?.stop();
  mirror?.stop();
  send({ type: 'counters', connections: sim.counters().connections });
  if (stateFile !== undefined) saveSwitch(sim.sw, stateFile);
  await sim.stop();
  delay.disable();
  process.stdout.write(
    `flowpin sim: stopped; its event loop was held up at most ${Math.round(delay.max / 1e6)} ms\n`,
  );
  process.disconnect?.();
  return 0;
}
