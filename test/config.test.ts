// The controller's configuration: defaults from the schema, secrets from the environment or a
// file, API tokens with roles, and errors that name the file and the key (schema errors, null
// values, URLs, referenced files, duplicates, keys that go together).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, readConfig } from '../controller/config.js';
import { ConfigError, Reader } from '../lib/validate.js';
import type { EapiSettings } from '../switch-adapters/arista-eapi/kind.js';

const minimal = (over: Record<string, unknown> = {}) => ({
  switches: [
    {
      name: 'leaf1',
      eapi: { url: 'https://10.0.0.1', password: 'pw' },
      vips: [{ address: '192.0.2.80', nexthops: ['10.0.1.1', '10.0.1.2'] }],
      ...over,
    },
  ],
});
const read = (doc: unknown, env: NodeJS.ProcessEnv = {}) => readConfig(Reader.fromObject('f.yaml', doc), env);

test('defaults: on-change, idle 300 s, the API on loopback, the eAPI host as mirror source, frozen', () => {
  const c = read(minimal());
  assert.equal(c.pinMode, 'on-change');
  assert.equal(c.pinIdleTimeoutS, 300);
  assert.equal(c.api.host, '127.0.0.1');
  assert.equal(c.api.port, 8080);
  assert.equal(c.api.token, undefined);
  assert.deepEqual(c.api.tokens, []);
  assert.equal(c.api.readsNeedToken, false);
  assert.deepEqual(c.mirror.udp, [
    { host: '127.0.0.1', port: 4754, receiveBufferBytes: 32 * 1024 * 1024, reader: 'auto' },
  ]);
  assert.equal(c.flowTable.maxFlows, 1_000_000);
  const s = c.switches[0];
  const eapi = s?.settings as EapiSettings | undefined;
  assert.equal(eapi?.url, 'https://10.0.0.1/command-api');
  assert.equal(eapi?.username, 'admin');
  assert.equal(eapi?.atomicity, 'session');
  assert.deepEqual(s?.mirrorSources, ['10.0.0.1']);
  assert.equal(s?.pinTableSize, 1500);
  assert.equal(s?.pinTableSizeSet, false);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(s?.vips));
});

