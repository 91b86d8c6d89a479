// The server identity map and the resolution keys of the configuration: answers only where
// a MAC or mirror port names one server; static entries over what the switch reports.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ServerIdentityMap } from '../controller/server-identity.js';
import { readConfig } from '../controller/config.js';
import { ConfigError, Reader } from '../lib/validate.js';

describe('server identity map', () => {
  test(
    'MAC first, then port; several servers behind one MAC or port answer nothing, with the reason',
    { timeout: 10_000 },
    () => {
      const m = new ServerIdentityMap();
      m.learn(
        [
          { nexthop: '10.0.1.1', mac: '02:00:00:00:00:01', portIndex: 5 },
          { nexthop: '10.0.1.2', mac: '02:00:00:00:00:02', portIndex: 6 },
          { nexthop: '10.0.1.3', mac: '02:00:00:00:00:03', portIndex: 6 },
          { nexthop: '10.0.1.4', mac: '02:00:00:00:00:ee' },
          { nexthop: '10.0.1.5', mac: '02:00:00:00:00:EE' },
        ],
        0,
      );
      assert.deepEqual(m.lookup('02:00:00:00:00:01', 6), { nexthop: '10.0.1.1' });
      assert.deepEqual(m.lookup(undefined, 5), { nexthop: '10.0.1.1' });
      assert.deepEqual(m.lookup(undefined, 6), { nexthop: undefined, why: 'ambiguous-port' });
      assert.deepEqual(m.lookup('02:00:00:00:00:ee', undefined), {
        nexthop: undefined,
        why: 'ambiguous-mac',
      });
      assert.deepEqual(m.lookup('02:00:00:00:00:99', 5), { nexthop: '10.0.1.1' });
      assert.deepEqual(m.lookup('02:00:00:00:00:99', undefined), { nexthop: undefined, why: 'unknown-mac' });
      assert.deepEqual(m.lookup(undefined, 77), { nexthop: undefined, why: 'unknown-port' });
      assert.deepEqual(m.lookup(undefined, undefined), { nexthop: undefined, why: 'no-identity' });
    },
  );

  test(
    "a dual-stack server answering from one MAC is told by the reply's family, and by the VIP's nexthops",
    { timeout: 10_000 },
    () => {
      const m = new ServerIdentityMap([
        { nexthop: '10.0.2.1', mac: '02:00:00:00:00:51' },
        { nexthop: 'fd00:2::1', mac: '02:00:00:00:00:51' },
      ]);
      m.learn(
        [
          { nexthop: '198.19.1.2', mac: '02:00:00:00:00:01' },
          { nexthop: 'fd00:19:1::2', mac: '02:00:00:00:00:01' },
          { nexthop: '198.19.2.2', mac: '02:00:00:00:00:02', portIndex: 7 },
          { nexthop: '198.19.9.2', mac: '02:00:00:00:00:02', portIndex: 7 },
          { nexthop: 'fd00:19:3::2', mac: '02:00:00:00:00:03' },
        ],
        0,
      );
      assert.deepEqual(m.lookup('02:00:00:00:00:01', undefined, { family: 4 }), { nexthop: '198.19.1.2' });
      assert.deepEqual(m.lookup('02:00:00:00:00:01', undefined, { family: 6 }), { nexthop: 'fd00:19:1::2' });
      assert.deepEqual(
        m.lookup('02:00:00:00:00:51', undefined, { family: 6 }),
        { nexthop: 'fd00:2::1' },
        'static entries too',
      );
      // Two IPv4 addresses behind one MAC: the VIP's nexthops tell them apart, or nothing does.
      const ofVip = { family: 4 as const, isNexthop: (nh: string) => nh === '198.19.2.2' };
      assert.deepEqual(m.lookup('02:00:00:00:00:02', undefined, ofVip), { nexthop: '198.19.2.2' });
      assert.deepEqual(m.lookup(undefined, 7, ofVip), { nexthop: '198.19.2.2' });
      assert.deepEqual(m.lookup('02:00:00:00:00:02', undefined, { family: 4 }), {
        nexthop: undefined,
        why: 'ambiguous-mac',
      });
      assert.deepEqual(m.lookup('02:00:00:00:00:02', undefined, { family: 4, isNexthop: () => true }), {
        nexthop: undefined,
        why: 'ambiguous-mac',
      });
      // A MAC known for the other family only.
      assert.deepEqual(m.lookup('02:00:00:00:00:03', undefined, { family: 4 }), {
        nexthop: undefined,
        why: 'unknown-mac',
      });
    },
  );

  test(
    'static entries win over what the switch reports; a new reading replaces the old one',
    { timeout: 10_000 },
    () => {
      const m = new ServerIdentityMap([
        { nexthop: '10.0.1.9', mac: '02-00-00-00-00-01' },
        { nexthop: '10.0.1.8', port: 6 },
      ]);
      m.learn(
        [
          { nexthop: '10.0.1.1', mac: '02:00:00:00:00:01' },
          { nexthop: '10.0.1.2', mac: '02:00:00:00:00:02', portIndex: 6 },
        ],
        0,
      );
      assert.deepEqual(m.lookup('02:00:00:00:00:01', undefined), { nexthop: '10.0.1.9' });
      assert.deepEqual(m.lookup(undefined, 6), { nexthop: '10.0.1.8' });
      m.learn([{ nexthop: '10.0.1.3', mac: '02:00:00:00:00:02' }], 1);
      assert.deepEqual(m.lookup('02:00:00:00:00:02', undefined), { nexthop: '10.0.1.3' });
    },
  );
});

