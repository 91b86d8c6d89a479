#!/usr/bin/env node
// flowpin command line: one entry, a subcommand per task.

import { decodeCommand } from './decode.js';
import { receiveCommand } from './receive.js';
import { SCENARIO_USAGE, scenarioCommand } from './scenario.js';
import { SIM_USAGE, simCommand } from './sim.js';
import { startCommand } from './start.js';
import { runCommand } from './run.js';
import { labCommand } from './lab.js';
import { OPS_USAGE, opsCommand } from './ops.js';
import { ConfigError } from '../controller/validate.js';

const USAGE = `usage: flowpin <command> [options]

commands:
  start [--api-host H] [--api-port N] [--pin-mode on-change|always] [--state-file F] [sim options]
                     flowpin with the built-in switch simulator and live traffic
  run --config FILE  flowpin against the switches of a configuration file
  lab [--api-port N] [--connections N]
                     (root) a Linux router in network namespaces, driven by flowpin, live TCP
  sim [options]      run the switch simulator alone (eAPI, gNMI, counters, mirror)
  receive [--host H] [--port P] [--raw]
                     listen for mirrored frames and print decoded TCP segments
  decode FILE|-      decode a pcap of mirrored frames, one JSON line per TCP segment
  scenario [options] one traffic pattern, a drain and an add, against the switch alone,
                     the prototype and flowpin's pin modes, on a virtual clock
  help               this text

${OPS_USAGE}

${SIM_USAGE}

${SCENARIO_USAGE}
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'decode':
      return decodeCommand(rest);
    case 'receive':
      return receiveCommand(rest);
    case 'start':
      return startCommand(rest);
    case 'run':
      return runCommand(rest);
    case 'sim':
      return simCommand(rest);
    case 'scenario':
      return scenarioCommand(rest);
    case 'lab':
      return labCommand(rest);
    case 'status':
    case 'drain':
    case 'undrain':
    case 'add':
    case 'remove':
    case 'flows':
    case 'pins':
    case 'changes':
      return opsCommand(command, rest);
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(command === undefined ? USAGE : `flowpin: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`flowpin: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = err instanceof ConfigError ? 2 : 1;
  },
);
