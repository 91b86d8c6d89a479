// Packaging as a user meets it: package.json's engines agree with every installed dependency
// (npm warns on none) and with the Docker base image; the Dockerfile passes a Dockerfile linter
// (dockerfile-utils, the validator of the VS Code Dockerfile language server: hadolint is not
// packaged by Debian or npm), runs as a non-root user with a HEALTHCHECK, carries the native
// reader only where it was built; the entry point picks the node binary with file capabilities
// only where the container grants both (checked under setpriv with a reduced bounding set);
// `docker-compose config` (Debian's docker-compose) validates docker-compose.yml.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { validate } from 'dockerfile-utils';
import semver from 'semver';
import { have, repoRoot, skipUnless } from './helpers/tools.js';

const read = (f: string): string => readFileSync(path.join(repoRoot, f), 'utf8');

test("engines agree with every installed dependency and with the image's base", { timeout: 30_000 }, () => {
  const pkg = JSON.parse(read('package.json')) as { engines: { node: string } };
  // The oldest Node engines admits, and the one running here: every dependency must take both (what npm's
  // EBADENGINE checks).
  const oldest = semver.minVersion(pkg.engines.node)?.version ?? '';
  assert.ok(
    semver.satisfies(process.version, pkg.engines.node),
    `engines ${pkg.engines.node} admits the Node this runs on, ${process.version}`,
  );
  const wanting: string[] = [];
  const walk = (dir: string): void => {
    for (const name of existsSync(dir) ? readdirSync(dir) : []) {
      if (name.startsWith('.')) continue;
      if (name.startsWith('@')) {
        walk(path.join(dir, name));
        continue;
      }
      const file = path.join(dir, name, 'package.json');
      if (!existsSync(file)) continue;
      const dep = JSON.parse(readFileSync(file, 'utf8')) as {
        name?: string;
        version?: string;
        engines?: { node?: string };
      };
      const want = dep.engines?.node;
      if (
        want !== undefined &&
        semver.validRange(want) !== null &&
        !(semver.satisfies(oldest, want) && semver.satisfies(process.version, want))
      )
        wanting.push(`${dep.name ?? name}@${dep.version ?? '?'} wants node ${want}`);
      walk(path.join(dir, name, 'node_modules'));
    }
  };
  walk(path.join(repoRoot, 'node_modules'));
  assert.deepEqual(wanting, [], `engines says node ${pkg.engines.node} (oldest ${oldest})`);
  for (const from of [...read('Dockerfile').matchAll(/^FROM node:(\d+)/gm)])
    assert.equal(Number(from[1]), semver.major(oldest), 'the base image is the Node engines names');
});

test(
  'the Dockerfile: lint-clean, non-root, a HEALTHCHECK, the native reader optional',
  { timeout: 30_000 },
  () => {
    const text = read('Dockerfile');
    const problems = validate(text).map(
      (d) => `line ${d.range.start.line + 1}: ${typeof d.message === 'string' ? d.message : d.message.value}`,
    );
    assert.deepEqual(problems, []);
    const final = text.slice(text.lastIndexOf('\nFROM '));
    assert.match(final, /^USER node$/m, 'the runtime stage runs as the node user');
    assert.match(final, /^HEALTHCHECK .*\n?.*\/healthz/m);
    assert.doesNotMatch(text, /COPY [^\n]*recvmmsg\.node/, 'no hard COPY of the native reader');
    assert.match(text, /setcap cap_net_raw,cap_net_admin=ep/);
    // A linter that finds nothing on anything proves little: it does find a broken file.
    assert.ok(validate('FROM node:20\nEXPOSE notaport\nHEALTHCHECK\n').length > 0);
  },
);

test(
  'the entry point runs node-net only where the container grants NET_RAW and NET_ADMIN',
  { timeout: 30_000, skip: skipUnless(have('setpriv', ['--version']), 'setpriv (util-linux)') },
  () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-entry-'));
    try {
      for (const n of ['node', 'node-net']) {
        writeFileSync(path.join(dir, n), `#!/bin/sh\necho ${n} "$@"\n`);
        chmodSync(path.join(dir, n), 0o755);
      }
      const env = { ...process.env, PATH: `${dir}:/usr/bin:/bin` };
      const entry = path.join(repoRoot, 'docker-entrypoint.sh');
      const run = (bounding: string[]): string => {
        const r = spawnSync('setpriv', [...bounding, '--', 'sh', entry, 'run', '--config', 'x.yaml'], {
          env,
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, r.stderr);
        return r.stdout.trim();
      };
      const bnd = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
      if ((BigInt(`0x${bnd}`) & 0x3000n) === 0x3000n)
        assert.equal(run([]), 'node-net /app/dist/cli/flowpin.js run --config x.yaml');
      assert.equal(
        run(['--bounding-set', '-net_admin']),
        'node /app/dist/cli/flowpin.js run --config x.yaml',
      );
      assert.equal(run(['--bounding-set', '-all']), 'node /app/dist/cli/flowpin.js run --config x.yaml');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'docker-compose config validates docker-compose.yml',
  {
    timeout: 60_000,
    skip: skipUnless(have('docker-compose', ['version']), 'docker-compose (Debian package docker-compose)'),
  },
  () => {
    const r = spawnSync('docker-compose', ['-f', path.join(repoRoot, 'docker-compose.yml'), 'config'], {
      env: { ...process.env, FLOWPIN_TOKEN: 't', FLOWPIN_EAPI_PASSWORD: 'p' },
      encoding: 'utf8',
      timeout: 50_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /cap_drop:\n\s+- ALL/);
    const broken = spawnSync('docker-compose', ['-f', '-', 'config'], {
      input: 'services:\n  x:\n    image: a\n    cap_add: NET_RAW\n    bogus_key: 1\n',
      encoding: 'utf8',
      timeout: 50_000,
    });
    assert.notEqual(broken.status, 0, 'a wrong file is refused (the check can fail)');
  },
);
