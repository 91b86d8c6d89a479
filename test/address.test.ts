// One parser for every address that reaches a switch: zone ids refused, IPv4-mapped IPv6 taken
// as the IPv4 address, unspecified, loopback, multicast and link-local refused; the change
// API and the configuration use it, with the field or key named.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { AddressError, hostAddress } from '../controller/address.js';
import { FlowpinError } from '../controller/errors.js';
import { readConfig } from '../controller/config.js';
import { ConfigError, Reader } from '../lib/validate.js';
import { isIPv4 } from 'node:net';
import fc from 'fast-check';
import { canonicalIp, ipv4Value, parseIp } from '../lib/addr.js';
import { parseTuple, tupleAt, tupleOf } from '../mirror-receiver/tuple.js';
import { World } from '../cli/scenario/world.js';

describe('switch addresses', () => {
  test('canonical forms, mapped IPv4, and what is refused', () => {
    assert.equal(hostAddress('10.0.1.7'), '10.0.1.7');
    assert.equal(hostAddress('::ffff:10.0.1.7'), '10.0.1.7');
    assert.equal(hostAddress('::FFFF:a00:107'), '10.0.1.7');
    assert.equal(hostAddress('2001:DB8:0:0::1'), '2001:db8::1');
    for (const bad of [
      '::ffff:10.0.1.7%eth0',
      'fe80::1%2',
      '10.0.1.7%eth0',
      '0.0.0.0',
      '::',
      '127.0.0.1',
      '::1',
      '224.0.0.5',
      'ff02::1',
      '169.254.1.1',
      'fe80::1',
      '255.255.255.255',
      'leaf1',
      '',
      '1'.repeat(100),
    ]) {
      assert.throws(() => hostAddress(bad), AddressError, bad);
    }
    assert.throws(
      () => canonicalIp('::ffff:10.0.1.7%eth0'),
      /not an IP address/,
      'the decoder-side parser refuses zone ids too',
    );
  });

  test(
    'an addition refuses bad addresses naming the field, and a mapped duplicate of a member',
    { timeout: 60_000 },
    async () => {
      const w = new World({
        switches: [
          {
            name: 'sw1',
            vips: [{ address: '192.0.2.80', nexthops: ['10.0.1.1', '10.0.1.2'], port: 443 }],
            spares: ['10.0.1.5'],
            ecmpMode: 'resilient',
            pinCapacity: 1000,
            programDelayMs: 0,
            rate: 10,
            lifetime: { kind: 'fixed', s: 60 },
          },
        ],
        latencyMs: 1,
        mirrorDelayMs: 1,
        packetIntervalMs: 1000,
        seed: 1,
        controller: { pinMode: 'on-change', settleMs: 5, barrierTimeoutMs: 2000 },
      });
      try {
        await w.startController();
        const cm = w.controller?.changeManager('sw1');
        assert.ok(cm);
        const refused = async (address: string, status: number, re: RegExp): Promise<void> => {
          await assert.rejects(w.settle(cm.add('192.0.2.80', address, {}), 5000), (err: unknown) => {
            assert.ok(err instanceof FlowpinError, String(err));
            assert.equal(err.status, status, `${address}: ${err.message}`);
            if (status === 400) assert.equal(err.detail?.['field'], 'address');
            assert.match(err.message, re);
            return true;
          });
        };
        await refused('0.0.0.0', 400, /unspecified/);
        await refused('192.0.2.80', 400, /the VIP itself/);
        await refused('2001:db8::5', 400, /IPv6 address; 192\.0\.2\.80 is an IPv4 VIP/);
        await refused('::ffff:10.0.1.7%eth0', 400, /zone id/);
        await refused('::ffff:10.0.1.2', 409, /already in the ECMP group/);
        assert.deepEqual(
          w.sw('sw1').sw.vips.get('192.0.2.80')?.group.members(),
          ['10.0.1.1', '10.0.1.2'],
          'nothing reached the switch',
        );
      } finally {
        await w.close();
      }
    },
  );

  test('the configuration refuses duplicate VIPs and nexthops, bad addresses, and one mirror source for two switches', () => {
    const cfg = (switches: unknown[]) => readConfig(Reader.fromObject('flowpin.yaml', { switches }));
    const sw = (name: string, vips: unknown[], source = '10.0.0.1') => ({
      name,
      adapter: 'sim',
      mirrorSources: [source],
      vips,
    });
    const fails = (switches: unknown[], key: RegExp, msg: RegExp): void => {
      assert.throws(
        () => cfg(switches),
        (err: unknown) => err instanceof ConfigError && key.test(err.message) && msg.test(err.message),
      );
    };
    fails(
      [
        sw('a', [
          { address: '192.0.2.80', nexthops: [] },
          { address: '192.0.2.80', nexthops: [] },
        ]),
      ],
      /vips\[1\]\.address/,
      /appears twice/,
    );
    fails(
      [sw('a', [{ address: '192.0.2.80', nexthops: ['10.0.1.1', '::ffff:10.0.1.1'] }])],
      /nexthops\[1\]/,
      /appears twice/,
    );
    fails([sw('a', [{ address: '192.0.2.80', nexthops: ['2001:db8::1'] }])], /nexthops\[0\]/, /IPv6 address/);
    fails([sw('a', [{ address: '0.0.0.0', nexthops: [] }])], /address/, /unspecified/);
    fails(
      [
        sw('a', [{ address: '192.0.2.80', nexthops: [] }]),
        sw('b', [{ address: '192.0.2.81', nexthops: [] }]),
      ],
      /switches/,
      /mirror source 10\.0\.0\.1 is given for both a and b/,
    );
    assert.deepEqual(
      cfg([sw('a', [{ address: '192.0.2.80', nexthops: ['::ffff:10.0.1.1'] }])]).switches[0]?.vips[0]
        ?.nexthops,
      ['10.0.1.1'],
    );
  });
});

