// `flowpin start`: the embedded default. Runs the switch simulator with live traffic and a
// flowpin controller that manages it the way it manages a real switch: through the
// simulator's eAPI (the Arista adapter), with mirrored SYNs arriving as GRE-in-UDP frames.
// The API listens on 127.0.0.1:8080 unless told otherwise.

import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { SimulatorCounters } from '../controller/api/snapshot.js';
import { readConfig } from '../controller/config.js';
import { Reader } from '../controller/validate.js';
import { createAdapter } from '../switch-adapters/factory.js';
import { MirrorSender } from '../switch-sim/mirror.js';
import { startSimulator } from '../switch-sim/run.js';
import { makeLogger, serve } from './serve.js';
import { describeSimulator, scenarioFromArgs, untilSignal } from './sim.js';

export async function startCommand(args: string[]): Promise<number> {
  const OWN = ['--api-host', '--api-port', '--pin-mode', '--state-file'];
  const own = parseArgs({ args, strict: false, options: { 'api-host': { type: 'string' }, 'api-port': { type: 'string' }, 'pin-mode': { type: 'string' }, 'state-file': { type: 'string' } } }).values;
  const simArgs = args.filter((a, i) => !OWN.includes(a) && !OWN.includes(args[i - 1] ?? ''));
  const { scenario } = scenarioFromArgs(simArgs, 'start');
  const token = process.env['FLOWPIN_TOKEN'] ?? randomBytes(12).toString('hex');
  // Traffic waits until flowpin listens: a SYN it never saw is a connection it cannot keep.
  const sim = await startSimulator({ ...scenario, mirror: { ...scenario.mirror, enabled: false } }, { holdTraffic: true });
  const config = readConfig(Reader.fromObject('(flowpin start)', {
    api: { host: typeof own['api-host'] === 'string' ? own['api-host'] : '127.0.0.1', port: own['api-port'] === undefined ? 8080 : Number(own['api-port']), token },
    mirror: { udp: [{ host: scenario.mirror.host, port: scenario.mirror.port }] },
    pinMode: own['pin-mode'] ?? 'on-change',
    ...(typeof own['state-file'] === 'string' ? { stateFile: own['state-file'] } : {}),
    switches: [{
      name: scenario.switch.hostname,
      adapter: 'arista-eapi',
      mirrorSources: [scenario.mirror.sourceAddress],
      pinTableSize: scenario.switch.pinCapacity,
      eapi: { url: sim.endpoints.eapi, username: scenario.eapi.username, password: scenario.eapi.password, groupTemplate: 'static-ecmp' },
      vips: scenario.vips.map((v) => ({ address: v.address, nexthops: [...v.nexthops] })),
    }],
  }));
  const logger = makeLogger();
  let served;
  try {
    const simulator = (): SimulatorCounters => {
      const c = sim.counters().connections;
      return { opened: c.opened, closed: c.closedCleanly, reset: c.reset, active: c.active };
    };
    served = await serve(config, new Map(config.switches.map((s) => [s.name, createAdapter(s)])), logger, { simulator });
  } catch (err) {
    await sim.stop();
    throw err;
  }
  // The simulator's mirror session points at the receiver's bound port (the port may be 0).
  const bound = served.controller.listening[0];
  if (bound === undefined) throw new Error('the mirror receiver is not listening');
  const mirror = new MirrorSender({ ...scenario.mirror, port: bound.port });
  await mirror.start();
  sim.sw.mirror = (p) => mirror.send(p);
  sim.traffic?.start();
  const sw = scenario.switch.hostname;
  const vip = scenario.vips[0];
  process.stdout.write(`flowpin: dashboard ${served.apiUrl}/\n`);
  process.stdout.write(`flowpin: API ${served.apiUrl} (token ${process.env['FLOWPIN_TOKEN'] === undefined ? `${token}; set FLOWPIN_TOKEN to choose it` : 'from FLOWPIN_TOKEN'})\n`);
  process.stdout.write(`flowpin: mirror receiver on GRE-in-UDP ${bound.address}:${bound.port}\n`);
  process.stdout.write(`flowpin: simulator ${describeSimulator(sim, scenario)}`);
  if (vip !== undefined) {
    process.stdout.write(startHint(served.apiUrl, sw, vip.address, vip.nexthops[1] ?? vip.nexthops[0] ?? '', process.env['FLOWPIN_TOKEN'] === undefined ? token : undefined));
  }
  const timer = setInterval(() => {
    const c = sim.counters();
    const s = served.controller.readiness().switches[0];
    process.stdout.write(`flowpin: connections active ${c.connections.active}, opened ${c.connections.opened}, reset ${c.connections.reset} | flows ${s?.flows ?? 0}, pins ${s?.pins.installed ?? 0}/${s?.pins.capacity ?? 0} | ${served.controller.readiness().ready ? 'ready' : `not ready: ${s?.lastError ?? ''}`}\n`);
  }, 10_000);
  await untilSignal();
  clearInterval(timer);
  sim.traffic?.stop();
  mirror.stop();
  await served.close();
  await sim.stop();
  // State is written: leave promptly even if a change's wait on a switch is still scheduled.
  setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref();
  return 0;
}

/**
 * The commands `flowpin start` suggests, working as pasted: the token itself when it was
 * generated (no FLOWPIN_TOKEN in the environment), `$FLOWPIN_TOKEN` when it came from there.
 */
export function startHint(apiUrl: string, sw: string, vip: string, nexthop: string, generatedToken: string | undefined): string {
  const bearer = generatedToken === undefined ? '"Authorization: Bearer $FLOWPIN_TOKEN"' : `'Authorization: Bearer ${generatedToken}'`;
  return `flowpin: try\n  curl -s ${apiUrl}/api/v1/switches/${sw}/vips\n  curl -s -X POST -H ${bearer} -H 'content-type: application/json' -d '{"acceptRisk":true}' ${apiUrl}/api/v1/switches/${sw}/vips/${vip}/nexthops/${nexthop}/drain\n`;
}
