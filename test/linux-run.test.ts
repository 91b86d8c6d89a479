// `flowpin run` as an operator starts it against a Linux router (a lab router in network
// namespaces): what the configuration says reaches the kernel; and a run in the mirror
// collector's namespace, reading the router's VXLAN mirror on port 4789 as VXLAN, answering a
// drain over its API once the change is applied, with no connection broken.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LAB_VIP4, LAB_VIP6, LabTopology, MIRROR_COLLECTOR } from '../switch-adapters/linux/lab/topology.js';
import { LabTraffic } from '../switch-adapters/linux/lab/traffic.js';
import { withWarmTraffic } from '../cli/lab-controller.js';
import { until } from './helpers/demo.js';
import { proc, type Proc } from './helpers/processes.js';
import { flowpinBin, have, isRoot, skipUnless } from './helpers/tools.js';

const skip = skipUnless(isRoot() && have('nft', ['-v']) && have('ip', ['-V']), 'root with nft and ip');

test(
  'flowpin run gives every pin map and set of the router the configured pinIdleTimeoutS',
  { skip, timeout: 60_000 },
  async () => {
    const lab = await LabTopology.create({ prefix: 'fprun', mirror: false });
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-linux-run-'));
    let p: Proc | undefined;
    try {
      const config = path.join(dir, 'flowpin.yaml');
      writeFileSync(
        config,
        JSON.stringify({
          api: { host: '127.0.0.1', port: 0, token: 'linux-run-test' },
          mirror: { udp: [{ host: '127.0.0.1', port: 0 }] },
          stateFile: path.join(dir, 'state'),
          pinIdleTimeoutS: 20,
          switches: [
            {
              name: 'lab-router',
              adapter: 'linux',
              mirrorSources: ['192.0.2.1'],
              linux: { prefix: lab.routerPrefix, clientInterfaces: [lab.clientDev], probeTimeoutMs: 1000 },
              vips: [
                { address: LAB_VIP4, nexthops: lab.members4 },
                { address: LAB_VIP6, nexthops: lab.members6 },
              ],
            },
          ],
        }),
      );
      p = proc([flowpinBin, 'run', '--config', config]);
      const nft = (...what: string[]): string =>
        execFileSync('ip', ['netns', 'exec', lab.router, 'nft', 'list', ...what], {
          stdio: ['ignore', 'pipe', 'pipe'],
        }).toString();
      // The maps exist once the adapter has set up its table (before it checks hashing, which needs traffic).
      const pins4 = await until(
        () => {
          try {
            return nft('map', 'inet', 'flowpin', 'pins4');
          } catch {
            return undefined; // not made yet
          }
        },
        30_000,
        `the pin maps (flowpin output: ${p.out()})`,
      );
      assert.match(pins4, /^\s*timeout 20s$/m, pins4);
      // IPv6 pins idle by the timed set the packet path refreshes (pins6 holds them longer).
      assert.match(nft('set', 'inet', 'flowpin', 'seen6'), /^\s*timeout 20s$/m);
      const chain = nft('chain', 'inet', 'flowpin', 'pin');
      assert.match(chain, /update @pins4 \{ .* timeout 20s : meta mark \}/, chain);
    } finally {
      await p?.stop();
      lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

/** An HTTP request made from inside a namespace (flowpin's API listens there): status and body. */
function curlIn(
  ns: string,
  method: string,
  url: string,
  token: string,
  body?: unknown,
): { status: number; body: string } {
  const args = [
    'netns',
    'exec',
    ns,
    'curl',
    '-s',
    '-m',
    '60',
    '-o',
    '-',
    '-w',
    '\n%{http_code}',
    '-X',
    method,
    '-H',
    `Authorization: Bearer ${token}`,
  ];
  if (body !== undefined) args.push('-H', 'content-type: application/json', '-d', JSON.stringify(body));
  const out = execFileSync('ip', [...args, url], { timeout: 70_000 }).toString();
  const i = out.lastIndexOf('\n');
  return { status: Number(out.slice(i + 1)), body: out.slice(0, i) };
}

test(
  "flowpin run reads the router's VXLAN mirror as VXLAN and answers a drain once it is applied, breaking nothing",
  { skip, timeout: 120_000 },
  async () => {
    const lab = await LabTopology.create({ prefix: 'fprun' });
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-linux-run-'));
    const traffic = new LabTraffic(lab);
    const token = 'linux-run-operator';
    let p: Proc | undefined;
    try {
      const config = path.join(dir, 'flowpin.yaml');
      writeFileSync(
        config,
        JSON.stringify({
          api: { host: '127.0.0.1', port: 0, token },
          mirror: { udp: [{ host: MIRROR_COLLECTOR, port: 4789 }] },
          stateFile: path.join(dir, 'state'),
          switches: [
            {
              name: 'lab-router',
              adapter: 'linux',
              mirrorSources: ['192.0.2.1'],
              mirrorReplies: true,
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
      // In the collector's namespace, where the router's VXLAN frames arrive (192.0.2.2:4789).
      p = proc(
        ['netns', 'exec', lab.collector, process.execPath, flowpinBin, 'run', '--config', config],
        { FLOWPIN_LOG_LEVEL: 'info' },
        'ip',
      );
      const run = p;
      const api = await until(
        () => /API (http:\S+?),/.exec(run.out())?.[1],
        20_000,
        `flowpin run (output: ${run.out()})`,
      );
      assert.match(
        run.out(),
        new RegExp(`mirror receiver on VXLAN ${MIRROR_COLLECTOR.replace(/\./g, '\\.')}:4789`),
      );
      assert.match(run.out(), /"msg":"listening for VXLAN mirror frames"/);
      assert.doesNotMatch(run.out(), /GRE-in-UDP/);
      await withWarmTraffic(
        lab,
        until(
          () => curlIn(lab.collector, 'GET', `${api}/readyz`, token).status === 200 || undefined,
          60_000,
          'ready',
        ),
      );
      const opened = await traffic.open(lab, 40, 20, { stallMs: 3000 });
      assert.equal(opened.open4 + opened.open6, 60);
      const drained = lab.servers[1];
      assert.ok(drained);
      // The drain answers once the group change is applied (202 with the change record).
      const t0 = performance.now();
      const r = curlIn(
        lab.collector,
        'POST',
        `${api}/api/v1/switches/lab-router/vips/${LAB_VIP4}/nexthops/${drained.addr4}/drain`,
        token,
        { maxAtRisk: 'unbounded' },
      );
      const ms = Math.round(performance.now() - t0);
      assert.equal(r.status, 202, r.body);
      const change = JSON.parse(r.body) as {
        phase: string;
        appliedAt?: number;
        heldAt?: number;
        effectiveAt?: number;
        queuedAt: number;
      };
      assert.equal(change.phase, 'applied');
      process.stdout.write(
        `# drain over the API answered 202 in ${ms} ms (queued to held ${(change.heldAt ?? 0) - change.queuedAt} ms, to effective ${(change.effectiveAt ?? 0) - change.queuedAt} ms)\n`,
      );
      const closed = await traffic.close();
      assert.equal(closed.broken, 0, `broken: ${JSON.stringify(closed.reasons)}`);
    } finally {
      traffic.stop();
      await p?.stop();
      lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
