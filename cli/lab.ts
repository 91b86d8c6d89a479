// `flowpin lab` (root): a Linux router lab in network namespaces (clients, a router, four
// servers holding the VIPs on loopback with a TCP echo service, a spare), flowpin driving the
// router through the Linux adapter with live real TCP traffic, and the API on 127.0.0.1:8080.
// Everything is removed on exit; namespaces left by a crashed or killed run are removed at start.

import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { buildApp } from '../controller/api/app.js';
import { listen } from '../controller/api/listen.js';
import { readConfig } from '../controller/config.js';
import { Controller } from '../controller/controller.js';
import { Reader } from '../lib/validate.js';
import { createAdapters } from '../switch-adapters/registry.js';
import { cleanStale, LAB_VIP4, LAB_VIP6, LabTopology } from '../switch-adapters/linux/lab/topology.js';
import { LabTraffic } from '../switch-adapters/linux/lab/traffic.js';
import { makeLogger } from './serve.js';
import { untilSignal } from './sim.js';

export const LAB_PREFIX = 'fplab';

export async function labCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { 'api-port': { type: 'string' }, connections: { type: 'string' } },
  });
  if (process.getuid?.() !== 0) {
    process.stderr.write('flowpin lab: needs root (network namespaces, nftables)\n');
    return 1;
  }
  const removed = cleanStale(LAB_PREFIX);
  if (removed.length > 0)
    process.stdout.write(`flowpin lab: removed ${removed.length} namespaces of an earlier run\n`);
  const lab = await LabTopology.create({ prefix: LAB_PREFIX });
  const cleanup = (): void => lab.destroy();
  process.once('exit', cleanup);
  const token = process.env['FLOWPIN_TOKEN'] ?? randomBytes(12).toString('hex');
  const logger = makeLogger();
  const config = readConfig(
    Reader.fromObject('(flowpin lab)', {
      api: {
        host: '127.0.0.1',
        port: values['api-port'] === undefined ? 8080 : Number(values['api-port']),
        token,
      },
      settleMs: 300,
      resyncIntervalS: 1,
      switches: [
        {
          name: 'lab-router',
          adapter: 'linux',
          mirrorSources: ['192.0.2.1'],
          pinTableSize: 65535,
          mirrorReplies: true,
          // Both directions mirrored: the servers' replies name their server, and FINs both ways end a
          // connection.
          linux: {
            prefix: lab.routerPrefix,
            clientInterfaces: [lab.clientDev],
            serverInterfaces: lab.serverDevs,
            mirrorDevice: lab.mirrorDev,
          },
          vips: [
            { address: LAB_VIP4, nexthops: lab.members4 },
            { address: LAB_VIP6, nexthops: lab.members6 },
          ],
        },
      ],
    }),
  );
  const controller = new Controller({ config, adapters: createAdapters(config), logger, listen: false });
  const traffic = new LabTraffic(lab);
  try {
    await controller.receiver.listenVxlan({ socket: await lab.collectorSocket() });
    await controller.start();
    const app = await buildApp({ controller, token: config.api.token, logger });
    const url = await listen(app, config.api.host, config.api.port);
    // Hashing is checked on SYNs the router forwards: open connections until the adapter is up
    // (then close them: flowpin did not track them while it was not connected).
    const n = Number(values.connections ?? '200');
    const warm = new LabTraffic(lab);
    for (let i = 0; i < 100 && !controller.readiness().ready; i++) {
      await warm.open(lab, 2, 2);
      await new Promise((r) => setTimeout(r, 300));
    }
    warm.stop();
    await traffic.open(lab, Math.ceil((n * 2) / 3), Math.floor(n / 3));
    const s = lab.servers;
    process.stdout.write(
      `flowpin lab: router ${lab.router}, VIPs ${LAB_VIP4} and ${LAB_VIP6} port 7007, servers ${s.map((x) => x.addr4).join(' ')} (last is the spare)\n`,
    );
    process.stdout.write(
      `flowpin lab: API ${url} (token ${process.env['FLOWPIN_TOKEN'] === undefined ? token : 'from FLOWPIN_TOKEN'})\n`,
    );
    process.stdout.write(
      `flowpin lab: try\n  curl -s -X POST -H "Authorization: Bearer ${token}" -H 'content-type: application/json' -d '{}' ${url}/api/v1/switches/lab-router/vips/${LAB_VIP4}/nexthops/${s[1]?.addr4}/drain\n  curl -s -X POST -H "Authorization: Bearer ${token}" -H 'content-type: application/json' -d '{"address":"${s[4]?.addr4}"}' ${url}/api/v1/switches/lab-router/vips/${LAB_VIP4}/nexthops\n`,
    );
    const timer = setInterval(() => {
      void traffic.report().then(
        (r) => {
          const st = controller.readiness().switches[0];
          process.stdout.write(
            `flowpin lab: connections open ${r.open4 + r.open6}, broken ${r.broken} | flows ${st?.flows ?? 0}, pins ${st?.pins.installed ?? 0} | ${controller.readiness().ready ? 'ready' : `not ready: ${st?.lastError ?? ''}`}\n`,
          );
        },
        () => undefined,
      );
    }, 10_000);
    await untilSignal();
    clearInterval(timer);
    await app.close();
  } finally {
    traffic.stop();
    await controller.stop();
    lab.destroy();
  }
  return 0;
}
