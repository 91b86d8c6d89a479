// `adapter: linux` in the configuration: read, validated with errors naming the key, and built
// by the registry.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readConfig } from '../controller/config.js';
import { Reader } from '../lib/validate.js';
import { createAdapter } from '../switch-adapters/registry.js';
import type { LinuxSettings } from '../switch-adapters/linux/kind.js';

const doc = (linux: Record<string, unknown>): unknown => ({
  switches: [
    {
      name: 'edge1',
      adapter: 'linux',
      mirrorSources: ['192.0.2.1'],
      linux,
      vips: [{ address: '203.0.113.10', nexthops: ['198.19.1.2'] }],
    },
  ],
});

test('a linux switch is read with defaults and built by the registry', { timeout: 5000 }, () => {
  const cfg = readConfig(
    Reader.fromObject(
      'f.yaml',
      doc({ prefix: ['ip', 'netns', 'exec', 'edge1'], clientInterfaces: ['eth0'], mirrorDevice: 'fpmirror' }),
    ),
  );
  const s = cfg.switches[0];
  const linux = s?.settings as LinuxSettings | undefined;
  assert.equal(linux?.buckets, 64);
  assert.deepEqual(linux?.prefix, ['ip', 'netns', 'exec', 'edge1']);
  const a = s === undefined ? undefined : createAdapter(s, { pinIdleTimeoutS: cfg.pinIdleTimeoutS });
  assert.equal(a?.kind, 'linux');
  assert.equal(a?.capabilities.predictsMovedFlows, true);
});

test('linux settings are validated with the key named', { timeout: 5000 }, () => {
  assert.throws(
    () =>
      readConfig(
        Reader.fromObject('f.yaml', doc({ prefix: ['ssh', 'edge1;reboot'], clientInterfaces: ['eth0'] })),
      ),
    /switches\[0\]\.linux\.prefix\[1\]: prefix word/,
  );
  assert.throws(
    () => readConfig(Reader.fromObject('f.yaml', doc({ clientInterfaces: ['eth 0'] }))),
    /linux\.clientInterfaces\[0\]: 'eth 0' is not an interface name/,
  );
  assert.throws(
    () => readConfig(Reader.fromObject('f.yaml', doc({ clientInterfaces: [] }))),
    /linux\.clientInterfaces: needs at least one/,
  );
  assert.throws(
    () => readConfig(Reader.fromObject('f.yaml', doc({ clientInterfaces: ['eth0'], buckets: 1 }))),
    /linux\.buckets/,
  );
  assert.throws(
    () => readConfig(Reader.fromObject('f.yaml', doc({ clientInterfaces: ['eth0'], bukets: 64 }))),
    /linux\.bukets: is not a known setting/,
  );
});
