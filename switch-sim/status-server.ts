// The simulator's own HTTP endpoint: its counters (connections opened / closed / reset,
// pins, table usage, groups, servers) at GET /counters, and fault control at
// PUT/DELETE /faults/eapi and /faults/gnmi. Plain node:http; it serves only the simulator.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FaultInjector, FaultPlan } from './faults.js';

export interface StatusSources {
  counters(): unknown;
  faults: Record<string, FaultInjector>;
}

export class StatusServer {
  private server: Server | undefined;

  constructor(private readonly sources: StatusSources) {}

  async start(host: string, port: number): Promise<string> {
    const server = createServer((req, res) => {
      const reply = (code: number, body: unknown): void => {
        const text = JSON.stringify(body, null, 2);
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(text);
      };
      const url = new URL(req.url ?? '/', 'http://sim');
      if (req.method === 'GET' && url.pathname === '/counters') return reply(200, this.sources.counters());
      if (req.method === 'GET' && url.pathname === '/healthz') return reply(200, { ok: true });
      const fm = /^\/faults\/(\w+)$/.exec(url.pathname);
      const injector = fm ? this.sources.faults[fm[1] as string] : undefined;
      if (fm && injector === undefined)
        return reply(404, {
          error: `no interface '${fm[1]}'; have ${Object.keys(this.sources.faults).join(', ')}`,
        });
      if (injector && req.method === 'GET')
        return reply(200, { plan: injector.current, injected: injector.injected });
      if (injector && req.method === 'DELETE') {
        injector.clear();
        return reply(200, { plan: injector.current });
      }
      if (injector && req.method === 'PUT') {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          try {
            injector.set(JSON.parse(body) as Partial<FaultPlan>);
            reply(200, { plan: injector.current });
          } catch (err) {
            reply(400, { error: err instanceof Error ? err.message : String(err) });
          }
        });
        return;
      }
      reply(404, {
        error: 'not found',
        endpoints: ['GET /counters', 'GET|PUT|DELETE /faults/eapi', 'GET|PUT|DELETE /faults/gnmi'],
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    return `http://${host.includes(':') ? `[${host}]` : host}:${a.port}`;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }
}
