// A real etcd cluster for the high-availability tests and benchmarks: Debian's etcd-server
// (`etcd` on the PATH), three members on loopback with free ports and temporary data
// directories. A member can be stopped, killed, paused (SIGSTOP) and resumed, or started
// again on its data directory; teardown has deadlines.
// Each member is healthy when its client port answers GET /health with {"health":"true"}.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
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

/** Client TLS for the members: their certificate and key, and the CA their clients' certificates need. */
export interface EtcdTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

async function exited(child: ChildProcess, signal: NodeJS.Signals, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = once(child, 'exit');
  child.kill('SIGCONT');
  child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), ms);
  await gone;
  clearTimeout(t);
}

/**
 * Starts an `n`-member cluster (3 by default) and waits until every member is healthy. With
 * `tls`, clients speak https and must present a certificate the CA signed (--client-cert-auth).
 */
export async function startEtcdCluster(
  n = 3,
  healthyMs = 30_000,
  tls?: EtcdTls & { clientCertFile: string; clientKeyFile: string },
  /** The members' clients are also served on these addresses (other network namespaces' routes to them). */
  alsoListen?: string | readonly string[],
): Promise<EtcdCluster> {
  // A free port found here can be taken by another process before etcd binds it: such a start is
  // tried again on other ports (a few times), any other failure is reported with the members' logs.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(n, healthyMs, tls, alsoListen);
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt >= 4) throw err;
    }
  }
}

class PortTaken extends Error {}

async function startOnce(
  n: number,
  healthyMs: number,
  tls: (EtcdTls & { clientCertFile: string; clientKeyFile: string }) | undefined,
  alsoListen: string | readonly string[] | undefined,
): Promise<EtcdCluster> {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-etcd-'));
  const ports: { client: number; peer: number }[] = [];
  for (let i = 0; i < n; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const token = `flowpin-test-${process.pid}-${Date.now()}`;
  const initial = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(',');
  const members = ports.map((p, i) =>
    member(`m${i}`, p, path.join(dir, `m${i}`), initial, token, tls, alsoListen),
  );
  for (const m of members) m.start();
  const taken = (): boolean => members.some((m) => m.out().includes('address already in use'));
  const healthy = async (want: number): Promise<boolean> =>
    (await Promise.all(members.map((m) => m.healthy()))).filter(Boolean).length >= want;
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl),
    async waitHealthy(ms = healthyMs, want = members.length) {
      await until(`${want} healthy etcd members`, ms, () => healthy(want));
    },
    async close() {
      await Promise.all(members.map((m) => m.kill()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await until(`${n} healthy etcd members`, healthyMs, async () => taken() || (await healthy(n)));
    if (taken()) throw new PortTaken('a member could not bind its port');
  } catch (err) {
    const logs = members.map((m) => `--- ${m.name}\n${m.out().slice(-2000)}`).join('\n');
    await cluster.close();
    if (err instanceof PortTaken) throw err;
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
  tls: (EtcdTls & { clientCertFile: string; clientKeyFile: string }) | undefined,
  alsoListen: string | readonly string[] | undefined,
): EtcdMember {
  const scheme = tls === undefined ? 'http' : 'https';
  const clientUrl = `${scheme}://127.0.0.1:${ports.client}`;
  const listenUrls = [
    clientUrl,
    ...[alsoListen ?? []].flat().map((a) => `${scheme}://${a}:${ports.client}`),
  ].join(',');
  const tlsArgs =
    tls === undefined
      ? []
      : [
          '--cert-file',
          tls.certFile,
          '--key-file',
          tls.keyFile,
          '--trusted-ca-file',
          tls.caFile,
          '--client-cert-auth',
        ];
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
          listenUrls,
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
          ...tlsArgs,
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
        const text =
          tls === undefined
            ? await (await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) })).text()
            : await httpsText(`${clientUrl}/health`, tls);
        return (JSON.parse(text) as { health?: unknown }).health === 'true';
      } catch {
        return false;
      }
    },
  };
}

/** GET over https with the cluster's CA and a client certificate; the body, within a second. */
function httpsText(
  url: string,
  tls: EtcdTls & { clientCertFile: string; clientKeyFile: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(
      url,
      {
        ca: readFileSync(tls.caFile),
        cert: readFileSync(tls.clientCertFile),
        key: readFileSync(tls.clientKeyFile),
        timeout: 1000,
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(body));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}
