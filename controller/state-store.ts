// Persistence of what a restart must not lose, behind two interfaces so that a replicated
// store can stand in for the change log: the change log (change records, written durably
// before every next step of a change, and what flowpin watched of each switch's mirror) and
// the flow store (the tracked flows with their nexthops). Pins are not stored: they live on
// the switch, and the controller lists them on start.
//
// The file store keeps the change log in `<file>.changes` (small; written and fsynced on every
// phase of a change, atomically: temporary file, fsync, rename), the flows in `<file>` as text
// lines written in the background, a slice at a time, so that the event loop never stalls
// however many flows there are:
//   {"version":3,"savedAt":...}      header
//   @switch vip nexthop              the nexthop of the keys that follow
//   <flow key, base64>               one per line
//   {"end":N}                        trailer: N keys; a file without it was cut short
// and the flows seen, resolved and ended since that snapshot in `<file>.journal` (the same
// lines, `-<key>` for an ended flow, `#<time>` at the head of each group commit: the last time
// flowpin was known to watch), appended and fsynced in small groups, so that a kill loses no
// flow whose journal write completed. A snapshot starts a new journal; the previous one is
// removed once the snapshot is durable. A crash leaves either the old snapshot or the new
// one, and the journals to replay.
//
// Everything read back is checked: a file that is not flowpin's, a record that fails its
// schema, a line that is not a flow key, a snapshot without its trailer: the load refuses
// with the file and line named (StateError), and the operator decides (`--discard-state`).
// Only the last line of a journal may be torn (a kill in the middle of an append).

