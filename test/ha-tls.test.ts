// `ha:` with TLS against a real etcd that requires client certificates (--client-cert-auth):
// certificates made for the test with openssl (a CA, a server certificate for 127.0.0.1, a
// client certificate). The configuration goes through the real loader; with caFile, certFile
// and keyFile the instance joins, owns its switch and writes its change log; without the client
// certificate etcd refuses it and start() fails within the lease TTL.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readConfig } from '../controller/config.js';
import { HaCoordinator } from '../controller/ha/coordinator.js';
import type { ChangeRecord } from '../controller/change-record.js';
import { Reader } from '../lib/validate.js';
import { until } from '../lib/until.js';
import { skipEtcd, startEtcdCluster, type EtcdCluster } from './helpers/etcd.js';
import { issueCert, makeCa } from './helpers/certs.js';
import { have, skipUnless } from './helpers/tools.js';

const skip = skipEtcd() || skipUnless(have('openssl', ['version']), 'openssl');
let dir = '';
let cluster: EtcdCluster | undefined;
const f = (n: string): string => path.join(dir, n);

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'flowpin-etcd-tls-'));
  if (skip !== false) return;
  makeCa(dir, 'flowpin test etcd CA');
  issueCert(dir, 'server', ['subjectAltName=IP:127.0.0.1', 'extendedKeyUsage=serverAuth,clientAuth']);
  issueCert(dir, 'client', ['extendedKeyUsage=clientAuth']);
  cluster = await startEtcdCluster(1, 30_000, {
    certFile: f('server.pem'),
    keyFile: f('server.key'),
    caFile: f('ca.pem'),
    clientCertFile: f('client.pem'),
    clientKeyFile: f('client.key'),
  });
});
after(async () => {
  await cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

const config = (tls: Record<string, string>) =>
  readConfig(
    Reader.fromObject('flowpin.yaml', {
      ha: { endpoints: cluster?.endpoints ?? [], tls, leaseTtlS: 2, name: 'a' },
      switches: [
        {
          name: 'leaf1',
          eapi: { url: 'https://10.0.0.1', password: 'pw' },
          vips: [{ address: '192.0.2.80', nexthops: ['10.0.1.1', '10.0.1.2'] }],
        },
      ],
    }),
    {},
  );

test(
  'with the client certificate: joins, owns its switch, writes its change log',
  { skip, timeout: 60_000 },
  async () => {
    const cfg = config({ caFile: f('ca.pem'), certFile: f('client.pem'), keyFile: f('client.key') });
    assert.ok(cfg.ha !== undefined && cfg.ha.endpoints[0]?.startsWith('https://'));
    const a = new HaCoordinator(cfg.ha, { switches: ['leaf1'], inFlight: () => false });
    await a.start();
    await until('a owns leaf1', 10_000, () => a.ownedSwitches().has('leaf1'));
    const rec = {
      id: 'c1',
      kind: 'drain',
      switch: 'leaf1',
      vip: '192.0.2.80',
      nexthop: '10.0.1.1',
      phase: 'pending',
      queuedAt: 1,
      startedAt: 2,
    } as unknown as ChangeRecord;
    await a.changeLog('leaf1').saveChanges({ changes: { leaf1: [rec] }, watch: {} });
    assert.deepEqual((await a.changeLog('leaf1').load())?.changes['leaf1']?.[0]?.id, 'c1');
    await a.stop();
  },
);

test('without the client certificate: etcd refuses, start() fails', { skip, timeout: 60_000 }, async () => {
  const cfg = config({ caFile: f('ca.pem') });
  assert.ok(cfg.ha !== undefined);
  const a = new HaCoordinator(cfg.ha, { switches: ['leaf1'], inFlight: () => false });
  await assert.rejects(a.start());
  await a.stop().catch(() => undefined);
});
