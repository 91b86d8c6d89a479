// Runs a controller with its API until SIGINT/SIGTERM, then persists state and stops:
// the shared core of `flowpin run` (a configuration file, real switches) and
// `flowpin start` (the built-in simulator). With a configuration file, `reload` reads it again
// and applies it whole or not at all (controller/reload.ts), one reload at a time; the API's
// tokens are the running configuration's.

import pino, { type Logger } from 'pino';
import { buildApp, type AppDeps } from '../controller/api/app.js';
import { listen } from '../controller/api/listen.js';
import type { ReloadAnswer } from '../controller/api/reload.js';
import { loadConfig, type FlowpinConfig } from '../controller/config.js';
import { Controller, type ControllerDeps } from '../controller/controller.js';
import { HaCoordinator } from '../controller/ha/coordinator.js';
import { HaStateStore } from '../controller/ha/state-store.js';
import { HaTakeover, type HaTakeoverOptions } from '../controller/ha/takeover.js';
import { FileStateStore } from '../controller/state-store.js';
import { applyReload } from '../controller/reload.js';
import { SerialQueue } from '../lib/serial-queue.js';
import { ConfigError } from '../lib/validate.js';
import { securityWarnings } from './security-warnings.js';
import { createAdapter } from '../switch-adapters/registry.js';
import type { SwitchAdapter } from '../switch-adapters/contract.js';

export interface Served {
  controller: Controller;
  apiUrl: string;
  logger: Logger;
  /** Reads the configuration file again and applies it (undefined without a file: flowpin start). */
  reload: (() => Promise<ReloadAnswer>) | undefined;
  close(): Promise<void>;
}

export function makeLogger(): Logger {
  return pino({ level: process.env['FLOWPIN_LOG_LEVEL'] ?? 'info', base: undefined }, pino.destination(2));
}

/**
 * Fault injection for the torture runner and crash tests: with FLOWPIN_CRASH_AT=<point> in the
 * environment, the process kills itself (SIGKILL: no handler runs, nothing more is written) the
 * first time a change reaches that point of its protocol (changes.ts, ProtocolPoint). `sent`
 * dies once the group write's request has left (on the next turn of the event loop).
 */
function crashAt(logger: Logger): ControllerDeps['onChangePoint'] {
  const at = process.env['FLOWPIN_CRASH_AT'];
  if (at === undefined || at === '') return undefined;
  logger.warn(
    { point: at },
    'FLOWPIN_CRASH_AT is set: this process kills itself when a change reaches that point (fault injection)',
  );
  let done = false;
  return (rec, point) => {
    if (done || point !== at) return;
    done = true;
    logger.warn({ change: rec.id, point }, 'fault injection: killing this process');
    const die = (): void => void process.kill(process.pid, 'SIGKILL');
    if (point === 'sent') setImmediate(die);
    else die();
  };
}

/**
 * Fault injection for the high-availability tests (FLOWPIN_HA_BREAK): each puts back a defect
 * the takeover guards against, so that a test can show it fails without the guard.
 */
function haBreakage(logger: Logger): HaTakeoverOptions {
  const b = process.env['FLOWPIN_HA_BREAK'];
  if (b !== 'no-audit' && b !== 'no-takeover-fence' && b !== 'write-after-lost' && b !== 'no-resume')
    return {};
  logger.warn({ breakage: b }, 'FLOWPIN_HA_BREAK is set: a takeover guard is off (fault injection)');
  return { breakage: b };
}

/**
 * `reloadFrom`: the configuration file, read again by `reload` (and the adapters of switches it
 * adds made as at start).
 */
export async function serve(
  config: FlowpinConfig,
  adapters: ReadonlyMap<string, SwitchAdapter>,
  logger: Logger,
  app?: Pick<AppDeps, 'simulator'>,
  reloadFrom?: string,
): Promise<Served> {
  const onChangePoint = crashAt(logger);
  // With `ha:`, the change log lives in etcd (fenced by owner and epoch) and the tracked flows in
  // the local state file; the coordinator starts once the controller listens to the mirror.
  let coordinator: HaCoordinator | undefined;
  let store: HaStateStore | undefined;
  const box: { controller?: Controller } = {};
  if (config.ha !== undefined) {
    if (config.stateFile === undefined)
      throw new Error(
        'ha: needs stateFile: the tracked flows stay in local files, the change log goes to etcd',
      );
    coordinator = new HaCoordinator(config.ha, {
      switches: config.switches.map((s) => s.name),
      // A switch changes hands only when none of its changes is in a final phase yet.
      inFlight: (sw) => (box.controller?.changeManager(sw).active().length ?? 0) > 0,
    });
    store = new HaStateStore(coordinator, new FileStateStore(config.stateFile));
  }
  // pinIdleTimeoutS is read at start only: a reload cannot change it.
  const controller: Controller = new Controller({
    config,
    adapters,
    logger,
    ...(store === undefined ? {} : { store }),
    ...(onChangePoint === undefined ? {} : { onChangePoint }),
    ...(reloadFrom === undefined
      ? {}
      : {
          createAdapter: (s): SwitchAdapter => createAdapter(s, { pinIdleTimeoutS: config.pinIdleTimeoutS }),
        }),
  });
  box.controller = controller;
  const ha =
    coordinator === undefined
      ? undefined
      : new HaTakeover(controller, coordinator, logger, haBreakage(logger));
  ha?.attach();
  await controller.start();
  await ha?.start();
  for (const w of config.warnings) logger.warn(w);
  const reloads = new SerialQueue();
  const reload =
    reloadFrom === undefined
      ? undefined
      : (): Promise<ReloadAnswer> =>
          reloads.run(async () => {
            const next = loadConfig(reloadFrom);
            // Under `ha:` the coordinator owns the switches the process started with: a switch added
            // by a reload would be written without an owner's fence. Restart each instance instead.
            if (config.ha !== undefined) {
              const names = (c: FlowpinConfig): string =>
                c.switches
                  .map((x) => x.name)
                  .sort()
                  .join();
              if (names(next) !== names(controller.config) || next.ha === undefined)
                throw new ConfigError(
                  reloadFrom,
                  next.ha === undefined ? 'ha' : 'switches',
                  'under ha: a reload cannot add or remove switches, nor leave ha: (restart each instance instead)',
                );
            }
            const changed = await applyReload(controller, next);
            for (const w of next.warnings) logger.warn(w);
            for (const warning of securityWarnings(next, reloadFrom))
              logger.warn({ warning }, 'configuration weakens security');
            logger.info(
              { file: reloadFrom, changed },
              changed.length === 0 ? 'configuration reloaded: nothing changed' : 'configuration reloaded',
            );
            return { file: reloadFrom, changed };
          });
  const api = await buildApp({
    controller,
    token: config.api.token,
    auth: config.api,
    authSource: () => controller.config.api,
    logger,
    ...app,
    ...(reload === undefined ? {} : { reload }),
  });
  let apiUrl: string;
  try {
    apiUrl = await listen(api, config.api.host, config.api.port);
  } catch (err) {
    await controller.stop();
    await ha?.stop();
    throw err;
  }
  logger.info({ url: apiUrl }, 'API listening');
  return {
    controller,
    apiUrl,
    logger,
    reload,
    async close() {
      await api.close();
      // Its change records written while it still owns its switches; then the lease revoked, so
      // the others take them at once.
      await controller.stop();
      await ha?.stop();
    },
  };
}
