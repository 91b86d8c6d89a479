// The controller's state files as the torture runner sees them between a kill and a restart:
// what a restart would restore (read with the controller's own reader, read-only), the
// temporary files a kill left behind, and damage done on purpose (truncated, garbage lines,
// a record with an invalid field, a broken header).

import {
  existsSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import path from 'node:path';
import { FileStateStore, loadState } from '../controller/state-store.js';
import { specOf } from '../controller/switch-runtime.js';
import type { Damage } from './schedule.js';

/** The flows (as "src:sport") a restart would restore, and when the snapshot was taken. */
export function restorable(stateFile: string): {
  flows: Set<string>;
  savedAt: number | undefined;
  error?: string;
} {
  try {
    const s = loadState(new FileStateStore(stateFile));
    const flows = new Set<string>();
    for (const g of s?.flows ?? []) {
      for (const k of g.keys) {
        try {
          const f = specOf(k);
          flows.add(`${f.src}:${f.sport}`);
        } catch {
          // a key the reader passed but that names no flow: not restorable
        }
      }
    }
    return { flows, savedAt: s?.savedAt };
  } catch (err) {
    return { flows: new Set(), savedAt: undefined, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Temporary files of atomic writes left in the state directory. */
export function leftovers(stateDir: string): string[] {
  return existsSync(stateDir) ? readdirSync(stateDir).filter((f) => f.includes('.tmp-')) : [];
}

/** Damages the state on purpose; returns the file damaged and how. */
export function damage(stateFile: string, how: Damage): string {
  const changes = `${stateFile}.changes`;
  const journal = `${stateFile}.journal`;
  switch (how) {
    case 'truncate': {
      const f = existsSync(stateFile) && statSync(stateFile).size > 0 ? stateFile : journal;
      if (existsSync(f)) truncateSync(f, Math.floor(statSync(f).size / 2));
      return `${f} truncated to half`;
    }
    case 'garbage': {
      const f = existsSync(journal) ? journal : stateFile;
      appendFileSync(f, '\u0000\u0001garbage line\n{"not":"a flow"}\n@@@\n');
      const text = readFileSync(f, 'latin1').split('\n');
      // Garbage in the middle too, where a torn write would leave it.
      text.splice(Math.floor(text.length / 2), 0, 'Zm9v###', '\u00ff\u00fe');
      writeFileSync(f, text.join('\n'), 'latin1');
      return `${f} with garbage lines`;
    }
    case 'bad-record': {
      if (!existsSync(changes)) return `${changes} absent: nothing damaged`;
      const doc = JSON.parse(readFileSync(changes, 'utf8')) as {
        changes: Record<string, { nexthop: string }[]>;
      };
      for (const list of Object.values(doc.changes)) for (const r of list) r.nexthop = 'not-an-ip';
      writeFileSync(changes, JSON.stringify(doc));
      return `${changes} with nexthop not-an-ip`;
    }
    case 'bad-header': {
      const f = existsSync(stateFile) ? stateFile : changes;
      const text = existsSync(f) ? readFileSync(f, 'latin1') : '';
      writeFileSync(
        f,
        `{"version":2,"savedAt":"yesterday"${text.slice(text.indexOf('\n') < 0 ? text.length : text.indexOf('\n'))}`,
        'latin1',
      );
      return `${f} with a broken header`;
    }
  }
}

export const stateFileIn = (dir: string): string => path.join(dir, 'state.json');
