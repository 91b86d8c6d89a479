// What a configuration reload would change, from two validated configurations: tokens,
// switches added and removed, VIPs, nexthops and maxUnavailable; a new value for any key read at
// start only refuses the reload whole, naming the key (and not the token's value).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readConfig } from '../controller/config.js';
import { planReload } from '../controller/reload-plan.js';
import { ConfigError, Reader } from '../lib/validate.js';

const sw = (
  name: string,
  source: string,
  vips: { address: string; nexthops: string[]; maxUnavailable?: number }[],
  extra: Record<string, unknown> = {},
) => ({
  name,
  adapter: 'arista-eapi',
  mirrorSources: [source],
  eapi: { url: `https://${source}/command-api`, password: 'pw', groupTemplate: 'static-ecmp' },
  vips,
  ...extra,
});
const doc = (over: Record<string, unknown> = {}) => ({
  api: { token: 'op-token' },
  switches: [
    sw('leaf1', '192.0.2.1', [
      { address: '192.0.2.80', nexthops: ['10.0.1.1', '10.0.1.2'] },
      { address: '192.0.2.81', nexthops: ['10.0.2.1'] },
    ]),
    sw('leaf2', '192.0.2.2', [{ address: '192.0.2.90', nexthops: ['10.0.3.1'] }]),
  ],
  ...over,
});
const read = (d: Record<string, unknown>) => readConfig(Reader.fromObject('f.yaml', d), {});

test('reload plan: tokens, switches, VIPs, nexthops and maxUnavailable; nothing for the same file', () => {
  const cur = read(doc());
  assert.equal(planReload(cur, read(doc())).empty, true);
  const next = read(
    doc({
      api: { token: 'new-token' },
      switches: [
        sw('leaf1', '192.0.2.1', [
          { address: '192.0.2.80', nexthops: ['10.0.1.1', '10.0.1.3'], maxUnavailable: 2 },
          { address: '192.0.2.82', nexthops: ['10.0.4.1'] },
        ]),
        sw('leaf3', '192.0.2.3', [{ address: '192.0.2.70', nexthops: ['10.0.5.1'] }]),
      ],
    }),
  );
  const p = planReload(cur, next);
  assert.equal(p.empty, false);
  assert.deepEqual(p.tokens, { before: 1, after: 1, changed: true });
  assert.deepEqual(p.switchesRemoved, ['leaf2']);
  assert.deepEqual(
    p.switchesAdded.map((s) => [s.name, s.key]),
    [['leaf3', 'switches[1]']],
  );
  const leaf1 = p.switchesChanged[0];
  assert.equal(leaf1?.name, 'leaf1');
  assert.deepEqual(
    leaf1?.vipsAdded.map((v) => [v.address, v.key]),
    [['192.0.2.82', 'switches[0].vips[1]']],
  );
  assert.deepEqual(leaf1?.vipsRemoved, ['192.0.2.81']);
  assert.deepEqual(leaf1?.vipsChanged, [
    {
      key: 'switches[0].vips[0]',
      address: '192.0.2.80',
      nexthopsAdded: ['10.0.1.3'],
      nexthopsRemoved: ['10.0.1.2'],
      maxUnavailable: { before: 1, after: 2 },
    },
  ]);
});

test('reload plan: a key read at start only refuses the reload whole, naming the keys', () => {
  // Catches: a reload that takes a new API port or a switch's new URL silently (and runs with the old one).
  const cur = read(doc());
  const refused = (d: Record<string, unknown>, key: RegExp): void => {
    assert.throws(
      () => planReload(cur, read(d)),
      (err: unknown) =>
        err instanceof ConfigError &&
        key.test(err.key) &&
        /takes? effect at a restart only .*Nothing was reloaded: the running configuration stays/.test(
          err.message,
        ) &&
        err.message.startsWith('f.yaml: '),
      String(key),
    );
  };
  refused(doc({ api: { token: 'op-token', port: 9090 } }), /^api\.port$/);
  refused(doc({ settleMs: 500 }), /^settleMs$/);
  refused(doc({ flowTable: { maxAgeS: 60 } }), /^flowTable\.maxAgeS$/);
  const moved = doc();
  (moved.switches[1] as { eapi: { url: string } }).eapi.url = 'https://192.0.2.2:8443/command-api';
  refused(moved, /^switches\[1\]\.eapi\.url$/);
  const sized = doc();
  (sized.switches[0] as Record<string, unknown>)['pinTableSize'] = 1000;
  refused(sized, /^switches\[0\]\.pinTableSize$/);
});
