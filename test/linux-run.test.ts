// `flowpin run` as an operator starts it against a Linux router (a lab router in network
// namespaces, no traffic needed): what the configuration says reaches the kernel.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LAB_VIP4, LAB_VIP6, LabTopology } from '../switch-adapters/linux/lab/topology.js';
import { until } from './helpers/demo.js';
import { proc, type Proc } from './helpers/processes.js';
import { flowpinBin, have, isRoot, skipUnless } from './helpers/tools.js';

const skip = skipUnless(isRoot() && have('nft', ['-v']) && have('ip', ['-V']), 'root with nft and ip');

test('flowpin run gives every pin map and set of the router the configured pinIdleTimeoutS', { skip, timeout: 60_000 }, async () => {
  const lab = await LabTopology.create({ prefix: 'fprun', mirror: false });
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-linux-run-'));
  let p: Proc | undefined;
  try {
    const config = path.join(dir, 'flowpin.yaml');
    writeFileSync(config, JSON.stringify({
      api: { host: '127.0.0.1', port: 0, token: 'linux-run-test' },
      mirror: { udp: [{ host: '127.0.0.1', port: 0 }] },
      stateFile: path.join(dir, 'state'),
      pinIdleTimeoutS: 20,
      switches: [{
        name: 'lab-router', adapter: 'linux', mirrorSources: ['192.0.2.1'],
        linux: { prefix: lab.routerPrefix, clientInterfaces: [lab.clientDev], probeTimeoutMs: 1000 },
        vips: [{ address: LAB_VIP4, nexthops: lab.members4 }, { address: LAB_VIP6, nexthops: lab.members6 }],
      }],
    }));
    p = proc([flowpinBin, 'run', '--config', config]);
    const nft = (...what: string[]): string => execFileSync('ip', ['netns', 'exec', lab.router, 'nft', 'list', ...what]).toString();
    // The maps exist once the adapter has set up its table (before it checks hashing, which needs traffic).
    const pins4 = await until(() => {
      try {
        return nft('map', 'inet', 'flowpin', 'pins4');
      } catch {
        return undefined; // not made yet
      }
    }, 30_000, `the pin maps (flowpin output: ${p.out()})`);
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
});
