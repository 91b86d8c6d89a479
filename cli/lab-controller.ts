// The Linux router lab with flowpin's controller driving its router through the Linux adapter
// (mirror frames read from the lab's collector socket), the adapter alone, and traffic that
// keeps the router's hash check fed while something connects: shared by the Linux router
// tests and benchmark.

import pino from 'pino';
import { Controller } from '../controller/controller.js';
import { readConfig } from '../controller/config.js';
import { Reader } from '../lib/validate.js';
import { createAdapters } from '../switch-adapters/registry.js';
import { LinuxRouterAdapter } from '../switch-adapters/linux/adapter.js';
import { LAB_VIP4, LAB_VIP6, type LabTopology } from '../switch-adapters/linux/lab/topology.js';
import { LabTraffic } from '../switch-adapters/linux/lab/traffic.js';

export const SWITCH = 'lab-router';

/** The adapter for a lab router, without a controller. */
export function labAdapter(
  lab: LabTopology,
  extra: { probeTimeoutMs?: number; pinTableSize?: number } = {},
): LinuxRouterAdapter {
  return new LinuxRouterAdapter({
    switchName: SWITCH,
    prefix: lab.routerPrefix,
    vips: [
      { address: LAB_VIP4, nexthops: lab.members4 },
      { address: LAB_VIP6, nexthops: lab.members6 },
    ],
    clientInterfaces: [lab.clientDev],
    ...(lab.options.mirror === false ? {} : { mirrorDevice: lab.mirrorDev }),
    probeTimeoutMs: extra.probeTimeoutMs ?? 20_000,
    ...(extra.pinTableSize === undefined ? {} : { pinTableSize: extra.pinTableSize }),
  });
}

export interface LabControllerOptions {
  pinMode?: 'on-change' | 'always';
  pinIdleTimeoutS?: number;
  /** The router also mirrors the servers' SYN-ACK, FIN and RST (serverInterfaces, mirrorReplies). */
  replies?: boolean;
  /** Where saved state goes (none: kept in memory). */
  stateFile?: string;
  /** Where the controller logs (silent unless given). */
  logger?: pino.Logger;
  /** Pins listed (and forwarded SYNs checked) this often (0.5 s unless given). */
  resyncIntervalS?: number;
}

/** A controller for the lab router, built from a configuration document like `flowpin run` reads. */
export async function labController(lab: LabTopology, o: LabControllerOptions = {}): Promise<Controller> {
  const config = readConfig(
    Reader.fromObject('(linux lab)', {
      api: { port: 0 },
      pinMode: o.pinMode ?? 'on-change',
      settleMs: 300,
      resyncIntervalS: o.resyncIntervalS ?? 0.5,
      pinIdleTimeoutS: o.pinIdleTimeoutS ?? 300,
      ...(o.stateFile === undefined ? {} : { stateFile: o.stateFile, persistIntervalS: 0.5 }),
      switches: [
        {
          name: SWITCH,
          adapter: 'linux',
          mirrorSources: ['192.0.2.1'],
          pinTableSize: 65535,
          ...(o.replies === true ? { mirrorReplies: true } : {}),
          // The lab's connections are all younger than the lab: none unseen before flowpin watched.
          connectionsSince: lab.createdAt,
          linux: {
            prefix: lab.routerPrefix,
            clientInterfaces: [lab.clientDev],
            ...(o.replies === true ? { serverInterfaces: lab.serverDevs } : {}),
            mirrorDevice: lab.mirrorDev,
            probeTimeoutMs: 5000,
          },
          vips: [
            { address: LAB_VIP4, nexthops: lab.members4 },
            { address: LAB_VIP6, nexthops: lab.members6 },
          ],
        },
      ],
    }),
  );
  const adapters = createAdapters(config);
  const controller = new Controller({
    config,
    adapters,
    logger: o.logger ?? pino({ level: 'silent' }),
    listen: false,
  });
  await controller.receiver.listenVxlan({ socket: await lab.collectorSocket() });
  await controller.start();
  return controller;
}

/**
 * Opens a few connections every 300 ms until `work` settles: the adapter checks hashing on
 * SYNs the router really forwards, so connecting needs some.
 */
export async function withWarmTraffic<T>(lab: LabTopology, work: Promise<T>): Promise<T> {
  const warm = new LabTraffic(lab);
  let done = false;
  const loop = (async () => {
    for (let i = 0; i < 200 && !done; i++) {
      await warm.open(lab, 2, 2).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  try {
    return await work;
  } finally {
    done = true;
    await loop;
    warm.stop();
  }
}
