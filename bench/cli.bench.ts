// Command-line start-up. Whole processes, as an operator runs them, interleaved round by round
// so that machine load hits all alike: bare `node -e 0` (the floor), `flowpin help`,
// `flowpin drain --help`, `flowpin __complete dr` (what each TAB costs) and `flowpin status`
// against a real HTTP server on loopback that answers the calls status makes (so the figure
// is start-up plus two local round trips, not the controller's work). Wall time per run; the
// figure is the median, and the part above bare Node is what flowpin adds.

import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { repeated, runContext, type BenchOutput, type Figure } from './results.js';

export interface CliBenchOptions {
  runs: number;
}
export const CLI_FULL: CliBenchOptions = { runs: 15 };
export const CLI_TINY: CliBenchOptions = { runs: 1 };

const flowpinBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/flowpin.js');

/** Answers /readyz, /api/v1/switches and a switch's VIPs as a controller with one switch would. */
function fakeController(): Promise<{ url: string; server: Server }> {
  const sw = {
    name: 'sw1',
    adapter: 'arista-eapi',
    connected: true,
    inSync: true,
    blocked: null,
    lastError: null,
    flows: 0,
    pins: { installed: 0, free: 1500, capacity: 1500, failed: 0 },
  };
  const server = createServer((req, res) => {
    const body =
      req.url === '/readyz'
        ? { ready: true, switches: [sw] }
        : req.url === '/api/v1/switches'
          ? { switches: [sw] }
          : {
              vips: [
                {
                  address: '192.0.2.80',
                  nexthops: [{ address: '10.0.1.1', state: 'active', tracked: 0, pinned: 0, inGroup: true }],
                },
              ],
            };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server }),
    ),
  );
}

/** One whole process's wall time; spawned asynchronously, so the loopback server here keeps answering. */
function wall(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(t);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) reject(new Error(`node ${args.join(' ')} exited ${code}: ${err.slice(-300)}`));
      else resolve(ms);
    });
  });
}

export const CLI_ABOUT = `
**What runs.** Whole processes, one after another in each round so that machine load hits all
alike: bare \`node -e 0\` (the floor: Node's own start-up), \`flowpin help\`, \`flowpin drain
--help\`, \`flowpin __complete dr\` (what one TAB of shell completion costs) and \`flowpin
status\` against an HTTP server on loopback that answers the two calls \`status\` makes (start-up,
the API client, two local round trips and the table). The figure is the median wall time; the
commands import only the module of the command that runs (the controller, fastify, gRPC and the
simulator are not loaded for an operator command). The target, 300 ms, is for the operator
commands on this machine; bare Node's row shows how much of it is Node itself.
`;

export async function cliBench(opts: CliBenchOptions = CLI_FULL): Promise<BenchOutput> {
  const measured = runContext();
  const { url, server } = await fakeController();
  try {
    const cases: [string, string, string[]][] = [
      ['cli.node_bare_ms', '`node -e 0` (bare Node, the floor)', ['-e', '0']],
      ['cli.help_ms', '`flowpin help`', [flowpinBin, 'help']],
      ['cli.drain_help_ms', '`flowpin drain --help`', [flowpinBin, 'drain', '--help']],
      ['cli.complete_ms', '`flowpin __complete dr` (one TAB)', [flowpinBin, '__complete', 'dr']],
      ['cli.status_ms', '`flowpin status` against a local API', [flowpinBin, 'status', '--url', url]],
    ];
    const runs = new Map<string, number[]>(cases.map(([id]) => [id, []]));
    for (let r = 0; r < opts.runs; r++)
      for (const [id, , args] of cases) runs.get(id)?.push(await wall(args));
    const figures: Figure[] = cases.map(([id, what]) => {
      const isBare = id === 'cli.node_bare_ms';
      const f = repeated(
        {
          id,
          what,
          unit: 'ms',
          target: isBare ? '' : '< 300',
          met: true,
          ...(isBare ? { isBaseline: true } : { baseline: 'cli.node_bare_ms' }),
        },
        runs.get(id) ?? [],
      );
      if (!isBare) f.met = f.value < 300;
      return f;
    });
    return {
      figures,
      section: {
        key: 'cli',
        title: 'Command-line start-up',
        about: CLI_ABOUT,
        figures: figures.filter((f) => f.isBaseline !== true).map((f) => f.id),
        measured,
      },
    };
  } finally {
    server.close();
  }
}
