// One flowpin per state file: a second `flowpin run` on a state file in use fails at once,
// naming the file and the holder's pid, before it connects to any switch (a real TCP listener
// stands where the switch's eAPI would be and counts connections); a stale lock (its pid gone)
// is taken over; the lock is removed when its holder releases it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { lockStateFile, StateLockError } from '../controller/state-lock.js';
import { flowpinBin } from './helpers/tools.js';

test(
  'a second flowpin run on a state file in use fails at once, naming the file and pid, before touching a switch',
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-lock-'));
    let connections = 0;
    const sw = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => sw.listen(0, '127.0.0.1', r));
    const port = (sw.address() as { port: number }).port;
    const stateFile = path.join(dir, 'state.json');
    const cfg = path.join(dir, 'flowpin.yaml');
    writeFileSync(
      cfg,
      `api: { host: 127.0.0.1, port: 0, token: t0k3n-for-lock-test }
mirror: { udp: [{ host: 127.0.0.1, port: 0 }] }
stateFile: ${stateFile}
switches:
  - name: leaf1
    adapter: arista-eapi
    eapi: { url: "https://127.0.0.1:${port}/command-api", username: flowpin, password: pw, insecureSkipVerify: true, groupTemplate: static-ecmp }
    vips: [{ address: 192.0.2.80, nexthops: [10.0.1.1, 10.0.1.2] }]
`,
    );
    const held = lockStateFile(stateFile);
    try {
      const child = spawn(process.execPath, [flowpinBin, 'run', '--config', cfg], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await new Promise<number | null>((r) => child.on('exit', r));
      clearTimeout(kill);
      assert.equal(code, 1, err);
      assert.ok(err.includes(stateFile), err);
      assert.ok(err.includes(`pid ${process.pid}`), err);
      assert.equal(connections, 0, 'nothing connected to the switch');
    } finally {
      held.release();
      sw.close();
    }
    assert.equal(existsSync(`${stateFile}.lock`), false, 'released: the lock file is gone');
    rmSync(dir, { recursive: true, force: true });
  },
);

test(
  'a stale lock (its pid gone) is taken over; a live one is refused in-process too',
  { timeout: 30_000 },
  () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-lock-'));
    try {
      const stateFile = path.join(dir, 'state.json');
      const gone = spawnSync(process.execPath, [
        '-e',
        'process.stdout.write(String(process.pid))',
      ]).stdout.toString();
      writeFileSync(`${stateFile}.lock`, `pid ${gone}\nsince 2020-01-01T00:00:00.000Z\n`);
      const lock = lockStateFile(stateFile);
      assert.match(readFileSync(`${stateFile}.lock`, 'utf8'), new RegExp(`^pid ${process.pid}$`, 'm'));
      lock.release();
      assert.equal(existsSync(`${stateFile}.lock`), false);
      // A lock held by a running process (pid 1 always runs) is not taken.
      writeFileSync(`${stateFile}.lock`, 'pid 1\n');
      assert.throws(
        () => lockStateFile(stateFile),
        (e: unknown) => e instanceof StateLockError && e.holderPid === 1 && e.message.includes(stateFile),
      );
      assert.match(readFileSync(`${stateFile}.lock`, 'utf8'), /^pid 1$/m, 'the live lock is left alone');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
