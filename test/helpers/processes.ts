// flowpin as an operator runs it, each part in a process of its own: the switch simulator
// (`flowpin sim`, no traffic of its own; it keeps the pins), the controller (`flowpin run`
// with a configuration written here), and mirror senders (bench/mirror-sender, bounded in
// count and time). For the fault tests that need real processes and real sockets.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { until } from './demo.js';
import { flowpinBin, repoRoot } from './tools.js';

export const SENDER = path.join(repoRoot, 'dist/bench/mirror-sender.js');

export interface Proc {
  child: ChildProcess;
  out: () => string;
  exit: Promise<[number | null, string | null]>;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/** A process of `command` (node unless given) with `args`. */
export function proc(
  args: string[],
  env: Record<string, string> = {},
  command: string = process.execPath,
): Proc {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FLOWPIN_LOG_LEVEL: 'warn', ...env },
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exit = once(child, 'exit') as Promise<[number | null, string | null]>;
  return {
    child,
    out: () => out,
    exit,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(t);
    },
  };
}

export interface SimProc extends Proc {
  eapi: string;
  counters: string;
  /** Pins the switch reports programmed. */
  pins(): Promise<number>;
}

/** The simulator, with the mirror senders' clients (10.16.0.0/12 onwards) on its uplink. */
export async function startSim(dir: string): Promise<SimProc> {
  const scenario = path.join(dir, 'sim.yaml');
  writeFileSync(
    scenario,
    "switch: { uplink: { prefixes: ['10.16.0.0/12', '10.32.0.0/11', '10.64.0.0/11', '2001:db8:c::/48'] } }\n",
  );
  const p = proc([
    flowpinBin,
    'sim',
    '--config',
    scenario,
    '--eapi-port',
    '0',
    '--gnmi-port',
    '0',
    '--status-port',
    '0',
    '--mirror',
    '127.0.0.1:9',
    '--no-traffic',
  ]);
  try {
    const eapi = await until(
      () => /eAPI\s+(http:\S+)/.exec(p.out())?.[1],
      20_000,
      `the simulator (output: ${p.out()})`,
    );
    const counters = await until<string>(
      () => /counters (http:\S+\/counters)/.exec(p.out())?.[1],
      5000,
      'the counters endpoint',
    );
    return {
      ...p,
      eapi,
      counters,
      pins: async () =>
        ((await (await fetch(counters)).json()) as { pins: { programmed: number } }).pins.programmed,
    };
  } catch (err) {
    await p.stop();
    throw err;
  }
}

export interface FlowpinProc extends Proc {
  api: string;
  mirrorPort: number;
  config: string;
}

/**
 * `flowpin run` against the simulator; `extra` are top-level configuration lines, `mirrorSources` the
 * switch's.
 */
export async function startFlowpin(
  dir: string,
  sim: SimProc,
  o: { token: string; stateFile: string; mirrorSources?: string[]; extra?: string[] },
): Promise<FlowpinProc> {
  const config = path.join(dir, 'flowpin.yaml');
  writeFileSync(
    config,
    [
      `api: { host: 127.0.0.1, port: 0, token: ${o.token} }`,
      ...(o.extra ?? []),
      `stateFile: ${o.stateFile}`,
      'switches:',
      '  - name: sim1',
      '    adapter: arista-eapi',
      `    mirrorSources: [${(o.mirrorSources ?? ['127.0.0.1']).join(', ')}]`,
      `    eapi: { url: '${sim.eapi}', username: admin, password: flowpin, groupTemplate: static-ecmp }`,
      '    vips: [{ address: 192.0.2.80, nexthops: [10.0.1.1, 10.0.1.2, 10.0.1.3, 10.0.1.4] }]',
      '',
    ].join('\n'),
  );
  const p = proc([flowpinBin, 'run', '--config', config]);
  try {
    const api = await until(
      () => /API (http:\S+?),/.exec(p.out())?.[1],
      20_000,
      `flowpin run (output: ${p.out()})`,
    );
    const mirrorPort = Number(
      await until(
        () => /mirror receiver on GRE-in-UDP \S+:(\d+)/.exec(p.out())?.[1],
        5000,
        'the mirror receiver',
      ),
    );
    return { ...p, api, mirrorPort, config };
  } catch (err) {
    await p.stop();
    throw err;
  }
}

/** A mirror sender process: COUNT distinct-shaped SYN datagrams at RATE per second to flowpin. */
export function sendMirror(
  port: number,
  count: number,
  rate: number,
): Proc & { result(): Promise<{ sent: number; seconds: number; refused: number }> } {
  const p = proc([SENDER, String(port), String(count), String(rate)]);
  return {
    ...p,
    async result() {
      const [code] = await p.exit;
      if (code !== 0) throw new Error(`mirror sender exited ${code ?? '?'}: ${p.out()}`);
      return JSON.parse(p.out().trim().split('\n').pop() ?? '{}') as {
        sent: number;
        seconds: number;
        refused: number;
      };
    },
  };
}
