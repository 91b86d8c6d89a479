// Test network namespaces: made with a unique name, loopback up, always removed after.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export class TestNetns {
  readonly name = `fptest-${process.pid}-${randomBytes(3).toString('hex')}`;

  constructor() {
    execFileSync('ip', ['netns', 'add', this.name]);
    execFileSync('ip', ['-n', this.name, 'link', 'set', 'lo', 'up']);
  }

  exec(cmd: string, args: string[], input?: string): string {
    return execFileSync('ip', ['netns', 'exec', this.name, cmd, ...args], {
      input,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: 30_000,
    }).toString();
  }

  spawn(cmd: string, args: string[]): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  remove(): void {
    execFileSync('ip', ['netns', 'del', this.name]);
  }
}
