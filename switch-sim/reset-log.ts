// The simulator's ground truth of broken connections: one JSON line per reset connection,
// written as it happens, for tools that check flowpin from outside (the torture runner).
// Times are wall-clock milliseconds (Date.now()), comparable with the controller's records
// and with other processes on the same machine.

import { createWriteStream, type WriteStream } from 'node:fs';

export interface ResetLine {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** The server that accepted the SYN. */
  server: string;
  /** Where the packet that broke it went (null: nowhere, no route or dropped). */
  reached: string | null;
  /** How that packet was forwarded. */
  via: 'pin' | 'ecmp' | 'drop' | 'no-route';
  /** Whether the connection ever had a programmed pin (a packet matched one, or one is programmed now). */
  pinned: boolean;
  /** When its SYN crossed the switch, and when it broke (wall-clock ms). */
  openedAt: number;
  at: number;
}

export class ResetLog {
  private readonly out: WriteStream;
  written = 0;

  constructor(readonly file: string) {
    this.out = createWriteStream(file, { flags: 'a' });
  }

  write(line: ResetLine): void {
    this.written++;
    this.out.write(`${JSON.stringify(line)}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.out.end(() => resolve()));
  }
}
