// One flowpin per state file. Two controllers on one state file would both write the switches'
// groups and pins and overwrite each other's state; the second must fail at once, before it
// connects to any switch. The lock is `<stateFile>.lock`, holding the holder's pid and start
// time: written to a file of its own, then hard-linked to the lock's name (link(2) fails where
// the name exists, so the kernel decides who has it, and a lock is never seen half written). A
// lock whose pid no longer runs (a kill -9, a crash, a container restarted with the same pid 1)
// is stale: it is renamed aside and checked to be the stale one before it is removed (a live
// lock moved by mistake, in a race between two takers, is linked back). The lock is removed
// when flowpin stops, and on exit.

import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';

export class StateLockError extends Error {
  override readonly name = 'StateLockError';
  constructor(
    readonly stateFile: string,
    readonly holderPid: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

export interface StateLock {
  readonly path: string;
  release(): void;
}

/** The pid written in a lock file, or undefined where it holds none. */
function holderOf(lockPath: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(lockPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const pid = Number(/^pid (\d+)$/m.exec(text)?.[1]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether a process with this pid runs (EPERM: it runs under another user). */
function running(pid: number): boolean {
  if (pid === process.pid) return false; // our own pid in an old lock: a restarted container's pid 1
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function create(lockPath: string): boolean {
  const tmp = `${lockPath}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `pid ${process.pid}\nsince ${new Date().toISOString()}\n`, { mode: 0o644 });
  } catch (err) {
    throw new StateLockError(
      lockPath.slice(0, -'.lock'.length),
      undefined,
      `cannot create the lock of the state file (${lockPath}): ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  try {
    linkSync(tmp, lockPath);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

/** Removes a stale lock held by `stalePid`; a lock that turns out to be another's is put back. */
function removeStale(lockPath: string, stalePid: number | undefined): void {
  const aside = `${lockPath}.stale-${process.pid}`;
  try {
    renameSync(lockPath, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = holderOf(aside);
  if (moved !== stalePid && moved !== undefined && running(moved)) {
    try {
      linkSync(aside, lockPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  unlinkSync(aside);
}

/**
 * Takes the lock of a state file, or throws a StateLockError naming the file and the pid of
 * the flowpin that holds it. Call before anything connects to a switch.
 */
export function lockStateFile(stateFile: string): StateLock {
  const lockPath = `${stateFile}.lock`;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (create(lockPath)) {
      let held = true;
      const release = (): void => {
        if (!held) return;
        held = false;
        process.off('exit', release);
        // Only our own lock is removed (a lock taken over after ours went stale is not ours).
        if (holderOf(lockPath) === process.pid) unlinkSync(lockPath);
      };
      process.on('exit', release);
      return { path: lockPath, release };
    }
    const pid = holderOf(lockPath);
    if (pid !== undefined && running(pid)) {
      throw new StateLockError(
        stateFile,
        pid,
        `the state file ${stateFile} is in use by another flowpin (pid ${pid}; lock ${lockPath}): stop that one first; two controllers on one state file would overwrite each other's changes`,
      );
    }
    removeStale(lockPath, pid);
  }
  throw new StateLockError(
    stateFile,
    holderOf(lockPath),
    `could not take the lock of the state file ${stateFile} (${lockPath}): another process keeps taking it`,
  );
}
