// A real etcd cluster for the high-availability tests and benchmarks: Debian's etcd-server
// (`etcd` on the PATH), three members on loopback with free ports and temporary data
// directories. A member can be stopped, killed, paused (SIGSTOP) and resumed, or started
// again on its data directory; teardown has deadlines.
// Each member is healthy when its client port answers GET /health with {"health":"true"}.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { until } from './until.js';

/** A port nobody listens on now (the kernel's pick, released at once). */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  /** The running process, undefined while stopped. */
  readonly child: ChildProcess | undefined;
  out(): string;
  /** SIGTERM (SIGKILL after 5 s); resolves once it has exited. */
  stop(): Promise<void>;
  /** SIGKILL; resolves once it has exited. */
  kill(): Promise<void>;
  /** SIGSTOP: the process keeps its sockets and answers nothing. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Starts it again on its data directory. */
  start(): void;
  healthy(): Promise<boolean>;
}

export interface EtcdCluster {
  readonly members: EtcdMember[];
  readonly endpoints: string[];
  /** Resolves once `n` members (all by default) answer healthy; throws past `ms`. */
  waitHealthy(ms?: number, n?: number): Promise<void>;
  /** Kills every member and removes the data directories. */
  close(): Promise<void>;
}

const ETCD = 'etcd';

async function exited(child: ChildProcess, signal: NodeJS.Signals, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = once(child, 'exit');
  child.kill('SIGCONT');
  child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), ms);
  await gone;
  clearTimeout(t);
}

/** Starts an `n`-member cluster (3 by default) and waits until every member is healthy. */
export async function startEtcdCluster(n = 3, healthyMs = 30_000): Promise<EtcdCluster> {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-etcd-'));
  const ports: { client: number; peer: number }[] = [];
  for (let i = 0; i < n; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const token = `flowpin-test-${process.pid}-${Date.now()}`;
  const initial = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(',');
  const members = ports.map((p, i) => member(`m${i}`, p, path.join(dir, `m${i}`), initial, token));
  for (const m of members) m.start();
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl),
    async waitHealthy(ms = healthyMs, want = members.length) {
      await until(`${want} healthy etcd members`, ms, async () => {
        const ok = await Promise.all(members.map((m) => m.healthy()));
        return ok.filter(Boolean).length >= want;
      });
    },
    async close() {
      await Promise.all(members.map((m) => m.kill()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await cluster.waitHealthy();
  } catch (err) {
    const logs = members.map((m) => `--- ${m.name}\n${m.out().slice(-2000)}`).join('\n');
    await cluster.close();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${logs}`);
  }
  return cluster;
}

function member(
  name: string,
  ports: { client: number; peer: number },
  dataDir: string,
  initialCluster: string,
  token: string,
): EtcdMember {
  const clientUrl = `http://127.0.0.1:${ports.client}`;
  const peerUrl = `http://127.0.0.1:${ports.peer}`;
  let child: ChildProcess | undefined;
  let out = '';
  return {
    name,
    clientUrl,
    peerUrl,
    get child() {
      return child;
    },
    out: () => out,
    start() {
      if (child !== undefined) throw new Error(`etcd member ${name} is running`);
      const c = spawn(
        ETCD,
        [
          '--name',
          name,
          '--data-dir',
          dataDir,
          '--listen-client-urls',
          clientUrl,
          '--advertise-client-urls',
          clientUrl,
          '--listen-peer-urls',
          peerUrl,
          '--initial-advertise-peer-urls',
          peerUrl,
          '--initial-cluster',
          initialCluster,
          '--initial-cluster-state',
          'new',
          '--initial-cluster-token',
          token,
          '--log-level',
          'warn',
          '--logger',
          'zap',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      c.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
      c.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
      c.once('exit', () => {
        if (child === c) child = undefined;
      });
      child = c;
    },
    async stop() {
      if (child !== undefined) await exited(child, 'SIGTERM', 5000);
    },
    async kill() {
      if (child !== undefined) await exited(child, 'SIGKILL', 5000);
    },
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    async healthy() {
      if (child === undefined) return false;
      try {
        const r = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
        const body = (await r.json()) as { health?: unknown };
        return body.health === 'true';
      } catch {
        return false;
      }
    },
  };
}
