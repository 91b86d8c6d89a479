// Failover at every phase of a change, in real processes (test/helpers/ha-bed.ts): a drain and
// an addition each asked of the switch's owner, and the owner and each next one killed
// (SIGKILL, FLOWPIN_CRASH_AT) at another point of the change's protocol, until the last
// instance finishes it. The drain: right after the call is accepted (its record written
// `pending`), once its connections are held, once the flows seen before the hold are resolved,
// and once its group write took effect (tracking the drain); the addition: right after the
// call, once the flow journal holds the flows seen before the hold, when its group write is
// about to leave (the record written, the write not sent: it runs again), and once the switch
// accepted the write (before the record says applied: the next owner reads the switch's
// group). The points after the pins and after the group write has left are in
// ha-failover.test.ts.
// Judged against the simulator's reset log: no protected connection reset, every other reset
// counted by the record, the record in etcd truthful, no stale write landed.

import { test } from 'node:test';
import { skipEtcd } from './helpers/etcd.js';
import { changeChain, seed } from './helpers/ha-bed.js';

const skip = skipEtcd();

test(
  `ha phases: the drain's owners killed right after the call, once held, once resolved, once effective (tracking); the fifth finishes it (seed ${seed})`,
  { skip, timeout: 200_000 },
  () => changeChain('drain', ['pending', 'held', 'resolved', 'effective']),
);

test(
  `ha phases: the addition's owners killed right after the call, once journaled, as the group write leaves, once the switch accepted it; the fifth finishes it (seed ${seed})`,
  { skip, timeout: 200_000 },
  () => changeChain('add', ['pending', 'journaled', 'sending', 'accepted']),
);
