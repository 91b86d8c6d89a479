// Server identities as each adapter reads them from its switch: eAPI from the ARP/ND tables
// (served by the simulator's eAPI endpoint), gNMI from the OpenConfig neighbour tables (the
// simulator's gNMI target), Linux from `ip -j neigh show` (a capture of real
// iproute2 output), the simulator from its attachments.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { AristaEapiAdapter } from '../switch-adapters/arista-eapi/adapter.js';
import { GnmiAdapter } from '../switch-adapters/gnmi/adapter.js';
import { GnmiServer } from '../switch-sim/gnmi/server.js';
import { parseNeighbours } from '../switch-adapters/linux/iproute.js';
import { SimAdapter } from '../switch-adapters/sim/adapter.js';
import { EapiServer } from '../switch-sim/eapi/server.js';
import { testSwitch, NEXTHOPS } from './helpers/sim.js';

describe('server identities from the switch', () => {
  test(
    'eAPI: every server nexthop with the MAC the switch learnt (show ip arp)',
    { timeout: 20_000 },
    async () => {
      const { sw } = testSwitch();
      const server = new EapiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 'pw' });
      const { url } = await server.start();
      const a = new AristaEapiAdapter({ switchName: 'sw1', url, username: 'admin', password: 'pw' });
      try {
        const ids = await a.serverIdentities();
        for (const nh of NEXTHOPS) {
          const id = ids.find((i) => i.nexthop === nh);
          assert.ok(id, `${nh} missing from ${JSON.stringify(ids)}`);
          assert.equal(id.mac, sw.attachments.get(nh)?.mac);
        }
        // A MAC that changes on the switch is read again (nothing cached).
        sw.setServerMac(NEXTHOPS[0] as string, '02:aa:bb:cc:dd:01');
        assert.equal(
          (await a.serverIdentities()).find((i) => i.nexthop === NEXTHOPS[0])?.mac,
          '02:aa:bb:cc:dd:01',
        );
      } finally {
        await a.close();
        await server.stop();
      }
    },
  );

  test(
    'gNMI: every server nexthop with its link-layer-address from the openconfig-if-ip neighbour state',
    { timeout: 20_000 },
    async () => {
      const { sw } = testSwitch();
      const server = new GnmiServer(sw, {
        host: '127.0.0.1',
        port: 0,
        username: 'admin',
        password: 'pw',
        minSampleMs: 10,
      });
      const { address } = await server.start();
      const a = new GnmiAdapter({
        switchName: 'sw1',
        address,
        insecure: true,
        username: 'admin',
        password: 'pw',
        ingressInterfaces: ['Ethernet47'],
        sampleIntervalMs: 30,
        timeoutMs: 1000,
      });
      try {
        const ids = await a.serverIdentities();
        for (const nh of NEXTHOPS) {
          const id = ids.find((i) => i.nexthop === nh);
          assert.ok(id, `${nh} missing from ${JSON.stringify(ids)}`);
          assert.equal(id.mac, sw.attachments.get(nh)?.mac);
          assert.equal(id.interface, sw.attachments.get(nh)?.via);
        }
        sw.setServerMac(NEXTHOPS[1] as string, '02:aa:bb:cc:dd:02');
        assert.equal(
          (await a.serverIdentities()).find((i) => i.nexthop === NEXTHOPS[1])?.mac,
          '02:aa:bb:cc:dd:02',
        );
      } finally {
        await a.close();
        await server.stop();
      }
    },
  );

  test(
    'Linux: ip -j neigh show entries with a link-layer address; FAILED and INCOMPLETE ones left out',
    { timeout: 10_000 },
    () => {
      // iproute2 6.1 on Debian 12, `ip -j neigh show` (one entry added for the INCOMPLETE state).
      const doc: unknown = JSON.parse(
        '[{"dst":"192.0.2.1","dev":"eth0","lladdr":"02:fc:00:00:00:05","state":["REACHABLE"]},{"dst":"fd00::1","dev":"eth0","state":["FAILED"]},{"dst":"10.0.1.9","dev":"veth3","state":["INCOMPLETE"]},{"dst":"10.0.1.2","dev":"veth2","lladdr":"02:AA:00:00:00:02","state":["STALE"]}]',
      );
      assert.deepEqual(parseNeighbours(doc), [
        { address: '192.0.2.1', dev: 'eth0', mac: '02:fc:00:00:00:05' },
        { address: '10.0.1.2', dev: 'veth2', mac: '02:aa:00:00:00:02' },
      ]);
      assert.throws(() => parseNeighbours({}), /not a JSON array/);
    },
  );

  test(
    'simulator: MACs of every server, port indexes only for servers alone on a port',
    { timeout: 10_000 },
    async () => {
      const { sw } = testSwitch();
      sw.addPortChannel('Port-Channel10', ['Ethernet20', 'Ethernet21']);
      sw.attachServer('10.0.1.7', { via: 'Vlan10', vlan: 10, l2: 'Port-Channel10' });
      sw.attachServer('10.0.1.8', { via: 'Vlan10', vlan: 10, l2: 'Port-Channel10' });
      const ids = await new SimAdapter(sw).serverIdentities();
      const one = ids.find((i) => i.nexthop === NEXTHOPS[0]);
      assert.ok(one?.portIndex !== undefined && one.mac === sw.attachments.get(NEXTHOPS[0] as string)?.mac);
      for (const shared of ['10.0.1.7', '10.0.1.8']) {
        const id = ids.find((i) => i.nexthop === shared);
        assert.ok(id !== undefined && id.mac !== undefined);
        assert.equal(id.portIndex, undefined, 'a port-channel shared by servers names none of them');
      }
    },
  );
});