describe('IPv4 text on the per-packet path', () => {
  const seed =
    process.env['FLOWPIN_SEED'] !== undefined ? Number(process.env['FLOWPIN_SEED']) : Date.now() % 2 ** 31;

  test('ipv4Value accepts exactly what isIPv4 accepts, with the value of the split parts', () => {
    console.log(`ipv4Value seed ${seed} (FLOWPIN_SEED=${seed} replays it)`);
    const bySplit = (s: string): number => s.split('.').reduce((v, p) => v * 256 + Number(p), 0);
    for (const s of [
      '0.0.0.0',
      '255.255.255.255',
      '10.0.1.7',
      '1.2.3.4',
      '01.2.3.4',
      '1.2.3.04',
      '256.1.1.1',
      '1.2.3',
      '1.2.3.4.5',
      '1..2.3',
      '.1.2.3',
      '1.2.3.',
      '1.2.3.4 ',
      '1.2.3.a',
      '',
      '1000.1.1.1',
      '00.0.0.0',
      '::1',
    ]) {
      assert.equal(ipv4Value(s) >= 0, isIPv4(s), s);
      if (isIPv4(s)) assert.equal(ipv4Value(s), bySplit(s), s);
    }
    const part = fc.oneof(
      fc.integer({ min: 0, max: 300 }).map(String),
      fc.stringMatching(/^[0-9]{0,4}$/),
      fc.constantFrom('', 'a', ' ', '-1', '1e2'),
    );
    const text = fc.oneof(
      fc.array(part, { minLength: 1, maxLength: 6 }).map((ps) => ps.join('.')),
      fc.string({ maxLength: 16 }),
    );
    fc.assert(
      fc.property(text, (s) => {
        assert.equal(ipv4Value(s) >= 0, isIPv4(s), JSON.stringify(s));
        if (isIPv4(s)) assert.equal(ipv4Value(s), bySplit(s));
      }),
      { seed, numRuns: 5000 },
    );
  });

  test('tupleOf takes the IPv4 fast path to the same tuple as the byte form', () => {
    const f = { family: 4 as const, src: '203.0.113.250', dst: '192.0.2.80', sport: 65535, dport: 443 };
    const t = tupleOf(f);
    assert.equal(t, tupleAt(Uint8Array.of(203, 0, 113, 250, 192, 0, 2, 80), 4, 0, 4, 65535, 443));
    assert.deepEqual(parseTuple(t), f);
    assert.deepEqual([...parseIp('203.0.113.250').bytes], [203, 0, 113, 250]);
    assert.throws(() => tupleOf({ ...f, src: '203.0.113.256' }), /not an IP address/);
  });
});
