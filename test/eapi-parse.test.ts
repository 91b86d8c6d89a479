// The eAPI adapter's readers on real EOS captures (test/fixtures/README.md names the sources):
// DirectFlow state in JSON and text, routes, ARP, the port -> nexthop map, platforms, and the
// group templates' wire text.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  flowState,
  mergeDirectflow,
  notProgrammedReason,
  parseDirectflowJson,
  parseDirectflowText,
} from '../switch-adapters/arista-eapi/directflow-state.js';
import {
  egressMap,
  parseMacTable,
  parseNeighbors,
  parseOutputInterface,
  parsePortChannels,
  parseRoutes,
} from '../switch-adapters/arista-eapi/topology.js';
import { platformOf } from '../switch-adapters/arista-eapi/platforms.js';
import { bgpRouteMap, fillTemplate, STATIC_ECMP } from '../switch-adapters/arista-eapi/templates.js';
import { pinCommands } from '../switch-adapters/arista-eapi/directflow.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../../test/fixtures/eos/${name}`, import.meta.url), 'utf8');
/** The DirectFlowAssist capture starts with the CLI prompt; the JSON follows it. */
const dfaJson = (): unknown => {
  const t = fixture('dfa-show-directflow-detail.txt');
  return JSON.parse(t.slice(t.indexOf('{')));
};

describe('show directflow detail (real captures)', () => {
  test('JSON of EOS 4.14/4.15 (DirectFlowAssist): status prose, counters, numFlowsProgrammed', () => {
    const j = parseDirectflowJson(dfaJson());
    assert.equal(j.flows.size, 7);
    assert.equal(j.numFlowsProgrammed, 7);
    assert.ok([...j.status.values()].every((s) => s === 'Flow programmed'));
    const f = j.flows.get('STATIC_THRU_FIREWALL__in:Po40_Po60__out:Po20');
    assert.deepEqual(
      [f?.packets, f?.bytes, f?.idleTimeoutS, f?.persistent, f?.status],
      [5817848, 960767986, 0, true, 'Flow programmed'],
    );
    const merged = mergeDirectflow(j, parseDirectflowText(''));
    assert.equal(merged.programmed, 7);
    assert.equal(merged.rejected, 0);
    const bypass = merged.flows.get(
      'BYPASS_FW_web-brows_TCP_172-22-28-42:80_10-95-1-144:65298_May29_14:10:11_RSP',
    );
    assert.deepEqual(bypass?.state, { programmed: true });
    assert.equal(bypass?.nexthop, undefined, 'the JSON carries no nexthop');
  });

  test('text of EOS 4.35 (ANTA): a flow waiting for resources is rejected though the JSON omits it', () => {
    const t = parseDirectflowText(fixture('anta-sa142-show-directflow-detail-4.35.txt'));
    const f = t.flows.get('redirect');
    assert.deepEqual([f?.annotation, f?.nexthop], ['Waiting for a resource to be allocated', '192.0.2.1']);
    assert.deepEqual([t.programmed, t.rejected], [0, 1]);
    // 4.35.4M: the JSON has neither the flow nor its status.
    const merged = mergeDirectflow(
      parseDirectflowJson({ details: { status: {}, numFlowsProgrammed: 0 }, flows: [] }),
      t,
    );
    const m = merged.flows.get('redirect');
    assert.deepEqual(m?.state, { programmed: false, why: 'rejected' });
    assert.equal(notProgrammedReason('rejected', 0, 300), 'table-full');
    assert.equal(merged.rejected, 1);
    assert.deepEqual(parseDirectflowText('Flows: 0 programmed, 0 rejected\n'), {
      flows: new Map(),
      programmed: 0,
      rejected: 0,
    });
  });

  test('flow names with colons are read from text headers', () => {
    const t = parseDirectflowText(
      'Flow BYPASS_TCP_10-95-1-144:65298_May29_14:10:11_INI:\n  actions:\n    output nexthop: 34.34.34.4\n  matched: 5 packets, 367 bytes\n',
    );
    const f = t.flows.get('BYPASS_TCP_10-95-1-144:65298_May29_14:10:11_INI');
    assert.deepEqual([f?.annotation, f?.nexthop, f?.packets, f?.bytes], [undefined, '34.34.34.4', 5, 367]);
  });

  test('statuses: only "Flow programmed" without a contrary annotation counts as programmed', () => {
    assert.deepEqual(flowState('Flow programmed', undefined), { programmed: true });
    assert.deepEqual(flowState('Flow not programmed', undefined), {
      programmed: false,
      why: 'not-programmed',
    });
    assert.deepEqual(flowState('Flow rejected due to insufficient resources', undefined), {
      programmed: false,
      why: 'rejected',
    });
    assert.deepEqual(flowState('Flow programmed', 'Waiting for a resource to be allocated'), {
      programmed: false,
      why: 'rejected',
    });
    assert.deepEqual(flowState('Flow programmed', 'Something else'), { programmed: false, why: 'unknown' });
    assert.deepEqual(flowState('Flow partially programmed', undefined), {
      programmed: false,
      why: 'unknown',
    });
    assert.deepEqual(flowState(undefined, undefined), { programmed: false, why: 'unknown' });
    assert.equal(
      notProgrammedReason('not-programmed', 1_000, 300),
      'pending',
      'written 1 s ago, idle timeout 300 s: cannot have expired',
    );
    assert.equal(notProgrammedReason('not-programmed', 301_000, 300), 'idle-timeout');
    assert.equal(
      notProgrammedReason('not-programmed', undefined, 300),
      'idle-timeout',
      'not written by this process',
    );
    assert.equal(notProgrammedReason('unknown', 0, 300), 'unknown');
  });
});

