// The parent side of traffic-client.ts: opens long-lived echo connections from the lab's
// client namespace and reads their state back.

import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { LAB_HALF_PORT, LAB_PORT, LAB_VIP4, LAB_VIP6, type LabTopology } from './topology.js';

export interface TrafficReport {
  op: string;
  opened: number;
  open4: number;
  open6: number;
  /** Connections the client has half-closed whose server still sends, and those whose server then closed. */
  halfClosed: number;
  tailDone: number;
  tailBytes: number;
  broken: number;
  reasons: Record<string, number>;
  brokenFlows: { family: 4 | 6; src: string; sport: number; why: string }[];
  sent: number;
  echoed: number;
}

export class LabTraffic {
  private readonly waiters: {
    op: string;
    resolve: (r: TrafficReport) => void;
    reject: (e: Error) => void;
  }[] = [];
  private readonly child: ChildProcess;
  private exited: Error | undefined;

  constructor(lab: LabTopology) {
    this.child = lab.spawnIn(lab.client, 'traffic-client.js', []);
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const r = JSON.parse(line) as TrafficReport;
      const i = this.waiters.findIndex((w) => w.op === r.op);
      if (i >= 0) this.waiters.splice(i, 1)[0]?.resolve(r);
    });
    let stderr = '';
    this.child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    this.child.once('exit', (code) => {
      this.exited = new Error(`traffic client exited (${code}): ${stderr.slice(-500)}`);
      for (const w of this.waiters.splice(0)) w.reject(this.exited);
    });
  }

  private ask(cmd: Record<string, unknown>, answer: string, timeoutMs: number): Promise<TrafficReport> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`traffic client: no '${answer}' in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.push({
        op: answer,
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.child.stdin?.write(JSON.stringify(cmd) + '\n');
    });
  }

  /**
   * Opens `v4` + `v6` connections to the VIPs, spread over the client addresses (`port`: the echo service's
   * unless given).
   */
  open(
    lab: LabTopology,
    v4: number,
    v6: number,
    opts: { intervalMs?: number; chunk?: number; stallMs?: number; port?: number } = {},
  ): Promise<TrafficReport> {
    const { port = LAB_PORT, ...rest } = opts;
    const targets = [
      { host: LAB_VIP4, port, count: v4, local: lab.clients4 },
      { host: LAB_VIP6, port, count: v6, local: lab.clients6 },
    ].filter((t) => t.count > 0);
    return this.ask({ op: 'open', targets, ...rest }, 'opened', 30_000);
  }

  /**
   * Half-closes every open connection to the half-close port (the client's FIN once its echo
   * is complete); their servers go on sending a tail. `close()` waits up to `tailWaitMs` for the tails to
   * end.
   */
  halfClose(tailWaitMs: number): Promise<TrafficReport> {
    return this.ask({ op: 'halfClose', port: LAB_HALF_PORT, tailWaitMs }, 'half-closed', 10_000);
  }

  report(): Promise<TrafficReport> {
    return this.ask({ op: 'report' }, 'report', 10_000);
  }

  /** Stops sending, waits for every echo (and tail), closes every connection; the final counts. */
  close(timeoutMs = 30_000): Promise<TrafficReport> {
    return this.ask({ op: 'close' }, 'closed', timeoutMs);
  }

  stop(): void {
    this.child.stdin?.end();
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
