// `flowpin start`: the embedded default. Runs the switch simulator with live traffic and
// flowpin's mirror receiver, the simulator mirroring SYNs to it over GRE-in-UDP, and prints
// a status line every few seconds.

import { MirrorReceiver } from '../mirror-receiver/receiver.js';
import { startSimulator } from '../switch-sim/run.js';
import { describeSimulator, scenarioFromArgs, untilSignal } from './sim.js';

export async function startCommand(args: string[]): Promise<number> {
  const { scenario } = scenarioFromArgs(args, 'start');
  let synsSeen = 0;
  const receiver = new MirrorReceiver(
    (ev) => {
      if ((ev.flags & 0x02) !== 0) synsSeen++;
    },
    Date.now,
    (err) => process.stderr.write(`flowpin: ${err.message}\n`),
  );
  const bound = await receiver.listenUdp({ host: scenario.mirror.host, port: scenario.mirror.port });
  const sim = await startSimulator({ ...scenario, mirror: { ...scenario.mirror, port: bound.port } });
  process.stdout.write(`flowpin: mirror receiver on GRE-in-UDP ${bound.address}:${bound.port}\n`);
  process.stdout.write(`flowpin: simulator ${describeSimulator(sim, scenario)}`);
  const timer = setInterval(() => {
    const c = sim.counters();
    const r = receiver.status();
    process.stdout.write(`flowpin: connections active ${c.connections.active}, opened ${c.connections.opened}, reset ${c.connections.reset} | mirrored SYNs decoded ${synsSeen}, dropped ${r.frames - r.decoded}\n`);
  }, 5000);
  await untilSignal();
  clearInterval(timer);
  await sim.stop();
  await receiver.stop();
  return 0;
}