test('secrets from env: and file:', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-cfg-'));
  try {
    writeFileSync(path.join(dir, 'pw'), 'from-file\n');
    const file = path.join(dir, 'flowpin.yaml');
    writeFileSync(
      file,
      `api: { token: env:FLOWPIN_TEST_TOKEN }\nswitches:\n  - name: leaf1\n    eapi: { url: 'https://10.0.0.1/command-api', password: 'file:${path.join(dir, 'pw')}' }\n    vips: [{ address: 192.0.2.80, nexthops: [10.0.1.1] }]\n`,
    );
    const c = loadConfig(file, { FLOWPIN_TEST_TOKEN: 'from-env' });
    assert.equal(c.api.token, 'from-env');
    assert.deepEqual(
      c.api.tokens.map((t) => t.role),
      ['operator'],
    );
    assert.equal((c.switches[0]?.settings as EapiSettings | undefined)?.password, 'from-file');
    assert.throws(
      () => loadConfig(file, {}),
      /flowpin\.yaml: api\.token: environment variable FLOWPIN_TEST_TOKEN is not set/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('API tokens with roles: from files in the configuration and from the environment; a file others may read is warned about', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-tok-'));
  try {
    const ro = path.join(dir, 'read.token');
    const op = path.join(dir, 'op.token');
    writeFileSync(ro, 'r-token\n');
    writeFileSync(op, 'o-token\n');
    chmodSync(ro, 0o600);
    chmodSync(op, 0o644);
    const c = read(
      {
        ...minimal(),
        api: {
          tokens: [
            { role: 'read', file: ro },
            { role: 'operator', file: op },
          ],
        },
      },
      { FLOWPIN_TOKEN: 'env-op' },
    );
    assert.deepEqual(
      c.api.tokens.map((t) => [t.role, t.token, t.from]),
      [
        ['read', 'r-token', 'api.tokens[0].file'],
        ['operator', 'o-token', 'api.tokens[1].file'],
        ['operator', 'env-op', 'FLOWPIN_TOKEN'],
      ],
    );
    assert.equal(c.api.readsNeedToken, true);
    assert.equal(c.warnings.length, 1);
    assert.match(c.warnings[0] ?? '', /api\.tokens\[1\]\.file: .*op\.token may be read by group or others/);
    assert.doesNotMatch(c.warnings.join(), /o-token|r-token/, 'warnings never carry a token');
    assert.equal(read(minimal(), { FLOWPIN_READ_TOKEN: 'r' }).api.readsNeedToken, true);
    assert.throws(
      () => read({ ...minimal(), api: { tokens: [{ role: 'admin', file: ro }] } }),
      /f\.yaml: api\.tokens\[0\]\.role: must be one of read, operator, got 'admin'/,
    );
    assert.throws(
      () => read({ ...minimal(), api: { tokens: [{ role: 'read', file: path.join(dir, 'missing') }] } }),
      /f\.yaml: api\.tokens\[0\]\.file: cannot read .*missing: no such file \(ENOENT\)/,
    );
    assert.throws(
      () => read({ ...minimal(), api: { tokens: [{ role: 'read', file: dir }] } }),
      /api\.tokens\[0\]\.file: cannot read .*: is a directory, not a file \(EISDIR\)/,
    );
    assert.throws(
      () =>
        read(
          { ...minimal(), api: { token: 'same', tokens: [{ role: 'read', file: ro }] } },
          { FLOWPIN_READ_TOKEN: 'same' },
        ),
      /the same token is given for two roles/,
    );
    // Names: given, or the token's key; the environment's tokens are 'env' and 'env-read'. A name says who
    // made a change: one per token.
    const named = read(
      {
        ...minimal(),
        api: {
          token: 'cfg',
          tokens: [
            { name: 'alice', role: 'operator', file: op },
            { role: 'read', file: ro },
          ],
        },
      },
      { FLOWPIN_TOKEN: 'env-op', FLOWPIN_READ_TOKEN: 'env-r' },
    );
    assert.deepEqual(
      named.api.tokens.map((t) => t.name),
      ['api.token', 'alice', 'api.tokens[1]', 'env', 'env-read'],
    );
    assert.throws(
      () =>
        read({
          ...minimal(),
          api: {
            tokens: [
              { name: 'alice', role: 'operator', file: op },
              { name: 'alice', role: 'read', file: ro },
            ],
          },
        }),
      /f\.yaml: api\.tokens\[1\]\.name: the name 'alice' is given to another token/,
    );
    assert.throws(
      () => read({ ...minimal(), api: { tokens: [{ name: 'env', role: 'operator', file: op }] } }),
      /api\.tokens\[0\]\.name: the name 'env' is kept for api\.token and the environment's tokens/,
    );
    assert.throws(
      () => read({ ...minimal(), api: { tokens: [{ name: 'a b', role: 'operator', file: op }] } }),
      /api\.tokens\[0\]\.name: /,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('errors name the file and key', () => {
  const bad = (doc: unknown, re: RegExp) =>
    assert.throws(
      () => read(doc),
      (e: Error) => e instanceof ConfigError && re.test(e.message) && !e.message.includes('\n'),
      `expected ${String(re)}`,
    );
  bad(
    minimal({ eapi: { url: 'leaf1', password: 'x' } }),
    /f\.yaml: switches\[0\]\.eapi\.url: must be an http:\/\/ or https:\/\/ URL, got 'leaf1'/,
  );
  bad(
    minimal({ eapi: { url: 'https://[::1', password: 'x' } }),
    /f\.yaml: switches\[0\]\.eapi\.url: must be an http:\/\/ or https:\/\/ URL/,
  );
  bad(
    minimal({ eapi: { url: 'ftp://10.0.0.1', password: 'x' } }),
    /switches\[0\]\.eapi\.url: must be an http/,
  );
  bad(
    minimal({ vips: [{ address: '192.0.2.80', nexthops: ['10.0.1.300'] }] }),
    /switches\[0\]\.vips\[0\]\.nexthops\[0\]: must be an IP address/,
  );
  bad(
    { ...minimal(), pinMode: 'sometimes' },
    /f\.yaml: pinMode: must be one of on-change, always, got 'sometimes'/,
  );
  bad({ ...minimal(), pinIdleTimeoutS: 0 }, /pinIdleTimeoutS: must be at least 1, got 0/);
  bad({ ...minimal(), pinIdleTimeoutS: 1.5 }, /pinIdleTimeoutS: must be a whole number, got 1\.5/);
  bad({ ...minimal(), pinmode: 'always' }, /f\.yaml: pinmode: is not a known setting/);
  bad({ ...minimal(), api: { port: null } }, /f\.yaml: api\.port: must be a whole number, got null/);
  bad({ ...minimal(), api: null }, /f\.yaml: api: must be a mapping, got null/);
  bad({ ...minimal(), api: { port: '8080' } }, /api\.port: must be a whole number, got '8080'/);
  bad({ ...minimal(), mirror: { raw: 'yes' } }, /mirror\.raw: must be true or false, got 'yes'/);
  bad(minimal({ pinTableSize: null }), /switches\[0\]\.pinTableSize: must be a whole number, got null/);
  bad({ switches: [] }, /f\.yaml: switches: needs at least one entry/);
  bad({}, /f\.yaml: switches: is required/);
  bad(
    { switches: [...minimal().switches, ...minimal().switches] },
    /switches\[1\]\.name: switch name 'leaf1' appears twice/,
  );
  bad(
    minimal({ eapi: { url: 'https://switch.example/command-api', password: 'x' } }),
    /switches\[0\]\.mirrorSources: needed/,
  );
  bad(
    minimal({ eapi: { url: 'https://10.0.0.1', password: 'x', groupCommands: { add: [], remove: ['x'] } } }),
    /switches\[0\]\.eapi\.groupCommands\.add: needs at least one entry/,
  );
  bad(
    minimal({ eapi: { url: 'https://10.0.0.1', password: 'x', groupTemplate: 'bgp-route-map' } }),
    /switches\[0\]\.eapi\.bgp: is required with groupTemplate: bgp-route-map/,
  );
  bad(
    minimal({
      eapi: {
        url: 'https://10.0.0.1',
        password: 'x',
        groupTemplate: 'static-ecmp',
        groupCommands: { add: ['a'], remove: ['b'] },
      },
    }),
    /eapi\.groupCommands: give either groupTemplate or groupCommands/,
  );
  bad(
    minimal({ adapter: 'gnmi' }),
    /switches\[0\]\.eapi: is for adapter arista-eapi; this switch's adapter is gnmi/,
  );
  bad(
    { switches: [{ name: 'x', adapter: 'sim', vips: [{ address: '192.0.2.80' }] }] },
    /switches\[0\]\.mirrorSources: needed/,
  );
  bad(
    { switches: [{ name: 'x', vips: [{ address: '192.0.2.80' }], mirrorSources: ['10.0.0.9'] }] },
    /switches\[0\]\.eapi: is required for adapter arista-eapi/,
  );
  bad(
    minimal({ vips: [{ address: '192.0.2.80', nexthops: ['10.0.1.1%eth0'] }] }),
    /nexthops\[0\]: '10\.0\.1\.1%eth0' has a zone id/,
  );
  bad({ ...minimal(), api: { host: 'localhost' } }, /api\.host: 'localhost' is not an IP address/);
  bad(minimal({ name: 'a b' }), /switches\[0\]\.name: may hold letters/);
  assert.throws(
    () => loadConfig('/nonexistent/flowpin.yaml'),
    /\/nonexistent\/flowpin\.yaml: cannot read: no such file \(ENOENT\)/,
  );
});

test('referenced files are checked at load: ENOENT, EISDIR, EACCES name the key', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-ref-'));
  try {
    const sub = path.join(dir, 'sub');
    mkdirSync(sub);
    const eapi = (extra: Record<string, unknown>) =>
      minimal({ eapi: { url: 'https://10.0.0.1', password: 'x', ...extra } });
    assert.throws(
      () => read(eapi({ caFile: path.join(dir, 'nope.pem') })),
      /f\.yaml: switches\[0\]\.eapi\.caFile: cannot read .*nope\.pem: no such file \(ENOENT\)/,
    );
    assert.throws(
      () => read(eapi({ caFile: sub })),
      /switches\[0\]\.eapi\.caFile: .*sub is not a regular file/,
    );
    assert.throws(
      () => read(eapi({ password: `file:${sub}` })),
      /switches\[0\]\.eapi\.password: cannot read .*sub: is a directory, not a file \(EISDIR\)/,
    );
    assert.throws(() => loadConfig(sub), /sub: cannot read: is a directory, not a file \(EISDIR\)/);
    if (process.getuid?.() !== 0) {
      const locked = path.join(dir, 'locked.pem');
      writeFileSync(locked, 'x');
      chmodSync(locked, 0o000);
      assert.throws(
        () => read(eapi({ caFile: locked })),
        /switches\[0\]\.eapi\.caFile: cannot read .*locked\.pem: permission denied \(EACCES\)/,
      );
    }
    const yaml = path.join(dir, 'bad.yaml');
    writeFileSync(yaml, 'switches: [\n  - {\n');
    assert.throws(
      () => loadConfig(yaml),
      (e: Error) => e instanceof ConfigError && /bad\.yaml: not valid YAML/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the example configuration in docs/ loads (with its environment and files stood in for)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-ex-'));
  try {
    const c = readConfig(Reader.fromFile('docs/flowpin.example.yaml'), {
      FLOWPIN_TOKEN: 'x',
      FLOWPIN_EAPI_PASSWORD: 'y',
    });
    assert.equal(c.switches[0]?.name, 'leaf1');
  } catch (err) {
    // The example names files that exist on a real host only (CA, token files): those, and only those, may be
    // missing here.
    assert.ok(
      err instanceof ConfigError && /(caFile|tokens\[\d+\]\.file): cannot read .*ENOENT/.test(err.message),
      String(err),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
