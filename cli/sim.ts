// `flowpin sim`: runs the switch simulator alone (scenario from a YAML file and flags) and
// prints where its eAPI, gNMI, counters and mirror endpoints are; runs until SIGINT/SIGTERM.

import { parseArgs } from 'node:util';
import { ConfigError, Reader } from '../controller/validate.js';
import { readScenario, type Scenario } from '../switch-sim/scenario.js';
import { startSimulator, type RunningSimulator } from '../switch-sim/run.js';

export const SIM_USAGE = `usage: flowpin sim [--config FILE] [--eapi-port N] [--gnmi-port N] [--status-port N]
                  [--mirror HOST:PORT] [--mirror-raw] [--rate N] [--no-traffic] [--seed N]`;

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
  const { scenario } = scenarioFromArgs(args);
  const sim = await startSimulator(scenario);
  process.stdout.write(`flowpin sim: ${describeSimulator(sim, scenario)}`);
  await untilSignal();
  const c = sim.counters();
  await sim.stop();
  process.stdout.write(`flowpin sim: stopped; connections opened ${c.connections.opened}, closed cleanly ${c.connections.closedCleanly}, reset ${c.connections.reset}\n`);
  return 0;
}
