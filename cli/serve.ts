// Runs a controller with its API until SIGINT/SIGTERM, then persists state and stops:
// the shared core of `flowpin run` (a configuration file, real switches) and
// `flowpin start` (the built-in simulator).

import pino, { type Logger } from 'pino';
import { buildApp, type AppDeps } from '../controller/api/app.js';
import { listen } from '../controller/api/listen.js';
import type { FlowpinConfig } from '../controller/config.js';
import { Controller } from '../controller/controller.js';
import type { SwitchAdapter } from '../switch-adapters/contract.js';

export interface Served {
  controller: Controller;
  apiUrl: string;
  logger: Logger;
  close(): Promise<void>;
}

export function makeLogger(): Logger {
  return pino({ level: process.env['FLOWPIN_LOG_LEVEL'] ?? 'info', base: undefined }, pino.destination(2));
}

export async function serve(config: FlowpinConfig, adapters: ReadonlyMap<string, SwitchAdapter>, logger: Logger, app?: Pick<AppDeps, 'simulator'>): Promise<Served> {
  const controller = new Controller({ config, adapters, logger });
  await controller.start();
  for (const w of config.warnings) logger.warn(w);
  const api = await buildApp({ controller, token: config.api.token, auth: config.api, logger, ...app });
  let apiUrl: string;
  try {
    apiUrl = await listen(api, config.api.host, config.api.port);
  } catch (err) {
    await controller.stop();
    throw err;
  }
  logger.info({ url: apiUrl }, 'API listening');
  return {
    controller,
    apiUrl,
    logger,
    async close() {
      await api.close();
      await controller.stop();
    },
  };
}
