// The command line's help and shell completion, as a user meets them: `flowpin CMD --help`
// (and `-h`, `flowpin help CMD`) exits 0 with the command's options and examples for every
// command; every option an operator command's help lists is one its parser takes; the bash
// and zsh scripts of `flowpin completion`, sourced into real shells, complete commands,
// options and option values, and fall back to file names.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { COMMANDS, optionsOf } from '../cli/help.js';
import { OPTIONS } from '../cli/ops.js';
import { flowpinBin, have, skipUnless } from './helpers/tools.js';

const flowpin = (args: string[]) =>
  spawnSync(process.execPath, [flowpinBin, ...args], { encoding: 'utf8', timeout: 30_000 });

test('every command answers --help with exit 0, its options and examples', { timeout: 120_000 }, () => {
  for (const c of COMMANDS) {
    const r = flowpin([c.name, '--help']);
    assert.equal(r.status, 0, `${c.name} --help: ${r.stderr}`);
    assert.ok(r.stdout.startsWith(`flowpin ${c.name}: `), r.stdout);
    assert.match(r.stdout, /\nexamples:\n {2}\S/, `${c.name} has examples`);
    assert.doesNotMatch(`${r.stdout}${r.stderr}`, /Unknown option/);
  }
  // The cases users reported, and the other spellings.
  assert.equal(flowpin(['drain', '10.0.1.2', '-h']).status, 0);
  assert.equal(flowpin(['start', '--rate', '5', '--help']).status, 0);
  assert.equal(flowpin(['help', 'remove']).stdout, flowpin(['remove', '--help']).stdout);
  const all = flowpin(['--help']);
  assert.equal(all.status, 0);
  for (const c of COMMANDS) assert.match(all.stdout, new RegExp(`\\n {2}${c.name} +\\S`), `${c.name} listed`);
  const unknown = flowpin(['help', 'nope']);
  assert.equal(unknown.status, 2);
  // A usage error points at the help instead of printing every command's.
  const bad = flowpin(['drain', '10.0.1.2', '--bogus', '--url', 'http://127.0.0.1:1']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /flowpin drain: Unknown option '--bogus'.*\nsee 'flowpin drain --help'\n$/s);
});

test("every option an operator command's help lists is one its parser takes", { timeout: 10_000 }, () => {
  const known = new Set(
    Object.entries(OPTIONS).flatMap(([long, o]) => [`--${long}`, ...('short' in o ? [`-${o.short}`] : [])]),
  );
  for (const c of COMMANDS.filter((x) => x.operator)) {
    for (const [spec] of optionsOf(c))
      for (const part of spec.split(', '))
        assert.ok(known.has(part.split(' ')[0] ?? ''), `${c.name}: ${part}`);
  }
});

/** A directory with a `flowpin` on PATH that runs this build, as an installed one would. */
function shim(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-completion-'));
  writeFileSync(path.join(dir, 'flowpin'), `#!/bin/sh\nexec "${process.execPath}" "${flowpinBin}" "$@"\n`);
  chmodSync(path.join(dir, 'flowpin'), 0o755);
  writeFileSync(path.join(dir, 'capture.pcap'), '');
  return dir;
}

test(
  'bash completion: commands, options, option values, shells, then file names',
  { timeout: 60_000 },
  () => {
    const dir = shim();
    try {
      const complete = (words: string[]): string[] => {
        const script = `source <(flowpin completion bash)\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})\nCOMP_CWORD=${words.length - 1}\n_flowpin\nprintf '%s\\n' "\${COMPREPLY[@]}"`;
        const r = spawnSync('bash', ['-c', script], {
          cwd: dir,
          encoding: 'utf8',
          env: { ...process.env, PATH: `${dir}:${process.env['PATH'] ?? ''}` },
          timeout: 20_000,
        });
        assert.equal(r.status, 0, r.stderr);
        return r.stdout.split('\n').filter((l) => l !== '');
      };
      assert.deepEqual(complete(['flowpin', 'dr']), ['drain']);
      assert.deepEqual(complete(['flowpin', 'ch']), ['changes', 'change']);
      assert.ok(complete(['flowpin', 'drain', '--']).includes('--dry-run'));
      assert.deepEqual(complete(['flowpin', 'pins', '--state', 'i']), ['installed']);
      assert.deepEqual(complete(['flowpin', 'status', '-o', '']), ['json', 'text']);
      assert.deepEqual(complete(['flowpin', 'start', '--pin-mode', '']), ['on-change', 'always']);
      assert.deepEqual(complete(['flowpin', 'completion', '']), ['bash', 'zsh']);
      assert.deepEqual(
        complete(['flowpin', 'decode', 'cap']),
        ['capture.pcap'],
        'a file argument completes file names',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'zsh completion: the same candidates through compadd, file names through _files',
  { timeout: 60_000, skip: skipUnless(have('zsh', ['--version']), 'zsh') },
  () => {
    const dir = shim();
    try {
      const complete = (words: string[]): string[] => {
        // compadd and _files stand for zsh's completion system, recording what the function offers.
        const script = `compadd() { [[ $1 == -- ]] && shift; print -l -- "$@"; }\n_files() { print -- '<files>'; }\ncompdef() { :; }\nsource <(flowpin completion zsh)\nwords=(${words.map((w) => `'${w}'`).join(' ')})\nCURRENT=${words.length}\n_flowpin`;
        const r = spawnSync('zsh', ['-f', '-c', script], {
          cwd: dir,
          encoding: 'utf8',
          env: { ...process.env, PATH: `${dir}:${process.env['PATH'] ?? ''}` },
          timeout: 20_000,
        });
        assert.equal(r.status, 0, r.stderr);
        return r.stdout.split('\n').filter((l) => l !== '');
      };
      assert.deepEqual(complete(['flowpin', 'dr']), ['drain']);
      assert.deepEqual(complete(['flowpin', 'pins', '--state', 'f']), ['failed']);
      assert.ok(complete(['flowpin', 'remove', '--']).includes('--dry-run'));
      assert.deepEqual(complete(['flowpin', 'decode', 'cap']), ['<files>']);
      const syntax = spawnSync('zsh', ['-n', '-c', flowpin(['completion', 'zsh']).stdout], {
        encoding: 'utf8',
      });
      assert.equal(syntax.status, 0, syntax.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
