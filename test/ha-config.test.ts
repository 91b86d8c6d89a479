// The `ha:` section: absent, flowpin runs alone (ha undefined); present, defaults (TTL 5 s,
// prefix /flowpin/, the host name, the API address) and the rules a schema cannot say, each
// error naming the key.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { readConfig } from '../controller/config.js';
import { ConfigError, Reader } from '../lib/validate.js';

const doc = (ha?: Record<string, unknown>) => ({
  api: { host: '10.0.8.11', port: 8080 },
  ...(ha === undefined ? {} : { ha }),
  switches: [
    {
      name: 'leaf1',
      eapi: { url: 'https://10.0.0.1', password: 'pw' },
      vips: [{ address: '192.0.2.80', nexthops: ['10.0.1.1', '10.0.1.2'] }],
    },
  ],
});
const read = (ha?: Record<string, unknown>) => readConfig(Reader.fromObject('f.yaml', doc(ha)), {});

test('without ha: flowpin runs alone', { timeout: 10_000 }, () => {
  assert.equal(read().ha, undefined);
});

test('ha: defaults', { timeout: 10_000 }, () => {
  const c = read({ endpoints: ['http://127.0.0.1:2379'] });
  assert.deepEqual(c.ha, {
    endpoints: ['http://127.0.0.1:2379'],
    tls: undefined,
    leaseTtlS: 5,
    auditIntervalS: 60,
    prefix: '/flowpin/',
    name: hostname(),
    apiAddress: 'http://10.0.8.11:8080',
  });
});

test('ha: refused with the key named', { timeout: 10_000 }, () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ endpoints: [] }, /ha\.endpoints/],
    [{ endpoints: ['127.0.0.1:2379'] }, /ha\.endpoints\[0\].*URL/],
    [{ endpoints: ['http://127.0.0.1:2379/v3'] }, /ha\.endpoints\[0\]/],
    [{ endpoints: ['http://a:1', 'http://a:1'] }, /ha\.endpoints\[1\].*twice/],
    [{ endpoints: ['http://a:1', 'https://b:1'], tls: { caFile: '/etc/passwd' } }, /ha\.endpoints.*mixes/],
    [{ endpoints: ['https://a:1'] }, /ha\.tls.*caFile/],
    [{ endpoints: ['http://a:1'], tls: { caFile: '/etc/passwd' } }, /ha\.tls.*http/],
    [{ endpoints: ['https://a:1'], tls: { caFile: '/nonexistent/ca.pem' } }, /ha\.tls\.caFile/],
    [
      { endpoints: ['https://a:1'], tls: { caFile: '/etc/passwd', certFile: '/etc/passwd' } },
      /ha\.tls\.keyFile/,
    ],
    [{ endpoints: ['http://a:1'], prefix: 'flowpin' }, /ha\.prefix/],
    [{ endpoints: ['http://a:1'], leaseTtlS: 1 }, /ha\.leaseTtlS/],
    [{ endpoints: ['http://a:1'], auditIntervalS: 0 }, /ha\.auditIntervalS/],
    [{ endpoints: ['http://a:1'], name: 'a/b' }, /ha\.name/],
    [{ endpoints: ['http://a:1'], apiAddress: 'nowhere' }, /ha\.apiAddress/],
    [{ endpoints: ['http://a:1'], lease: 5 }, /ha/],
  ];
  for (const [ha, re] of cases)
    assert.throws(
      () => read(ha),
      (err: unknown) => err instanceof ConfigError && re.test(err.message),
      JSON.stringify(ha),
    );
});
