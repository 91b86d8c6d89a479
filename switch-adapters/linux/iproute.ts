// Reading and writing the router's routing state with iproute2: nexthop objects, resilient
// groups and their bucket tables (`ip -j nexthop show|bucket show`, ip-nexthop(8)), and batched
// look-ups with `ip -j -force -batch -` (ip(8): -force goes on after a failed line, which prints
// no JSON and reports `Command failed -:N` on stderr; each good line prints one JSON array).

import type { CommandRunner } from './exec.js';
import type { GroupEntry } from './upkeep.js';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface NexthopObject {
  id: number;
  gateway?: string;
  dev?: string;
  group?: GroupEntry[];
  resilient?: { buckets: number; idleTimer: number; unbalancedTimer: number };
}

export function parseNexthops(doc: unknown): NexthopObject[] {
  if (!Array.isArray(doc)) throw new Error('nexthop show: not a JSON array');
  return doc.filter(isObj).map((o) => {
    const nh: NexthopObject = { id: Number(o['id']) };
    if (typeof o['gateway'] === 'string') nh.gateway = o['gateway'];
    if (typeof o['dev'] === 'string') nh.dev = o['dev'];
    if (Array.isArray(o['group']))
      nh.group = (o['group'] as unknown[])
        .filter(isObj)
        .map((g) => ({ id: Number(g['id']), weight: typeof g['weight'] === 'number' ? g['weight'] : 1 }));
    const r = o['resilient_args'];
    if (o['type'] === 'resilient' && isObj(r))
      nh.resilient = {
        buckets: Number(r['buckets']),
        idleTimer: Number(r['idle_timer']),
        unbalancedTimer: Number(r['unbalanced_timer']),
      };
    return nh;
  });
}

/** Bucket index -> owning nexthop id, from `ip -j nexthop bucket show id G`. */
export function parseBuckets(doc: unknown): number[] {
  if (!Array.isArray(doc)) throw new Error('nexthop bucket show: not a JSON array');
  const table: number[] = [];
  for (const o of doc) {
    if (!isObj(o) || !isObj(o['bucket'])) continue;
    const b = o['bucket'];
    table[Number(b['index'])] = Number(b['nhid']);
  }
  for (let i = 0; i < table.length; i++)
    if (table[i] === undefined) throw new Error(`bucket ${i} missing from the bucket table`);
  return table;
}

export interface RouteAnswer {
  gateway?: string;
  dev?: string;
}

/**
 * Runs look-up lines in `ip -j -force -batch -` processes of at most `chunk` lines, up to
 * `parallel` at a time (each look-up is a netlink round trip: processes on several cores go
 * faster); the answer of each line in order, undefined where the line failed.
 */
export async function batchRouteGet(
  run: CommandRunner,
  lines: string[],
  chunk: number,
  parallel = 4,
): Promise<(RouteAnswer | undefined)[]> {
  const size = Math.max(1000, Math.min(chunk, Math.ceil(lines.length / parallel)));
  const parts: string[][] = [];
  for (let at = 0; at < lines.length; at += size) parts.push(lines.slice(at, at + size));
  const results: (RouteAnswer | undefined)[][] = new Array<(RouteAnswer | undefined)[]>(parts.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < parts.length) {
      const i = next++;
      const part = parts[i] as string[];
      const r = await run.run(['ip', '-j', '-force', '-batch', '-'], part.join('\n') + '\n');
      results[i] = matchBatchOutput(part.length, r.stdout, r.stderr);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, parts.length) }, worker));
  return results.flat();
}

/** Maps batch output back to its lines: failed lines (from stderr) get undefined. */
export function matchBatchOutput(n: number, stdout: string, stderr: string): (RouteAnswer | undefined)[] {
  const failed = new Set<number>();
  for (const m of stderr.matchAll(/Command failed -:(\d+)/g)) failed.add(Number(m[1]) - 1);
  const answers = stdout.split('\n').filter((l) => l.trim() !== '');
  const out: (RouteAnswer | undefined)[] = [];
  let k = 0;
  for (let i = 0; i < n; i++) {
    if (failed.has(i)) {
      out.push(undefined);
      continue;
    }
    const line = answers[k++];
    if (line === undefined)
      throw new Error(`ip batch: ${n - failed.size} answers expected, ${answers.length} printed`);
    const arr = JSON.parse(line) as unknown;
    const first: unknown = Array.isArray(arr) ? (arr as unknown[])[0] : undefined;
    out.push(
      isObj(first)
        ? {
            ...(typeof first['gateway'] === 'string' ? { gateway: first['gateway'] } : {}),
            ...(typeof first['dev'] === 'string' ? { dev: first['dev'] } : {}),
          }
        : undefined,
    );
  }
  if (k !== answers.length)
    throw new Error(`ip batch: ${answers.length} answers for ${n - failed.size} good lines`);
  return out;
}

export interface NeighbourEntry {
  address: string;
  dev: string;
  mac: string;
}

/**
 * `ip -j neigh show` (ip-neighbour(8)): entries with a link-layer address (`lladdr`); FAILED and
 * INCOMPLETE entries have none and are left out. The servers' MACs, for telling mirrored replies.
 */
export function parseNeighbours(doc: unknown): NeighbourEntry[] {
  if (!Array.isArray(doc)) throw new Error('neigh show: not a JSON array');
  const out: NeighbourEntry[] = [];
  for (const o of doc) {
    if (!isObj(o) || typeof o['dst'] !== 'string' || typeof o['lladdr'] !== 'string') continue;
    const state = Array.isArray(o['state']) ? (o['state'] as unknown[]) : [];
    if (state.includes('FAILED') || state.includes('INCOMPLETE')) continue;
    out.push({
      address: o['dst'],
      dev: typeof o['dev'] === 'string' ? o['dev'] : '',
      mac: o['lladdr'].toLowerCase(),
    });
  }
  return out;
}
