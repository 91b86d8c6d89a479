// TLS to switches is verified unless the configuration says otherwise, and saying otherwise is
// warned about; secret files readable by group or others, and a configuration readable by
// others that holds a secret inline, are named (never the secret). `flowpin run` logs them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../controller/config.js';
import { securityWarnings } from '../cli/security-warnings.js';
import { until } from './helpers/demo.js';
import { proc } from './helpers/processes.js';
import { flowpinBin } from './helpers/tools.js';

const SECRET = 'hunter2-not-to-be-logged';

function write(dir: string, name: string, text: string, mode: number): string {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  chmodSync(f, mode);
  return f;
}

function configText(dir: string, eapi: string, gnmi = ''): string {
  return [
    'api: { host: 127.0.0.1, port: 0, token: env:HOME }',
    'mirror: { udp: [{ host: 127.0.0.1, port: 0 }] }',
    `stateFile: ${path.join(dir, 'state')}`,
    'switches:',
    '  - name: leaf1',
    '    adapter: arista-eapi',
    '    mirrorSources: [127.0.0.9]',
    `    eapi: { ${eapi}, username: admin, groupTemplate: static-ecmp }`,
    '    vips: [{ address: 192.0.2.80, nexthops: [10.0.1.1, 10.0.1.2] }]',
    gnmi,
    '',
  ].join('\n');
}

test(
  'verified TLS and private secrets: no warning; each weakening named, without the secret',
  { timeout: 10_000 },
  () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-sec-'));
    try {
      const ca = write(dir, 'ca.pem', 'not read here', 0o644);
      const tight = write(dir, 'pw-600', SECRET, 0o600);
      const loose = write(dir, 'pw-644', SECRET, 0o644);
      const group = write(dir, 'pw-640', SECRET, 0o640);
      const ok = write(
        dir,
        'ok.yaml',
        configText(dir, `url: 'https://127.0.0.1:1', caFile: ${ca}, password: 'file:${tight}'`),
        0o644,
      );
      assert.deepEqual(securityWarnings(loadConfig(ok), ok), []);

      const skip = write(
        dir,
        'skip.yaml',
        configText(dir, `url: 'https://127.0.0.1:1', insecureSkipVerify: true, password: 'file:${loose}'`),
        0o600,
      );
      const w1 = securityWarnings(loadConfig(skip), skip);
      assert.equal(w1.length, 2, w1.join('\n'));
      assert.match(
        w1[0] ?? '',
        /^switches\.leaf1\.eapi\.insecureSkipVerify: the switch's TLS certificate is not verified/,
      );
      assert.match(
        w1[1] ?? '',
        new RegExp(
          `^switches\\[0\\]\\.eapi\\.password: the secret file ${loose.replace(/[.]/g, '\\.')} is readable by its group and others \\(mode 644\\)`,
        ),
      );

      const plain = write(
        dir,
        'plain.yaml',
        configText(dir, `url: 'http://127.0.0.1:1', password: '${SECRET}'`),
        0o644,
      );
      const w2 = securityWarnings(loadConfig(plain), plain);
      assert.match(w2.join('\n'), /eapi\.url: plain http/);
      assert.match(
        w2.join('\n'),
        /plain\.yaml: holds a secret inline and is readable by its group and others \(mode 644\)/,
      );

      const grp = write(
        dir,
        'grp.yaml',
        configText(dir, `url: 'https://127.0.0.1:1', caFile: ${ca}, password: 'file:${group}'`),
        0o600,
      );
      assert.match(securityWarnings(loadConfig(grp), grp).join('\n'), /readable by its group \(mode 640\)/);
      for (const w of [...w1, ...w2]) assert.ok(!w.includes(SECRET), 'no secret in a warning');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'flowpin run logs the warnings at start (never the secret) and still runs',
  { timeout: 30_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-sec-'));
    try {
      const loose = write(dir, 'pw', SECRET, 0o644);
      const cfg = write(
        dir,
        'flowpin.yaml',
        configText(dir, `url: 'https://127.0.0.1:1', insecureSkipVerify: true, password: 'file:${loose}'`),
        0o600,
      );
      const p = proc([flowpinBin, 'run', '--config', cfg]);
      try {
        await until(() => /API http/.test(p.out()), 20_000, `flowpin run (output: ${p.out()})`);
        const warnings = p
          .out()
          .split('\n')
          .filter((l) => l.includes('configuration weakens security'));
        assert.equal(warnings.length, 2, p.out());
        assert.ok(
          warnings.every((l) => (JSON.parse(l) as { level: number }).level === 40),
          'logged as warnings',
        );
        assert.ok(!p.out().includes(SECRET), 'the secret is not in the output');
      } finally {
        await p.stop();
      }
      assert.equal((await p.exit)[0], 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
