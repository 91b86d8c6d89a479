// `flowpin start`: the embedded default. The switch simulator and its live traffic run in a
// child process (`flowpin sim --ipc`), so that the demo measures flowpin and not a thread
// shared with the switch; the controller runs in this process and manages the simulator the
// way it manages a real switch: through its eAPI (the Arista adapter), with mirrored SYNs
// arriving as GRE-in-UDP frames. The API listens on 127.0.0.1:8080 unless told otherwise.
// SIGINT/SIGTERM stop both: the controller first (state written, pins left on the switch),
// then the simulator; if the simulator ends on its own, the controller stops too.

import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { discardState } from '../controller/state-store.js';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { SimulatorCounters } from '../controller/api/snapshot.js';
import { readConfig } from '../controller/config.js';
import { lockStateFile } from '../controller/state-lock.js';
import { Reader } from '../lib/validate.js';
import { createAdapters } from '../switch-adapters/registry.js';
import { makeLogger, serve, type Served } from './serve.js';
import { scenarioFromArgs, untilSignal, type SimChildMessage, type SimParentMessage } from './sim.js';

const FLOWPIN = fileURLToPath(new URL('./flowpin.js', import.meta.url));

/** How long the simulator child may take to come up, and to leave once told to. */
const CHILD_START_MS = 30_000;
const CHILD_STOP_MS = 5_000;

/** Where `flowpin start` keeps its state unless told otherwise (relative to the working directory). */
export const DEFAULT_START_STATE = '.flowpin/start.state';

