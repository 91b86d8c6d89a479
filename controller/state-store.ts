// Persistence of what a restart must not lose, behind one interface so that a replicated
// store can stand in for the file store: change records (write-ahead: durable before a
// group change is sent) and the tracked flows with their nexthops. Pins are not stored:
// they live on the switch, and the controller lists them on start.
//
// The file store keeps change records in `<file>.changes` (small; written and fsynced on
// every phase of a change, atomically: temporary file, fsync, rename), the flows in `<file>`
// as text lines written in the background, a slice at a time, so that the event loop never
// stalls however many flows there are:
//   {"version":2,"savedAt":...}      header
//   @switch vip nexthop              the nexthop of the keys that follow
//   <flow key, base64>               one per line
// and the flows resolved since that snapshot in `<file>.journal` (same lines, appended and
// fsynced in small groups), so that a kill loses no flow whose journal write completed. A
// snapshot starts a new journal; the previous one is removed once the snapshot is durable.
// A crash leaves either the old snapshot or the new one, and the journals to replay.

import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { appendFile, open, rename, unlink } from 'node:fs/promises';
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
  /** Appends resolved flows to the journal; resolves once durable. */
  appendFlows(flows: { switchName: string; vip: string; nexthop: string; key: string }[]): Promise<void>;
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
  private journalChain: Promise<void> = Promise.resolve();
  private journalNext: Promise<void> | undefined;
  private journalPending: { switchName: string; vip: string; nexthop: string; key: string }[] = [];
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
    const run = this.flowsChain.then(async () => {
      // Journal entries from now on go to a new journal; the old one goes once the snapshot holds its flows.
      await this.journalChain;
      if (existsSync(this.journal)) await rename(this.journal, `${this.journal}.prev`);
      const n = await this.writeFlows(source, savedAt);
      await unlink(`${this.journal}.prev`).catch(() => undefined);
      return n;
    });
    this.flowsChain = run.catch(() => 0);
    return run;
  }

  /** Group commit: entries given while a write is in flight go out together in the next one. */
  appendFlows(flows: { switchName: string; vip: string; nexthop: string; key: string }[]): Promise<void> {
    this.journalPending.push(...flows);
    this.journalNext ??= this.journalChain.then(async () => {
      this.journalNext = undefined;
      const batch = this.journalPending;
      this.journalPending = [];
      if (batch.length === 0) return;
      await appendFile(this.journal, journalText(batch), 'latin1');
      const fh = await open(this.journal, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
    const run = this.journalNext;
    this.journalChain = run.catch(() => undefined);
    return run;
  }

  private get journal(): string {
    return `${this.where}.journal`;
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
    const journals = [`${this.journal}.prev`, this.journal].filter((f) => existsSync(f));
    if (!hasFlows && !existsSync(changesFile) && journals.length === 0) return undefined;
    const state: LoadedState = { changes: {}, flows: [], savedAt: undefined };
    if (existsSync(changesFile)) {
      const parsed = JSON.parse(readFileSync(changesFile, 'utf8')) as { version?: number; changes?: Record<string, ChangeRecord[]> };
      if (parsed.version !== 2 || typeof parsed.changes !== 'object') throw new Error(`${changesFile} is not a flowpin change log (version 2)`);
      state.changes = parsed.changes;
    }
    if (hasFlows) readFlows(this.where, readFileSync(this.where, 'latin1'), state);
    for (const j of journals) readLines(readFileSync(j, 'latin1').split('\n'), 0, state);
    return state;
  }
}

/** Journal lines for flows: a `@switch vip nexthop` line wherever the nexthop changes, then keys. */
export function journalText(flows: { switchName: string; vip: string; nexthop: string; key: string }[]): string {
  let last = '';
  const lines: string[] = [];
  for (const f of flows) {
    const ref = `@${f.switchName} ${f.vip} ${f.nexthop}`;
    if (ref !== last) lines.push(ref);
    last = ref;
    lines.push(encodeKey(f.key));
  }
  return lines.join('\n') + '\n';
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
  readLines(lines, 1, state);
}

/** Reads `@switch vip nexthop` groups of base64 keys; a torn last line (a crash mid-append) is skipped. */
function readLines(lines: string[], from: number, state: LoadedState): void {
  let group: LoadedState['flows'][number] | undefined;
  for (let i = from; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '') continue;
    if (line.startsWith('@')) {
      const [switchName = '', vip = '', nexthop = ''] = line.slice(1).split(' ');
      group = { switchName, vip, nexthop, keys: [] };
      state.flows.push(group);
    } else if (i < lines.length - 1 || /^[A-Za-z0-9+/]+=*$/.test(line)) group?.keys.push(decodeKey(line));
  }
}