describe('routes, neighbours and the port -> nexthop map', () => {
  test('show ip route (NAPALM, batfish): eBGP via a port-channel, ECMP vias, connected without nexthop', () => {
    assert.deepEqual(parseRoutes(JSON.parse(fixture('napalm-show-ip-route-bgp.json'))), [
      {
        prefix: '1.0.4.0/24',
        routeType: 'eBGP',
        vias: [{ interface: 'Port-Channel1', nexthopAddr: '192.168.0.1' }],
      },
    ]);
    const [ecmp, connected] = parseRoutes(JSON.parse(fixture('batfish-show-ip-route-ecmp-connected.json')));
    assert.deepEqual(ecmp?.vias, [
      { interface: 'Ethernet1', nexthopAddr: '172.31.255.0' },
      { interface: 'Ethernet2', nexthopAddr: '172.31.255.2' },
    ]);
    assert.deepEqual(connected, {
      prefix: '192.168.254.3/32',
      routeType: 'connected',
      vias: [{ interface: 'Loopback1', nexthopAddr: undefined }],
    });
  });

  test('show arp (NAPALM): dotted MACs normalised; an SVI answer names the port after the comma', () => {
    const n = parseNeighbors(JSON.parse(fixture('napalm-show-arp-vrf-all.json')));
    assert.deepEqual(n[0], {
      address: '172.17.17.1',
      mac: 'dc:38:e1:11:97:cf',
      interface: 'Ethernet45',
      port: undefined,
    });
    assert.deepEqual(
      parseNeighbors({
        ipV4Neighbors: [
          { address: '10.0.1.1', hwAddress: '0200.0000.0001', interface: 'Vlan10, Port-Channel7', age: 0 },
        ],
      })[0],
      { address: '10.0.1.1', mac: '02:00:00:00:00:01', interface: 'Vlan10', port: 'Port-Channel7' },
    );
  });

  test('ports map to nexthops: own port certain, a shared port ambiguous, port-channel members, MAC table for svi-only ARP', () => {
    const vias = [
      { interface: 'Vlan10', nexthopAddr: '10.0.1.1' },
      { interface: 'Vlan10', nexthopAddr: '10.0.1.2' },
      { interface: 'Vlan20', nexthopAddr: '10.0.1.3' },
      { interface: 'Vlan20', nexthopAddr: '10.0.1.4' },
      { interface: 'Port-Channel2', nexthopAddr: '10.0.1.5' },
      { interface: 'Vlan10', nexthopAddr: '10.0.1.6' },
    ];
    const neighbors = parseNeighbors({
      ipV4Neighbors: [
        { address: '10.0.1.1', hwAddress: '0200.0000.0001', interface: 'Vlan10, Ethernet11' },
        { address: '10.0.1.2', hwAddress: '0200.0000.0002', interface: 'Vlan10' },
        { address: '10.0.1.3', hwAddress: '0200.0000.0003', interface: 'Vlan20, Port-Channel1' },
        { address: '10.0.1.4', hwAddress: '0200.0000.0004', interface: 'Vlan20, Port-Channel1' },
      ],
    });
    const macs = parseMacTable({
      unicastTable: {
        tableEntries: [
          { vlanId: 10, macAddress: '02:00:00:00:00:02', type: 'dynamic', interface: 'Ethernet12' },
        ],
      },
    });
    const pcs = parsePortChannels({
      portChannels: {
        'Port-Channel1': { activePorts: { Ethernet21: {}, Ethernet22: {} } },
        'Port-Channel2': { activePorts: { Ethernet31: {}, Ethernet32: {} } },
      },
    });
    const m = egressMap(vias, neighbors, macs, pcs);
    assert.deepEqual([...(m.byPort.get('Ethernet11') ?? [])], ['10.0.1.1']);
    assert.deepEqual([...(m.byPort.get('Ethernet12') ?? [])], ['10.0.1.2']);
    assert.deepEqual([...(m.byPort.get('Ethernet21') ?? [])], ['10.0.1.3', '10.0.1.4']);
    assert.deepEqual([...(m.byPort.get('Ethernet32') ?? [])], ['10.0.1.5']);
    assert.deepEqual(m.unplaced, ['10.0.1.6']);
  });

  test('show load-balance destination: JSON outputIntf, text Output Interface, no answer', () => {
    assert.equal(parseOutputInterface({ outputIntf: 'Ethernet43' }), 'Ethernet43');
    assert.equal(parseOutputInterface({ output: 'Output Interface: Ethernet42\n' }), 'Ethernet42');
    assert.equal(parseOutputInterface({ output: 'Unable to determine output interface\n' }), undefined);
  });
});

