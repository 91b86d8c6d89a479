// `flowpin start` as a user runs it (simulator, live traffic, the API and the dashboard on a
// free port), for the dashboard's browser tests and the operator CLI's tests; and Debian's
// chromium driven by playwright-core.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { waitFor } from '../../lib/until.js';
import { flowpinBin } from './tools.js';

export interface Demo {
  api: string;
  token: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
}

/** Waits for a value (lib/until.ts), as the demo's tests call it. */
export const until = waitFor;

/**
 * The demo for the dashboard and CLI tests: SYNs mirrored only and lognormal lifetimes (the
 * simulator's plain model), so that a flow they pick stays tracked while they look at it;
 * `flowpin start`'s own defaults (FIN/RST both ways, realistic closes) are what quickstart.test runs.
 */
export async function startDemo(token: string, extra: string[] = []): Promise<Demo> {
  const child = spawn(
    process.execPath,
    [
      flowpinBin,
      'start',
      '--no-state',
      '--api-port',
      '0',
      '--eapi-port',
      '0',
      '--gnmi-port',
      '0',
      '--status-port',
      '0',
      '--mirror',
      '127.0.0.1:0',
      '--rate',
      '60',
      ...extra,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FLOWPIN_TOKEN: token, FLOWPIN_LOG_LEVEL: 'warn' },
    },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const demo: Demo = {
    api: '',
    token,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const [code] = (await once(child, 'exit')) as [number | null];
      clearTimeout(t);
      return code;
    },
  };
  try {
    demo.api = await until(
      () => /counters http:\S+\/counters/.test(out) && /API (http:\S+)/.exec(out)?.[1],
      20_000,
      `flowpin start (output: ${out})`,
    );
    // Wait until the controller is ready and has learned flows on every nexthop.
    await until(
      async () => {
        const r = await fetch(`${demo.api}/api/v1/switches/sim1/vips`);
        const v = (await r.json()) as { vips: { nexthops: { tracked: number }[] }[] };
        return (
          (await fetch(`${demo.api}/readyz`)).status === 200 &&
          (v.vips[0]?.nexthops.every((n) => n.tracked > 5) ?? false)
        );
      },
      20_000,
      'a ready controller with tracked flows',
    );
  } catch (err) {
    await demo.stop();
    throw err;
  }
  return demo;
}

export const CHROMIUM = '/usr/bin/chromium';
export const haveChromium = (): boolean => existsSync(CHROMIUM);
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
