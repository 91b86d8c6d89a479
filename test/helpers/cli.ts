// Runs the flowpin command as a user would, in its own process, with FLOWPIN_TOKEN and
// FLOWPIN_URL taken from `env` only; killed after 60 s. `onStart` may interrupt it (SIGINT).

import { spawn } from 'node:child_process';
import { flowpinBin } from './tools.js';

export interface Ran {
  code: number | null;
  out: string;
  err: string;
}

export function cli(
  args: string[],
  env: Record<string, string | undefined>,
  onStart?: (kill: () => void, err: () => string, out: () => string) => void,
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [flowpinBin, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FLOWPIN_TOKEN: undefined, FLOWPIN_URL: undefined, ...env },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
    onStart?.(
      () => child.kill('SIGINT'),
      () => err,
      () => out,
    );
  });
}