import {
  closeSync,
  createWriteStream,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { isIP } from 'node:net';
import type { ChangeRecord } from './change-record.js';
import { StoredChangeRecord } from './change-record.js';
import type { WatchRecord } from './watch.js';
import { checkSchema, ConfigError } from '../lib/validate.js';

/** Tracked flows grouped by their nexthop, read while the controller runs. */
export interface FlowSource {
  /** Groups of [switch, vip, nexthop] and their flow keys; sets may change while they are read. */
  groups(): Iterable<{ switchName: string; vip: string; nexthop: string; keys: Iterable<string> }>;
  /** Whether a key is still tracked when its turn to be written comes. */
  live(key: string): boolean;
  /** Which side has closed its half of the connection (a FIN seen one way), if one has. */
  halfClosedBy?(key: string): HalfClosed | null;
}

/** The side of a connection that has sent its FIN while the other still may send. */
export type HalfClosed = 'client' | 'server';

/** The change log: records per switch, and what flowpin watched of each switch's mirror. */
export interface ChangeDoc {
  changes: Record<string, ChangeRecord[]>;
  watch: Record<string, WatchRecord>;
}

/** A journal entry: a flow seen or resolved (vip and nexthop '' while not resolved), or ended. */
export interface JournalEntry {
  switchName: string;
  vip: string;
  nexthop: string;
  key: string;
  ended?: boolean;
  /** A FIN seen from this side, the connection still open the other way. */
  half?: HalfClosed;
}

export interface LoadedFlows {
  /** [switch, vip, nexthop, keys] */
  flows: { switchName: string; vip: string; nexthop: string; keys: string[] }[];
  /** Flow keys whose last journal line says they ended: not restored. */
  ended: Set<string>;
  /** Flow keys half-closed when last written, and by which side. */
  halfClosed: Map<string, HalfClosed>;
  savedAt: number | undefined;
  /** The last time the journal shows flowpin watching (the head of its last durable group commit). */
  journalUntil: number | undefined;
}

export interface LoadedState extends LoadedFlows {
  changes: Record<string, ChangeRecord[]>;
  watch: Record<string, WatchRecord>;
}

export interface ChangeLog {
  /** Writes the change log; resolves once it is durable. */
  saveChanges(doc: ChangeDoc): Promise<void>;
  loadChanges(): ChangeDoc | undefined;
}

export interface FlowStore {
  /** Writes the tracked flows without blocking the caller's thread for long; resolves once durable. */
  saveFlows(source: FlowSource, savedAt: number): Promise<number>;
  /** Appends to the journal (group commit, headed by `at`); resolves once durable. */
  appendFlows(flows: JournalEntry[], at: number): Promise<void>;
  loadFlows(): LoadedFlows | undefined;
}

export interface StateStore extends ChangeLog, FlowStore {
  readonly where: string;
}

/** State that cannot be read back as written: the file and the line at fault. */
export class StateError extends Error {
  override readonly name = 'StateError';
  constructor(
    readonly file: string,
    readonly line: number | null,
    problem: string,
  ) {
    super(`${file}${line === null ? '' : `:${line}`}: ${problem}`);
  }
}

/** Loads both parts; undefined where there is no state at all. */
export function loadState(store: ChangeLog & FlowStore): LoadedState | undefined {
  const c = store.loadChanges();
  const f = store.loadFlows();
  if (c === undefined && f === undefined) return undefined;
  return {
    changes: c?.changes ?? {},
    watch: c?.watch ?? {},
    flows: f?.flows ?? [],
    ended: f?.ended ?? new Set(),
    halfClosed: f?.halfClosed ?? new Map<string, HalfClosed>(),
    savedAt: f?.savedAt,
    journalUntil: f?.journalUntil,
  };
}

const SLICE = 2000;
const VERSION = 3;

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

export const encodeKey = (key: string): string => Buffer.from(key, 'latin1').toString('base64');
export const decodeKey = (b64: string): string => Buffer.from(b64, 'base64').toString('latin1');

/** The change log as written: records per switch and the watch record, under the version header. */
function changeLogText(doc: ChangeDoc): string {
  return JSON.stringify({ version: VERSION, savedAt: Date.now(), changes: doc.changes, watch: doc.watch });
}

/** `writeAtomic` for a caller that runs before anything else (the start's --discard-state). */
function writeAtomicSync(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** Writes `text` to `file` atomically and durably (temporary file, fsync, rename). */
export async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * Temporary files a killed process left beside `file` (`<file>*.tmp-<pid>` of a pid that is not this one):
 * removed.
 */
export function removeLeftovers(file: string): string[] {
  const dir = path.dirname(file);
  const base = path.basename(file);
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const n of names) {
    const m = /\.tmp-(\d+)$/.exec(n);
    if (m === null || !n.startsWith(base) || Number(m[1]) === process.pid) continue;
    unlinkSync(path.join(dir, n));
    removed.push(n);
  }
  return removed;
}

/**
 * Moves aside (`<name>.discarded-<time>`) the parts of the state that cannot be read, keeping
 * the parts that can: a damaged flow journal costs the flows it held, not the change records,
 * and a damaged change log costs the changes, not the flows. Returns what was moved and why.
 */
export function discardState(file: string): { moved: string[]; reasons: string[] } {
  const store = new FileStateStore(file);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const moved: string[] = [];
  const reasons: string[] = [];
  const aside = (files: string[], err: unknown): void => {
    reasons.push(err instanceof Error ? err.message : String(err));
    for (const f of files) {
      if (!existsSync(f)) continue;
      renameSync(f, `${f}.discarded-${stamp}`);
      moved.push(`${f}.discarded-${stamp}`);
    }
  };
  try {
    store.loadChanges();
  } catch (err) {
    aside([`${file}.changes`], err);
  }
  try {
    store.loadFlows();
  } catch (err) {
    aside([file, `${file}.journal`, `${file}.journal.prev`], err);
    // The flows seen are gone: so is what flowpin watched of the mirrors (a restart must count
    // the connections it no longer knows as unseen, not as watched). The change records stay.
    const changes = `${file}.changes`;
    if (existsSync(changes)) {
      try {
        const doc = store.loadChanges();
        if (doc !== undefined) writeAtomicSync(changes, changeLogText({ changes: doc.changes, watch: {} }));
      } catch {
        // Moved aside above.
      }
    }
  }
  return { moved, reasons };
}

export class FileStateStore implements StateStore {
  private changesChain: Promise<void> = Promise.resolve();
  private journalChain: Promise<void> = Promise.resolve();
  private journalNext: Promise<void> | undefined;
  private journalPending: JournalEntry[] = [];
  private journalAt = 0;
  private journalFh: Promise<FileHandle> | undefined;
  private flowsChain: Promise<number> = Promise.resolve(0);

  constructor(readonly where: string) {}

  saveChanges(doc: ChangeDoc): Promise<void> {
    // Serialised: each write holds the state as of its call, and they land in order.
    const text = changeLogText(doc);
    const run = this.changesChain.then(() => writeAtomic(`${this.where}.changes`, text));
    this.changesChain = run.catch(() => undefined);
    return run;
  }

  /** One flow snapshot at a time: a call while one runs starts after it. */
  saveFlows(source: FlowSource, savedAt: number): Promise<number> {
    const run = this.flowsChain.then(async () => {
      // Journal entries from now on go to a new journal; the old one goes once the snapshot holds its flows.
      await this.journalChain;
      await this.closeJournal();
      if (existsSync(this.journal)) await rename(this.journal, `${this.journal}.prev`);
      const n = await this.writeFlows(source, savedAt);
      await unlink(`${this.journal}.prev`).catch(() => undefined);
      return n;
    });
    this.flowsChain = run.catch(() => 0);
    return run;
  }

  /** Group commit: entries given while a write is in flight go out together in the next one. */
  appendFlows(flows: JournalEntry[], at: number): Promise<void> {
    this.journalPending.push(...flows);
    this.journalAt = Math.max(this.journalAt, at);
    this.journalNext ??= this.journalChain.then(async () => {
      this.journalNext = undefined;
      const batch = this.journalPending;
      this.journalPending = [];
      const fh = await (this.journalFh ??= open(this.journal, 'a'));
      await fh.appendFile(`#${this.journalAt}\n${journalText(batch)}`, 'latin1');
      await fh.datasync();
    });
    const run = this.journalNext;
    this.journalChain = run.catch(() => {
      // A failed write may have left the handle unusable: the next append opens the journal again.
      void this.closeJournal();
    });
    return run;
  }

  private async closeJournal(): Promise<void> {
    const fh = this.journalFh;
    this.journalFh = undefined;
    if (fh !== undefined) await (await fh.catch(() => undefined))?.close().catch(() => undefined);
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
    let lines: string[] = [JSON.stringify({ version: VERSION, savedAt })];
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
          const half = source.halfClosedBy?.(key) ?? null;
          if (half !== null) lines.push(`${HALF_MARK[half]}${encodeKey(key)}`);
          n++;
          if (lines.length >= SLICE) await flush();
        }
      }
      lines.push(JSON.stringify({ end: n }));
      await flush();
      await Promise.race([
        new Promise<void>((resolve, reject) =>
          out.end((err?: Error | null) => (err ? reject(err) : resolve())),
        ),
        failed,
      ]);
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

  loadChanges(): ChangeDoc | undefined {
    const file = `${this.where}.changes`;
    if (!existsSync(file)) return undefined;
    return parseChangeDoc(file, readFileSync(file, 'utf8'));
  }

  loadFlows(): LoadedFlows | undefined {
    const hasFlows = existsSync(this.where);
    const journals = [`${this.journal}.prev`, this.journal].filter((f) => existsSync(f));
    if (!hasFlows && journals.length === 0) return undefined;
    const state: LoadedFlows = {
      flows: [],
      ended: new Set(),
      halfClosed: new Map(),
      savedAt: undefined,
      journalUntil: undefined,
    };
    if (hasFlows) readSnapshot(this.where, readFileSync(this.where, 'latin1'), state);
    for (const j of journals) readLines(j, readFileSync(j, 'latin1').split('\n'), 0, state, true);
    return state;
  }
}

