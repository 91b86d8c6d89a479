#!/usr/bin/env node
// flowpin command line: one entry, a subcommand per task. Each command's module is imported
// only when that command runs (the controller, fastify, gRPC and the simulator are large), so
// the operator commands, `--help` and shell completion start about as fast as bare Node
// (bench/cli.bench.ts measures it). `--help`/`-h` anywhere after a command prints its help.

import { commandHelp, commandNamed, overview } from './help.js';

const OPERATOR = new Set([
  'status',
  'drain',
  'undrain',
  'add',
  'remove',
  'flows',
  'pins',
  'changes',
  'change',
  'cancel',
  'reload',
]);

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    process.stderr.write(overview());
    return 2;
  }
  if (command === 'help' || command === '--help' || command === '-h') {
    const name = rest[0] === '--help' || rest[0] === '-h' ? 'help' : rest[0];
    const c = commandNamed(name);
    if (name !== undefined && c === undefined) {
      process.stderr.write(`flowpin help: unknown command '${name}'\n\n${overview()}`);
      return 2;
    }
    process.stdout.write(c === undefined ? overview() : commandHelp(c));
    return 0;
  }
  const help = commandNamed(command);
  if (help !== undefined && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(commandHelp(help));
    return 0;
  }
  if (OPERATOR.has(command)) return (await import('./ops.js')).opsCommand(command, rest);
  switch (command) {
    case 'decode':
      return (await import('./decode.js')).decodeCommand(rest);
    case 'receive':
      return (await import('./receive.js')).receiveCommand(rest);
    case 'start':
      return (await import('./start.js')).startCommand(rest);
    case 'run':
      return (await import('./run.js')).runCommand(rest);
    case 'sim':
      return (await import('./sim.js')).simCommand(rest);
    case 'scenario':
      return (await import('./scenario.js')).scenarioCommand(rest);
    case 'lab':
      return (await import('./lab.js')).labCommand(rest);
    case 'load':
      return (await import('../torture/load.js')).loadCommand(rest);
    case 'torture':
      return (await import('./torture.js')).tortureCommand(rest);
    case 'completion':
      return (await import('./completion.js')).completionCommand(rest);
    case '__complete':
      return (await import('./completion.js')).completeCommand(rest);
    default:
      process.stderr.write(`flowpin: unknown command '${command}'\n\n${overview()}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`flowpin: ${err instanceof Error ? err.message : String(err)}\n`);
    // ConfigError and StateError (lib/validate.ts, controller/state-store.ts), named so without importing
    // them.
    const name = err instanceof Error ? err.name : '';
    // State flowpin cannot read back as written: it starts only when the operator decides.
    if (name === 'StateError')
      process.stderr.write(
        'flowpin: the state was not changed. Mend or remove the file, or start with --discard-state to move the parts that cannot be read aside and start without them (a damaged change log: its changes are not resumed; a damaged flow snapshot or journal: its flows are forgotten)\n',
      );
    process.exitCode = name === 'ConfigError' || name === 'StateError' ? 2 : 1;
  },
);
