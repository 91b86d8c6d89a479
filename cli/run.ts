// `flowpin run --config FILE`: flowpin against the switches of a configuration file. SIGHUP
// reads the file again and applies it whole or not at all (as `flowpin reload` does).

import { parseArgs } from 'node:util';
import { loadConfig } from '../controller/config.js';
import { discardState } from '../controller/state-store.js';
import { lockStateFile } from '../controller/state-lock.js';
import { createAdapters } from '../switch-adapters/registry.js';
import { securityWarnings } from './security-warnings.js';
import { makeLogger, serve, type Served } from './serve.js';
import { untilSignal } from './sim.js';

export async function runCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, 'discard-state': { type: 'boolean' } },
  });
  if (values.config === undefined) {
    process.stderr.write('usage: flowpin run --config FILE   (see docs/flowpin.example.yaml)\n');
    return 2;
  }
  const config = loadConfig(values.config);
  // One flowpin per state file, checked before any adapter exists (nothing has touched a switch yet).
  const lock = config.stateFile === undefined ? undefined : lockStateFile(config.stateFile);
  const adapters = createAdapters(config);
  const logger = makeLogger();
  if (values['discard-state'] === true && config.stateFile !== undefined) {
    const d = discardState(config.stateFile);
    if (d.moved.length === 0)
      logger.info(
        { stateFile: config.stateFile },
        '--discard-state: every state file reads; nothing moved aside',
      );
    else
      logger.warn(
        { moved: d.moved, why: d.reasons },
        'state discarded (--discard-state): the parts that cannot be read moved aside, flowpin starts without them',
      );
  }
  for (const warning of securityWarnings(config, values.config))
    logger.warn({ warning }, 'configuration weakens security');
  // SIGHUP reloads the configuration (its default would end the process): from the first moment, so an early
  // one is not fatal.
  const up: { served?: Served } = {};
  const onHup = (): void => {
    const reload = up.served?.reload;
    if (reload === undefined) {
      logger.warn('SIGHUP before flowpin is up: nothing reloaded (send it again once the API listens)');
      return;
    }
    reload().catch((err: unknown) =>
      logger.error(
        { err: err instanceof Error ? err.message : String(err) },
        'configuration not reloaded: the running configuration stays',
      ),
    );
  };
  process.on('SIGHUP', onHup);
  const served = await serve(config, adapters, logger, undefined, values.config);
  up.served = served;
  process.stdout.write(
    `flowpin: API ${served.apiUrl}, ${config.switches.length} switch(es), pin mode ${config.pinMode}\n`,
  );
  for (const b of served.controller.listening)
    process.stdout.write(`flowpin: mirror receiver on ${b.encap} ${b.address}:${b.port}\n`);
  const signal = await untilSignal();
  process.off('SIGHUP', onHup);
  const t0 = performance.now();
  logger.info({ signal }, 'stopping: saving state');
  await served.close();
  lock?.release();
  logger.info(
    { ms: Math.round(performance.now() - t0) },
    'stopped: state written, pins left on the switches',
  );
  // State is written: leave promptly even if a change's wait on a switch is still scheduled.
  setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref();
  return 0;
}
