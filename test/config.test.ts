// The controller's configuration: defaults, secrets from the environment or a file, and
// errors that name the file and the key.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, readConfig } from '../controller/config.js';
import { ConfigError, Reader } from '../controller/validate.js';

const minimal = (over: Record<string, unknown> = {}) => ({
  switches: [{ name: 'leaf1', eapi: { url: 'https://10.0.0.1', password: 'pw' }, vips: [{ address: '192.0.2.80', nexthops: ['10.0.1.1', '10.0.1.2'] }], ...over }],
});

test('defaults: on-change, idle 300 s, the eAPI host as mirror source, frozen', () => {
  const c = readConfig(Reader.fromObject('f.yaml', minimal()));
  assert.equal(c.pinMode, 'on-change');
  assert.equal(c.pinIdleTimeoutS, 300);
  assert.equal(c.api.port, 8080);
  assert.equal(c.api.token, undefined);
  const s = c.switches[0];
  assert.equal(s?.eapi?.url, 'https://10.0.0.1/command-api');
  assert.deepEqual(s?.mirrorSources, ['10.0.0.1']);
  assert.equal(s?.pinTableSize, 1500);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(s?.vips));
});

test('secrets from env: and file:', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-cfg-'));
  try {
    writeFileSync(path.join(dir, 'pw'), 'from-file\n');
    process.env['FLOWPIN_TEST_TOKEN'] = 'from-env';
    const file = path.join(dir, 'flowpin.yaml');
    writeFileSync(file, `api: { token: env:FLOWPIN_TEST_TOKEN }\nswitches:\n  - name: leaf1\n    eapi: { url: 'https://10.0.0.1/command-api', password: 'file:${path.join(dir, 'pw')}' }\n    vips: [{ address: 192.0.2.80, nexthops: [10.0.1.1] }]\n`);
    const c = loadConfig(file);
    assert.equal(c.api.token, 'from-env');
    assert.equal(c.switches[0]?.eapi?.password, 'from-file');
    delete process.env['FLOWPIN_TEST_TOKEN'];
    assert.throws(() => loadConfig(file), /flowpin\.yaml: api\.token: environment variable FLOWPIN_TEST_TOKEN is not set/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('errors name the file and key', () => {
  const bad = (doc: unknown, re: RegExp) => assert.throws(() => readConfig(Reader.fromObject('f.yaml', doc)), (e: Error) => e instanceof ConfigError && re.test(e.message));
  bad(minimal({ eapi: { url: 'leaf1', password: 'x' } }), /f\.yaml: switches\[0\]\.eapi\.url: must be an http:\/\/ or https:\/\/ URL, got 'leaf1'/);
  bad(minimal({ vips: [{ address: '192.0.2.80', nexthops: ['10.0.1.300'] }] }), /switches\[0\]\.vips\[0\]\.nexthops\[0\]: must be an IP address/);
  bad({ ...minimal(), pinMode: 'sometimes' }, /f\.yaml: pinMode: must be one of on-change, always/);
  bad({ ...minimal(), pinIdleTimeoutS: 0 }, /pinIdleTimeoutS: must be at least 1/);
  bad({ ...minimal(), pinmode: 'always' }, /f\.yaml: pinmode: is not a known setting/);
  bad({ switches: [] }, /switches: needs at least one switch/);
  bad({ switches: [...minimal().switches, ...minimal().switches] }, /switch name 'leaf1' appears twice/);
  bad(minimal({ eapi: { url: 'https://switch.example/command-api', password: 'x' } }), /switches\[0\]\.mirrorSources: needed/);
  assert.throws(() => loadConfig('/nonexistent/flowpin.yaml'), /\/nonexistent\/flowpin\.yaml: cannot read/);
});