export async function startCommand(args: string[]): Promise<number> {
  const OWN = ['--api-host', '--api-port', '--pin-mode', '--state-file'];
  const FLAGS = ['--no-state', '--discard-state'];
  const own = parseArgs({
    args,
    strict: false,
    options: {
      'api-host': { type: 'string' },
      'api-port': { type: 'string' },
      'pin-mode': { type: 'string' },
      'state-file': { type: 'string' },
      'no-state': { type: 'boolean' },
      'discard-state': { type: 'boolean' },
    },
  }).values;
  const simArgs = args.filter(
    (a, i) => !OWN.includes(a) && !FLAGS.includes(a) && !OWN.includes(args[i - 1] ?? ''),
  );
  // Read here too: a bad flag is reported before any process starts, and the controller's configuration needs
  // the scenario.
  const { scenario } = scenarioFromArgs(simArgs, 'start');
  // State is kept by default, so that a restart resumes what was in progress (the switch's groups too).
  const stateFile =
    own['no-state'] === true
      ? undefined
      : typeof own['state-file'] === 'string'
        ? own['state-file']
        : DEFAULT_START_STATE;
  if (stateFile !== undefined) mkdirSync(path.dirname(path.resolve(stateFile)), { recursive: true });
  if (stateFile !== undefined && own['discard-state'] === true) {
    const d = discardState(stateFile);
    process.stderr.write(
      d.moved.length === 0
        ? 'flowpin: --discard-state: every state file reads; nothing moved aside\n'
        : `flowpin: state that cannot be read moved aside: ${d.moved.join(', ')} (${d.reasons.join('; ')})\n`,
    );
  }
  // One flowpin per state file, before the simulator starts or anything connects to it.
  const lock = stateFile === undefined ? undefined : lockStateFile(stateFile);
  const token = process.env['FLOWPIN_TOKEN'] ?? randomBytes(12).toString('hex');
  const child = fork(
    FLOWPIN,
    ['sim', ...simArgs, ...(stateFile === undefined ? [] : ['--state-file', `${stateFile}.switch`]), '--ipc'],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  let connections: SimulatorCounters = { opened: 0, closed: 0, reset: 0, active: 0 };
  child.on('message', (m: SimChildMessage) => {
    if (m.type === 'counters')
      connections = {
        opened: m.connections.opened,
        closed: m.connections.closedCleanly,
        reset: m.connections.reset,
        active: m.connections.active,
      };
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let ready: Extract<SimChildMessage, { type: 'ready' }>;
  try {
    ready = await childReady(child, exited);
  } catch (err) {
    await stopChild(child, exited);
    throw err;
  }
  const eapi = ready.endpoints.eapi;
  if (eapi === undefined) {
    await stopChild(child, exited);
    throw new Error(
      'the simulator serves no eAPI (eapi.enabled is false): flowpin start manages it through its eAPI',
    );
  }
  const config = readConfig(
    Reader.fromObject('(flowpin start)', {
      api: {
        host: typeof own['api-host'] === 'string' ? own['api-host'] : '127.0.0.1',
        port: own['api-port'] === undefined ? 8080 : Number(own['api-port']),
        token,
      },
      mirror: { udp: [{ host: scenario.mirror.host, port: scenario.mirror.port }] },
      pinMode: own['pin-mode'] ?? 'on-change',
      ...(stateFile === undefined ? {} : { stateFile }),
      switches: [
        {
          name: scenario.switch.hostname,
          adapter: 'arista-eapi',
          mirrorSources: [scenario.mirror.sourceAddress],
          pinTableSize: scenario.switch.pinCapacity,
          ...(scenario.mirror.replies ? { mirrorReplies: true } : {}),
          // What the simulated switch mirrors, as its operator would state it.
          mirrorEnds: scenario.switch.mirrorFinRst
            ? scenario.mirror.replies && scenario.mirror.replyFin && scenario.mirror.replyRst
              ? 'both-ways'
              : 'client-side'
            : 'syn-only',
          eapi: {
            url: eapi,
            username: scenario.eapi.username,
            password: scenario.eapi.password,
            groupTemplate: 'static-ecmp',
          },
          vips: scenario.vips.map((v) => ({ address: v.address, nexthops: [...v.nexthops] })),
        },
      ],
    }),
  );
  const logger = makeLogger();
  let served: Served;
  try {
    served = await serve(config, createAdapters(config), logger, { simulator: () => connections });
  } catch (err) {
    await stopChild(child, exited);
    throw err;
  }
  // The simulator's mirror session points at the receiver's bound port (the port may be 0); its traffic
  // starts then.
  const bound = served.controller.listening[0];
  if (bound === undefined) {
    await served.close();
    await stopChild(child, exited);
    throw new Error('the mirror receiver is not listening');
  }
  const started = new Promise<void>((resolve) =>
    child.on('message', (m: SimChildMessage) => m.type === 'started' && resolve()),
  );
  // The simulator's traffic starts now that flowpin watches (unless told to run before): no
  // connection of the demo's switch is older, and flowpin knows it.
  if (scenario.traffic.preexistingS === 0)
    served.controller.runtime(scenario.switch.hostname).watchLedger.noConnectionsBefore(Date.now());
  child.send({ type: 'go', mirrorPort: bound.port } satisfies SimParentMessage);
  await Promise.race([started, exited]);
  const sw = scenario.switch.hostname;
  const vip = scenario.vips[0];
  process.stdout.write(`flowpin: dashboard ${served.apiUrl}/\n`);
  process.stdout.write(
    `flowpin: API ${served.apiUrl} (token ${process.env['FLOWPIN_TOKEN'] === undefined ? `${token}; set FLOWPIN_TOKEN to choose it` : 'from FLOWPIN_TOKEN'})\n`,
  );
  process.stdout.write(`flowpin: mirror receiver on ${bound.encap} ${bound.address}:${bound.port}\n`);
  process.stdout.write(`flowpin: simulator (process ${child.pid ?? '?'}) ${ready.description}`);
  process.stdout.write(
    `  mirror   gre-in-udp to ${scenario.mirror.host}:${bound.port} (switch address ${scenario.mirror.sourceAddress})\n`,
  );
  if (vip !== undefined) {
    process.stdout.write(
      startHint(
        served.apiUrl,
        sw,
        vip.address,
        vip.nexthops[1] ?? vip.nexthops[0] ?? '',
        process.env['FLOWPIN_TOKEN'] === undefined ? token : undefined,
      ),
    );
  }
  const timer = setInterval(() => {
    const r = served.controller.readiness();
    const s = r.switches[0];
    process.stdout.write(
      `flowpin: connections active ${connections.active}, opened ${connections.opened}, reset ${connections.reset} | flows ${s?.flows ?? 0}, pins ${s?.pins.installed ?? 0}/${s?.pins.capacity ?? 0} | rss ${Math.round(r.memory.rssBytes / 1048576)} MB | ${r.ready ? 'ready' : `not ready: ${r.reasons.join('; ')}`}\n`,
    );
  }, 10_000);
  const why = await Promise.race([
    untilSignal(),
    exited.then(([code, signal]) => `the simulator exited (${signal ?? `code ${code ?? '?'}`})`),
  ]);
  clearInterval(timer);
  if (why.startsWith('SIG')) logger.info({ why }, 'stopping: saving state');
  else process.stderr.write(`flowpin: ${why}; stopping\n`);
  try {
    await served.close();
  } finally {
    lock?.release();
    await stopChild(child, exited);
  }
  // State is written: leave promptly even if a change's wait on a switch is still scheduled.
  setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref();
  return why.startsWith('SIG') ? 0 : 1;
}

/** The child's first word: where its endpoints are; its exit or silence first is an error. */
function childReady(
  child: ChildProcess,
  exited: Promise<[number | null, NodeJS.Signals | null]>,
): Promise<Extract<SimChildMessage, { type: 'ready' }>> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`the simulator did not come up within ${CHILD_START_MS / 1000} s`)),
      CHILD_START_MS,
    );
    child.on('message', (m: SimChildMessage) => {
      if (m.type !== 'ready') return;
      clearTimeout(t);
      resolve(m);
    });
    void exited.then(([code, signal]) => {
      clearTimeout(t);
      reject(
        new Error(
          `the simulator exited before it was up (${signal ?? `code ${code ?? '?'}`}); see its message above`,
        ),
      );
    });
  });
}

/** Asks the simulator to stop (SIGTERM), and ends it if it has not within a bound. */
async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), CHILD_STOP_MS);
  await exited;
  clearTimeout(t);
}

/**
 * The commands `flowpin start` suggests, working as pasted: the token itself when it was
 * generated (no FLOWPIN_TOKEN in the environment), `$FLOWPIN_TOKEN` when it came from there.
 */
export function startHint(
  apiUrl: string,
  sw: string,
  vip: string,
  nexthop: string,
  generatedToken: string | undefined,
): string {
  const bearer =
    generatedToken === undefined
      ? '"Authorization: Bearer $FLOWPIN_TOKEN"'
      : `'Authorization: Bearer ${generatedToken}'`;
  return `flowpin: try\n  curl -s ${apiUrl}/api/v1/switches/${sw}/vips\n  curl -s -X POST -H ${bearer} -H 'content-type: application/json' -d '{}' ${apiUrl}/api/v1/switches/${sw}/vips/${vip}/nexthops/${nexthop}/drain\n`;
}
