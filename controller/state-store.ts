// Persistence of what a restart must not lose: change state (drains in progress) and the
// tracked flows with their nexthops. Written atomically (temporary file, fsync, rename), so
// a crash leaves either the old file or the new one. Pins are not stored: they live on the
// switch, and the controller lists them on start.

import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import type { ChangeRecord } from './changes.js';

export interface SavedState {
  version: 1;
  savedAt: number;
  changes: Record<string, ChangeRecord[]>;
  /** Nexthop references used by the flows below: "switch vip nexthop". */
  nexthops: string[];
  /** [flow key as base64 (latin1), index into nexthops] */
  flows: [string, number][];
}

export function writeAtomic(file: string, text: string): void {
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

export function saveState(file: string, state: SavedState): void {
  writeAtomic(file, JSON.stringify(state));
}

/** The saved state, or undefined if there is none yet; throws on a file that is not one. */
export function loadState(file: string): SavedState | undefined {
  if (!existsSync(file)) return undefined;
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<SavedState>;
  if (parsed.version !== 1 || !Array.isArray(parsed.flows) || !Array.isArray(parsed.nexthops) || typeof parsed.changes !== 'object') {
    throw new Error(`${file} is not a flowpin state file (version 1)`);
  }
  return parsed as SavedState;
}

export const encodeKey = (key: string): string => Buffer.from(key, 'latin1').toString('base64');
export const decodeKey = (b64: string): string => Buffer.from(b64, 'base64').toString('latin1');
