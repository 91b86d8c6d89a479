// Switch kinds plug in: each adapter folder declares its kind, its configuration section and
// its factory, the registry lists them, and the configuration takes its adapter names and
// sections from there. A switch whose adapter cannot do what its VIPs need (no group template)
// is refused at start with the key named, not at the first drain.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { TSchema } from 'typebox';
import { Controller } from '../controller/controller.js';
import { applyReload } from '../controller/reload.js';
import { readConfig } from '../controller/config.js';
import { SwitchSchema } from '../controller/config-schema.js';
import { ConfigError, Reader } from '../lib/validate.js';
import { ADAPTER_KINDS, adapterKind, createAdapter, createAdapters } from '../switch-adapters/registry.js';
import { proc } from './helpers/processes.js';
import { flowpinBin } from './helpers/tools.js';

const eapiSwitch = (eapi: Record<string, unknown>) => ({
  mirror: { udp: [] },
  switches: [
    {
      name: 'leaf1',
      mirrorSources: ['127.0.0.9'],
      eapi: { url: 'https://127.0.0.1:1', password: 'pw', ...eapi },
      vips: [{ address: '192.0.2.80', nexthops: ['10.0.1.1', '10.0.1.2'] }],
    },
  ],
});

test(
  "the configuration admits exactly the registry's kinds, each with its own section and schema",
  { timeout: 10_000 },
  () => {
    const props = (
      SwitchSchema as unknown as {
        properties: Record<string, TSchema & { enum?: string[]; anyOf?: unknown[] }>;
      }
    ).properties;
    const adapterValues =
      props['adapter']?.enum ??
      (props['adapter']?.anyOf as { const: string }[] | undefined)?.map((a) => a.const);
    assert.deepEqual(new Set(adapterValues), new Set(ADAPTER_KINDS.map((k) => k.kind)));
    for (const k of ADAPTER_KINDS) {
      assert.equal(adapterKind(k.kind), k);
      if (k.section !== undefined)
        assert.equal(
          JSON.stringify(props[k.section.key]),
          JSON.stringify(k.section.schema),
          `${k.kind}: the switch's ${k.section.key} key is the kind's schema`,
        );
    }
    assert.throws(() => adapterKind('no-such-kind'), /no switch adapter of kind 'no-such-kind'/);
  },
);

test(
  "a switch whose adapter cannot change its VIPs' groups is refused at start, naming the key",
  { timeout: 10_000 },
  () => {
    const config = readConfig(Reader.fromObject('f.yaml', eapiSwitch({})));
    const adapters = createAdapters(config);
    assert.equal(adapters.get('leaf1')?.capabilities.changesGroups, false);
    assert.throws(
      () =>
        new Controller({ config, adapters, logger: pino({ level: 'silent' }), listen: false, loops: false }),
      (e: Error) =>
        e instanceof ConfigError &&
        e.key === 'switches[0].eapi.groupTemplate' &&
        /f\.yaml: switches\[0\]\.eapi\.groupTemplate: is needed: drains and additions change the groups of leaf1's VIPs \(192\.0\.2\.80\)/.test(
          e.message,
        ),
    );
    const ok = readConfig(Reader.fromObject('f.yaml', eapiSwitch({ groupTemplate: 'static-ecmp' })));
    const c = new Controller({
      config: ok,
      adapters: createAdapters(ok),
      logger: pino({ level: 'silent' }),
      listen: false,
      loops: false,
    });
    assert.equal(c.runtimes.size, 1);
  },
);

test('a reload that adds such a switch is refused whole, naming the key', { timeout: 10_000 }, async () => {
  const doc = eapiSwitch({ groupTemplate: 'static-ecmp' });
  const cur = readConfig(Reader.fromObject('f.yaml', doc));
  const c = new Controller({
    config: cur,
    adapters: createAdapters(cur),
    logger: pino({ level: 'silent' }),
    listen: false,
    loops: false,
    createAdapter: (s) => createAdapter(s, { pinIdleTimeoutS: cur.pinIdleTimeoutS }),
  });
  const leaf2 = {
    name: 'leaf2',
    mirrorSources: ['127.0.0.10'],
    eapi: { url: 'https://127.0.0.1:2', password: 'pw' },
    vips: [{ address: '192.0.2.81', nexthops: ['10.0.1.1'] }],
  };
  const next = readConfig(Reader.fromObject('f.yaml', { ...doc, switches: [...doc.switches, leaf2] }));
  await assert.rejects(
    applyReload(c, next),
    (e: Error) =>
      e instanceof ConfigError &&
      e.key === 'switches[1].eapi.groupTemplate' &&
      /Nothing was reloaded/.test(e.message),
  );
  assert.deepEqual([...c.runtimes.keys()], ['leaf1']);
  const ok = readConfig(
    Reader.fromObject('f.yaml', {
      ...doc,
      switches: [...doc.switches, { ...leaf2, eapi: { ...leaf2.eapi, groupTemplate: 'static-ecmp' } }],
    }),
  );
  await applyReload(c, ok);
  assert.deepEqual([...c.runtimes.keys()], ['leaf1', 'leaf2']);
  await c.stop();
});

test(
  'flowpin run refuses such a configuration before it starts (exit 2, the key named)',
  { timeout: 30_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-kinds-'));
    try {
      const cfg = path.join(dir, 'flowpin.yaml');
      writeFileSync(
        cfg,
        [
          'api: { host: 127.0.0.1, port: 0 }',
          'mirror: { udp: [] }',
          'switches:',
          '  - { name: leaf1, mirrorSources: [127.0.0.9], eapi: { url: "https://127.0.0.1:1", password: pw }, vips: [{ address: 192.0.2.80, nexthops: [10.0.1.1] }] }',
          '',
        ].join('\n'),
      );
      const p = proc([flowpinBin, 'run', '--config', cfg]);
      const [code] = await p.exit;
      assert.equal(code, 2, p.out());
      assert.match(p.out(), /switches\[0\]\.eapi\.groupTemplate: is needed/);
      assert.doesNotMatch(p.out(), /API http/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