describe('platforms and templates', () => {
  test('platforms by show version modelName', () => {
    assert.deepEqual(
      [platformOf('DCS-7050SX-64').directflow, platformOf('DCS-7050SX-64').tableSize],
      [true, 1500],
    );
    assert.deepEqual(
      [platformOf('DCS-7050S-64').directflow, platformOf('DCS-7050S-64').tableSize],
      [true, 750],
    );
    assert.deepEqual(
      [platformOf('DCS-7050SX3-48YC12-F').directflow, platformOf('DCS-7050SX3-48YC12-F').tableSize],
      [true, undefined],
    );
    assert.equal(platformOf('DCS-7280SR3-48YC8').directflow, false);
    assert.equal(platformOf('DCS-7508N').directflow, false);
    assert.equal(platformOf('cEOSLab').directflow, 'unknown');
  });

  test('group templates and IPv6 pins use the family-correct commands (golden)', () => {
    assert.deepEqual(
      STATIC_ECMP.remove.map((l) => fillTemplate(l, '2001:db8:80::1', '2001:db8:1::3')),
      ['enable', 'configure', 'no ipv6 route 2001:db8:80::1/128 2001:db8:1::3'],
    );
    assert.deepEqual(
      STATIC_ECMP.add.map((l) => fillTemplate(l, '192.0.2.80', '10.0.1.5')),
      ['enable', 'configure', 'ip route 192.0.2.80/32 10.0.1.5'],
    );
    const bgp = bgpRouteMap({ asn: 65000, peerGroup: 'TRAEFIK', routeMap: 'RMAP-TRAEFIK-IN' }, 4);
    assert.deepEqual(
      bgp.remove.map((l) => fillTemplate(l, '192.0.2.80', '34.34.34.4')),
      [
        'enable',
        'configure',
        'ip prefix-list FLOWPIN-DRAINED seq 8709 permit 34.34.34.4/32',
        'route-map RMAP-TRAEFIK-IN permit 10',
        'match ip next-hop prefix-list FLOWPIN-DRAINED',
        'set local-preference 1',
        'exit',
        'route-map RMAP-TRAEFIK-IN permit 1000',
        'exit',
        'router bgp 65000',
        'neighbor TRAEFIK route-map RMAP-TRAEFIK-IN in',
        'exit',
      ],
    );
    assert.deepEqual(
      bgp.add.map((l) => fillTemplate(l, '192.0.2.80', '34.34.34.4')),
      ['enable', 'configure', 'no ip prefix-list FLOWPIN-DRAINED seq 8709'],
    );
    assert.deepEqual(
      pinCommands({
        flow: { family: 6, src: '2001:db8::1', dst: '2001:db8:80::1', sport: 1, dport: 443 },
        nexthop: '2001:db8:1::2',
        idleTimeoutS: 300,
      }).slice(1, 4),
      ['match ethertype 34525', 'match source ipv6 2001:db8::1', 'match destination ipv6 2001:db8:80::1'],
    );
  });
});
