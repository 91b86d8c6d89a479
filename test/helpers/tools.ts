// Helpers for tests that drive external tools (scapy, tshark, ip netns): locate them, run
// them, and decide whether a test may skip. Under CI=true nothing skips: a missing tool fails.

import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const flowpinBin = path.join(repoRoot, 'dist/cli/flowpin.js');
export const fixture = (name: string): string => path.join(repoRoot, 'test/fixtures', name);
/** Debian's python, where python3-scapy installs. */
export const systemPython = '/usr/bin/python3';

export function have(cmd: string, args: string[] = ['--version']): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

export function haveScapy(): boolean {
  return spawnSync(systemPython, ['-c', 'import scapy.all'], { stdio: 'ignore' }).status === 0;
}

export const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * The reason to skip, or false to run. Under CI=true a missing prerequisite is a failure,
 * so this throws instead of skipping.
 */
export function skipUnless(ok: boolean, what: string): string | false {
  if (ok) return false;
  if (process.env['CI'] === 'true')
    throw new Error(`CI=true and ${what} is missing: .ci/run must install it`);
  return `${what} is missing`;
}

export function run(cmd: string, args: string[], input?: Buffer): string {
  return execFileSync(cmd, args, {
    input,
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['pipe', 'pipe', 'pipe'],
  }).toString();
}