describe('resolution configuration', () => {
  const base = (sw: Record<string, unknown>): Record<string, unknown> => ({
    mirror: { udp: [] },
    switches: [
      {
        name: 'sw1',
        adapter: 'sim',
        mirrorSources: ['127.0.0.2'],
        vips: [{ address: '192.0.2.80', nexthops: ['10.0.1.1'] }],
        ...sw,
      },
    ],
  });
  const cfg = (sw: Record<string, unknown>) => readConfig(Reader.fromObject('t.yaml', base(sw))).switches[0];

  test(
    'both by default where replies are mirrored, lookup otherwise; observe needs the reply mirror',
    { timeout: 10_000 },
    () => {
      assert.equal(cfg({})?.resolution, 'lookup');
      assert.equal(cfg({ mirrorReplies: true })?.resolution, 'both');
      assert.equal(
        cfg({ mirrorReplies: true, resolution: 'observe', replyTimeoutMs: 300 })?.replyTimeoutMs,
        300,
      );
      assert.throws(
        () => cfg({ resolution: 'observe' }),
        (e: unknown) => e instanceof ConfigError && /mirrorReplies/.test(e.message),
      );
      assert.throws(() => cfg({ mirrorReplies: true, resolution: 'guess' }), ConfigError);
    },
  );

  test('static servers: a nexthop with a MAC or a port, named by key when wrong', { timeout: 10_000 }, () => {
    const s = cfg({
      mirrorReplies: true,
      servers: [
        { nexthop: '10.0.1.1', mac: '02:00:00:00:00:01' },
        { nexthop: '10.0.1.2', port: 12 },
      ],
    });
    assert.deepEqual(s?.servers, [
      { nexthop: '10.0.1.1', mac: '02:00:00:00:00:01' },
      { nexthop: '10.0.1.2', port: 12 },
    ]);
    assert.throws(
      () => cfg({ mirrorReplies: true, servers: [{ nexthop: '10.0.1.1', mac: 'zz' }] }),
      (e: unknown) => e instanceof ConfigError && /servers\[0\]\.mac/.test(e.message),
    );
    assert.throws(
      () => cfg({ mirrorReplies: true, servers: [{ nexthop: '10.0.1.1' }] }),
      (e: unknown) => e instanceof ConfigError && /needs a mac or a port/.test(e.message),
    );
  });
});
