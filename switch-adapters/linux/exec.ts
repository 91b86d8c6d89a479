// Runs the router's `ip` and `nft` through a configurable command prefix (`ip netns exec NS`,
// `ssh router`, or nothing), argv-only: no shell ever sees a name or an address, and every
// word that reaches a command line is validated first (see validate.ts). Failures carry the
// command's text and what it printed, as SwitchCommandError / SwitchTimeoutError.

import { spawn } from 'node:child_process';
import { SwitchCommandError, SwitchTimeoutError, SwitchTransportError } from '../errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CommandRunnerOptions {
  switchName: string;
  /** Words put before every command, e.g. ['ip', 'netns', 'exec', 'router1']. */
  prefix: readonly string[];
  timeoutMs: number;
}

/**
 * Words allowed in a prefix: no shell metacharacters, so a remote shell cannot be told more than it was
 * given.
 */
const PREFIX_WORD = /^[A-Za-z0-9_./:@=+,%-]+$/;

export function checkPrefix(prefix: readonly string[]): string | undefined {
  for (const w of prefix)
    if (!PREFIX_WORD.test(w))
      return `prefix word '${w}' may hold letters, digits and _ . / : @ = + , % - only`;
  return undefined;
}

export class CommandRunner {
  constructor(readonly options: CommandRunnerOptions) {
    const bad = checkPrefix(options.prefix);
    if (bad !== undefined) throw new Error(bad);
  }

  /** Text of a command as the error messages show it. */
  text(argv: readonly string[]): string {
    return [...this.options.prefix, ...argv].join(' ');
  }

  /** Runs a command; resolves with its exit code and output whatever the code. */
  run(argv: readonly string[], input?: string): Promise<RunResult> {
    const all = [...this.options.prefix, ...argv];
    const [cmd, ...args] = all;
    if (cmd === undefined) return Promise.reject(new Error('empty command'));
    const name = this.options.switchName;
    return new Promise<RunResult>((resolve, reject) => {
      const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, this.options.timeoutMs);
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new SwitchTransportError(name, `cannot run '${this.text(argv)}': ${e.message}`, { cause: e }));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        if (timedOut) {
          reject(
            new SwitchTimeoutError(
              name,
              `'${this.text(argv)}' did not finish in ${this.options.timeoutMs} ms`,
            ),
          );
          return;
        }
        resolve({
          code: code ?? -1,
          stdout: Buffer.concat(out).toString(),
          stderr: Buffer.concat(err).toString(),
        });
      });
      // A command that exits before reading its input closes the pipe: that is its answer, not ours.
      child.stdin.on('error', () => undefined);
      child.stdin.end(input ?? '');
    });
  }

  /** Runs a command that must succeed; its stdout. */
  async ok(argv: readonly string[], input?: string): Promise<string> {
    const r = await this.run(argv, input);
    if (r.code !== 0)
      throw new SwitchCommandError(
        this.options.switchName,
        this.text(argv),
        firstLines(r.stderr || r.stdout),
        r.code,
      );
    return r.stdout;
  }

  /** Runs a command that must succeed and print JSON. */
  async json(argv: readonly string[], input?: string): Promise<unknown> {
    const text = await this.ok(argv, input);
    try {
      return text.trim() === '' ? [] : (JSON.parse(text) as unknown);
    } catch (e) {
      throw new SwitchCommandError(
        this.options.switchName,
        this.text(argv),
        `unreadable JSON: ${firstLines(text)}`,
        0,
        { cause: e },
      );
    }
  }
}

export function firstLines(text: string, n = 4): string {
  return text.trim().split('\n').slice(0, n).join(' | ');
}
