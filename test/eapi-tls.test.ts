// eAPI over HTTPS: certificate verification is on by default, a CA file makes a switch's
// certificate trusted, and skipping verification is an explicit choice. The certificates
// are made for the test with openssl: a CA and a server certificate for 127.0.0.1.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AristaEapiAdapter } from '../switch-adapters/arista-eapi/adapter.js';
import { SwitchTransportError } from '../switch-adapters/errors.js';
import { EapiServer } from '../switch-sim/eapi/server.js';
import { issueCert, makeCa } from './helpers/certs.js';
import { testSwitch } from './helpers/sim.js';
import { have, skipUnless } from './helpers/tools.js';

const skip = skipUnless(have('openssl', ['version']), 'openssl');
let dir = '';
let server: EapiServer | undefined;
let url = '';

before(() => {
  if (skip !== false) return;
  dir = mkdtempSync(path.join(tmpdir(), 'flowpin-tls-'));
  makeCa(dir);
  issueCert(dir, 'sw', ['subjectAltName=IP:127.0.0.1']);
});

after(async () => {
  await server?.stop();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

test(
  'HTTPS: verified with the CA file, refused without it, allowed when verification is skipped',
  { skip },
  async () => {
    const { sw } = testSwitch();
    server = new EapiServer(sw, {
      host: '127.0.0.1',
      port: 0,
      username: 'admin',
      password: 'pw',
      tls: { key: readFileSync(path.join(dir, 'sw.key')), cert: readFileSync(path.join(dir, 'sw.pem')) },
    });
    url = (await server.start()).url;
    assert.match(url, /^https:\/\//);
    const base = { switchName: 'sw1', url, username: 'admin', password: 'pw' };

    const trusted = new AristaEapiAdapter({ ...base, caFile: path.join(dir, 'ca.pem') });
    await trusted.connect();
    assert.deepEqual(await trusted.groupMembers('192.0.2.80'), [
      '10.0.1.1',
      '10.0.1.2',
      '10.0.1.3',
      '10.0.1.4',
    ]);
    await trusted.close();
    // A fenced write as the first request of an adapter: checked once its new connection's TLS
    // handshake is done, then sent.
    const fresh = new AristaEapiAdapter({ ...base, caFile: path.join(dir, 'ca.pem') });
    let checks = 0;
    const flow = { family: 4 as const, src: '10.9.0.1', dst: '192.0.2.80', sport: 40001, dport: 443 };
    const out = await fresh.installPins([{ flow, nexthop: '10.0.1.2', idleTimeoutS: 300 }], {
      epoch: 2n,
      validUntil: Number.MAX_SAFE_INTEGER,
      check: () => void checks++,
    });
    assert.equal(out[0]?.ok, true);
    assert.ok(checks >= 1, 'the fence was checked as the request left');
    assert.equal(sw.pins.all().length, 1);
    await fresh.close();

    const untrusted = new AristaEapiAdapter(base);
    await assert.rejects(
      untrusted.connect(),
      (e: Error) => e instanceof SwitchTransportError && /certificate/i.test(e.message),
    );
    await untrusted.close();

    const skipping = new AristaEapiAdapter({ ...base, insecureSkipVerify: true });
    await skipping.connect();
    await skipping.close();
  },
);
