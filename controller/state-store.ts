// Persistence of what a restart must not lose, behind one interface so that a replicated
// store can stand in for the file store: change records (write-ahead: durable before a
// group change is sent) and the tracked flows with their nexthops. Pins are not stored:
// they live on the switch, and the controller lists them on start.
//
// The file store keeps change records in `<file>.changes` (small; written and fsynced on
// every phase of a change, atomically: temporary file, fsync, rename) and the flows in
// `<file>` as text lines written in the background, a slice at a time, so that the event
// loop never stalls however many flows there are:
//   {"version":2,"savedAt":...}      header
//   @switch vip nexthop              the nexthop of the keys that follow
//   <flow key, base64>               one per line
// A crash leaves either the old file or the new one.

import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import type { ChangeRecord } from './changes.js';

/** Tracked flows grouped by their nexthop, read while the controller runs. */
export interface FlowSource {
  /** Groups of [switch, vip, nexthop] and their flow keys; sets may change while they are read. */
  groups(): Iterable<{ switchName: string; vip: string; nexthop: string; keys: Iterable<string> }>;
  /** Whether a key is still tracked when its turn to be written comes. */
  live(key: string): boolean;
}

export interface LoadedState {
  changes: Record<string, ChangeRecord[]>;
  /** [switch, vip, nexthop, keys] */
  flows: { switchName: string; vip: string; nexthop: string; keys: string[] }[];
  savedAt: number | undefined;
}

export interface StateStore {
  /** Writes the change records; resolves once they are durable. */
  saveChanges(changes: Record<string, ChangeRecord[]>): Promise<void>;
  /** Writes the tracked flows without blocking the caller's thread for long; resolves once durable. */
  saveFlows(source: FlowSource, savedAt: number): Promise<number>;
  load(): LoadedState | undefined;
  readonly where: string;
}

const SLICE = 2000;

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

export const encodeKey = (key: string): string => Buffer.from(key, 'latin1').toString('base64');
export const decodeKey = (b64: string): string => Buffer.from(b64, 'base64').toString('latin1');

/** Writes `text` to `file` atomically and durably (temporary file, fsync, rename). */
export async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

export class FileStateStore implements StateStore {
  private changesChain: Promise<void> = Promise.resolve();
  private flowsChain: Promise<number> = Promise.resolve(0);

  constructor(readonly where: string) {}

  saveChanges(changes: Record<string, ChangeRecord[]>): Promise<void> {
    // Serialised: each write holds the state as of its call, and they land in order.
    const text = JSON.stringify({ version: 2, changes });
    const run = this.changesChain.then(() => writeAtomic(`${this.where}.changes`, text));
    this.changesChain = run.catch(() => undefined);
    return run;
  }

  /** One flow snapshot at a time: a call while one runs starts after it. */
  saveFlows(source: FlowSource, savedAt: number): Promise<number> {
    const run = this.flowsChain.then(() => this.writeFlows(source, savedAt));
    this.flowsChain = run.catch(() => 0);
    return run;
  }

  private async writeFlows(source: FlowSource, savedAt: number): Promise<number> {
    const tmp = `${this.where}.tmp-${process.pid}`;
    const out = createWriteStream(tmp, { encoding: 'latin1' });
    const failed = new Promise<never>((_, reject) => out.once('error', reject));
    failed.catch(() => undefined);
    let n = 0;
    let lines: string[] = [JSON.stringify({ version: 2, savedAt })];
    const flush = async (): Promise<void> => {
      const ok = out.write(lines.join('\n') + '\n');
      lines = [];
      if (!ok) await Promise.race([new Promise<void>((r) => out.once('drain', () => r())), failed]);
      await yieldToLoop();
    };
    try {
      for (const g of source.groups()) {
        lines.push(`@${g.switchName} ${g.vip} ${g.nexthop}`);
        for (const key of g.keys) {
          if (!source.live(key)) continue;
          lines.push(encodeKey(key));
          n++;
          if (lines.length >= SLICE) await flush();
        }
      }
      await flush();
      await Promise.race([new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve()))), failed]);
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.where);
      return n;
    } catch (err) {
      out.destroy();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  load(): LoadedState | undefined {
    const changesFile = `${this.where}.changes`;
    const hasFlows = existsSync(this.where);
    if (!hasFlows && !existsSync(changesFile)) return undefined;
    const state: LoadedState = { changes: {}, flows: [], savedAt: undefined };
    if (existsSync(changesFile)) {
      const parsed = JSON.parse(readFileSync(changesFile, 'utf8')) as { version?: number; changes?: Record<string, ChangeRecord[]> };
      if (parsed.version !== 2 || typeof parsed.changes !== 'object') throw new Error(`${changesFile} is not a flowpin change log (version 2)`);
      state.changes = parsed.changes;
    }
    if (hasFlows) readFlows(this.where, readFileSync(this.where, 'latin1'), state);
    return state;
  }
}

function readFlows(file: string, text: string, state: LoadedState): void {
  if (text.startsWith('{"version":1')) {
    // The earlier single-file format: changes and flows in one JSON document.
    const v1 = JSON.parse(text) as { changes: Record<string, ChangeRecord[]>; nexthops: string[]; flows: [string, number][]; savedAt: number };
    const groups = v1.nexthops.map((ref) => {
      const [switchName = '', vip = '', nexthop = ''] = ref.split(' ');
      return { switchName, vip, nexthop, keys: [] as string[] };
    });
    for (const [b64, idx] of v1.flows) groups[idx]?.keys.push(decodeKey(b64));
    state.flows.push(...groups);
    if (Object.keys(state.changes).length === 0) state.changes = v1.changes;
    state.savedAt = v1.savedAt;
    return;
  }
  const lines = text.split('\n');
  const header = JSON.parse(lines[0] ?? '') as { version?: number; savedAt?: number };
  if (header.version !== 2) throw new Error(`${file} is not a flowpin state file (version 2)`);
  state.savedAt = header.savedAt;
  let group: LoadedState['flows'][number] | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '') continue;
    if (line.startsWith('@')) {
      const [switchName = '', vip = '', nexthop = ''] = line.slice(1).split(' ');
      group = { switchName, vip, nexthop, keys: [] };
      state.flows.push(group);
    } else group?.keys.push(decodeKey(line));
  }
}