/** Reads a change log (version 2 or 3), checking every record; a problem names the file and the record. */
export function parseChangeDoc(file: string, text: string): ChangeDoc {
  let parsed: { version?: unknown; changes?: unknown; watch?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch (err) {
    throw new StateError(
      file,
      null,
      `not a flowpin change log: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (
    (parsed.version !== 2 && parsed.version !== VERSION) ||
    typeof parsed.changes !== 'object' ||
    parsed.changes === null
  )
    throw new StateError(file, null, `not a flowpin change log (version ${VERSION})`);
  const changes: Record<string, ChangeRecord[]> = {};
  for (const [sw, list] of Object.entries(parsed.changes as Record<string, unknown>)) {
    if (!Array.isArray(list))
      throw new StateError(file, null, `changes.${sw}: must be a list of change records`);
    changes[sw] = list.map((r, i) => checkRecord(file, `changes.${sw}[${i}]`, r));
  }
  const watch: Record<string, WatchRecord> = {};
  for (const [sw, w] of Object.entries((parsed.watch ?? {}) as Record<string, unknown>)) {
    const list = (w as { watched?: unknown } | null)?.watched;
    if (
      !Array.isArray(list) ||
      !list.every(
        (x) =>
          typeof (x as WatchRecord['watched'][number])?.from === 'number' &&
          typeof (x as WatchRecord['watched'][number])?.to === 'number',
      )
    )
      throw new StateError(file, null, `watch.${sw}: must be {watched: [{from, to}]}`);
    watch[sw] = { watched: list as WatchRecord['watched'] };
  }
  return { changes, watch };
}

function checkRecord(file: string, at: string, r: unknown): ChangeRecord {
  try {
    checkSchema(file, StoredChangeRecord, r);
  } catch (err) {
    if (err instanceof ConfigError)
      throw new StateError(file, null, `${at}: ${err.message.slice(file.length + 2)}`);
    throw err;
  }
  const rec = r as ChangeRecord;
  for (const field of ['vip', 'nexthop'] as const)
    if (isIP(rec[field]) === 0)
      throw new StateError(
        file,
        null,
        `${at}.${field}: '${String(rec[field]).slice(0, 64)}' is not an IP address`,
      );
  return rec;
}

/** The line marks of a half-closed flow (after its key line in a snapshot; alone in a journal). */
const HALF_MARK: Record<HalfClosed, string> = { client: '<', server: '>' };

/**
 * Journal lines: a `@switch vip nexthop` line wherever the nexthop changes, then keys; `-key` for an ended
 * flow, `<key`/`>key` for one half-closed by the client/server.
 */
export function journalText(flows: JournalEntry[]): string {
  let last = '';
  const lines: string[] = [];
  for (const f of flows) {
    if (f.ended === true) {
      lines.push(`-${encodeKey(f.key)}`);
      continue;
    }
    if (f.half !== undefined) {
      lines.push(`${HALF_MARK[f.half]}${encodeKey(f.key)}`);
      continue;
    }
    const ref = `@${f.switchName} ${f.vip} ${f.nexthop}`;
    if (ref !== last) lines.push(ref);
    last = ref;
    lines.push(encodeKey(f.key));
  }
  return lines.join('\n') + '\n';
}

function readSnapshot(file: string, text: string, state: LoadedFlows): void {
  const lines = text.split('\n');
  let header: { version?: number; savedAt?: number };
  try {
    header = JSON.parse(lines[0] ?? '') as typeof header;
  } catch {
    throw new StateError(file, 1, 'not a flowpin state file (no header)');
  }
  if (header.version !== 2 && header.version !== VERSION)
    throw new StateError(file, 1, `not a flowpin state file (version ${VERSION})`);
  if (header.savedAt !== undefined && typeof header.savedAt !== 'number')
    throw new StateError(
      file,
      1,
      `savedAt must be a time in milliseconds, got ${JSON.stringify(header.savedAt).slice(0, 64)}`,
    );
  state.savedAt = header.savedAt;
  // Version 3 ends with {"end":N}; an earlier version wrote no trailer.
  let last = lines.length - 1;
  while (last > 0 && lines[last] === '') last--;
  let expect: number | undefined;
  if (header.version === VERSION) {
    const trailer = /^\{"end":(\d+)\}$/.exec(lines[last] ?? '');
    if (trailer === null)
      throw new StateError(
        file,
        last + 1,
        'the flow snapshot is cut short (no end marker): it was not written whole',
      );
    expect = Number(trailer[1]);
    lines.length = last;
  }
  const n = readLines(file, lines, 1, state, false);
  if (expect !== undefined && n !== expect)
    throw new StateError(file, last + 1, `the end marker says ${expect} flows, the file holds ${n}`);
}

/** A flow key as stored: two bytes of switch id and an IPv4 (12 bytes) or IPv6 (36 bytes) tuple. */
const KEY_LINE = /^[A-Za-z0-9+/]+={0,2}$/;
const validKey = (k: string): boolean => k.length === 14 || k.length === 38;

/**
 * Reads `@switch vip nexthop` groups of base64 keys (and, in journals, `#time` and `-key`);
 * returns the keys read. A torn last line of a journal (a kill mid-append) is skipped; any
 * other line that is not what it should be is refused, with its number.
 */
function readLines(
  file: string,
  lines: string[],
  from: number,
  state: LoadedFlows,
  journal: boolean,
): number {
  let group: LoadedFlows['flows'][number] | undefined;
  let n = 0;
  let end = lines.length;
  while (end > from && lines[end - 1] === '') end--;
  // Only a journal's last line, and only where the file does not end with a newline, may be torn.
  const cut = end === lines.length;
  for (let i = from; i < end; i++) {
    const line = lines[i] as string;
    const lineNo = i + 1;
    const torn = (): boolean => journal && cut && i === end - 1;
    if (line === '') continue;
    if (line.startsWith('@')) {
      const parts = line.slice(1).split(' ');
      const [switchName = '', vip = '', nexthop = ''] = parts;
      if (
        parts.length !== 3 ||
        switchName === '' ||
        (vip !== '' && isIP(vip) === 0) ||
        (nexthop !== '' && isIP(nexthop) === 0)
      ) {
        if (torn()) break;
        throw new StateError(file, lineNo, `not a '@switch vip nexthop' line: '${line.slice(0, 64)}'`);
      }
      group = { switchName, vip, nexthop, keys: [] };
      state.flows.push(group);
      continue;
    }
    if (journal && line.startsWith('#')) {
      const t = Number(line.slice(1));
      if (!Number.isFinite(t)) {
        if (torn()) break;
        throw new StateError(file, lineNo, `not a time: '${line.slice(0, 64)}'`);
      }
      state.journalUntil = Math.max(state.journalUntil ?? 0, t);
      continue;
    }
    const ended = journal && line.startsWith('-');
    const half: HalfClosed | undefined = line.startsWith('<')
      ? 'client'
      : line.startsWith('>')
        ? 'server'
        : undefined;
    const b64 = ended || half !== undefined ? line.slice(1) : line;
    const key = KEY_LINE.test(b64) ? decodeKey(b64) : '';
    if (!validKey(key)) {
      if (torn()) break;
      throw new StateError(file, lineNo, `not a flow key: '${line.slice(0, 64)}'`);
    }
    if (ended) {
      // Ended after it was written: not restored (unless seen again later).
      state.ended.add(key);
      continue;
    }
    if (half !== undefined) {
      state.halfClosed.set(key, half);
      continue;
    }
    if (group === undefined) throw new StateError(file, lineNo, 'a flow key before any @switch line');
    state.ended.delete(key);
    // A key line in a journal is a SYN (a new connection on the tuple) or a resolution: open both ways
    // unless a mark follows; in a snapshot the mark follows its key line.
    if (journal) state.halfClosed.delete(key);
    group.keys.push(key);
    n++;
  }
  return n;
}
