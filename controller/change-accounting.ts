// A change's figures from what it saw: the pins it relied on that were programmed when it
// took effect, the flows at risk by reason, and the flows of the change window. Pure: what
// the reconciler and the runtime know comes in as functions and lists; each flow is counted
// once, under the first reason that applies.

import type { AtRiskReason } from './reconciler.js';
import { idOfKey } from './flow-spec.js';
import type { Resolution } from './switch-runtime.js';

export interface Observations {
  /** Pins the change relied on at its barrier, by flow id. */
  needed: Set<string>;
  /** Pins of the change the switch refused or had no room for before it took effect. */
  dropped: Map<string, AtRiskReason>;
  /**
   * Pins the switch reported programmed before the group write left, and still programmed at the effect:
   * held when the change took effect.
   */
  programmedAtEffect: Set<string>;
  /**
   * Pins found programmed only after the group write left (or read back after the effect, their install
   * unanswered): in `pinnedLate`, not protected (they may have landed after the effect).
   */
  programmedInDoubt?: Set<string>;
  /** Flows resolved after the mark (by key). */
  afterMark: Map<string, Resolution>;
  /** Flows accepted after the mark and still unresolved when the change settled (by key). */
  uncertain: string[];
  /** Sequence numbers at the group write and once the change settled. */
  sentSeq: number;
  settledSeq: number;
}

export interface SwitchView {
  isProgrammed(id: string, nexthop?: string): boolean;
  /** Why the switch dropped a pin, if it did. */
  failedWhy(id: string): AtRiskReason | 'idle-timeout' | undefined;
  desired(id: string): boolean;
  /** A drain's nexthop (an addition's window counts on every member). */
  drainOf: string | undefined;
  /** Flows shed by name, by flow id; shed flows flowpin can no longer name, by number. */
  shed: string[];
  forgotten: number;
  /** Flows the switch could not resolve, by flow id. */
  unresolved: string[];
}

export interface Accounting {
  pinned: number;
  pinnedLate: number;
  counted: { id: string; why: AtRiskReason | 'window' }[];
  /** Counted as shed by number (no names). */
  forgotten: number;
}

export function account(seen: Observations, sw: SwitchView): Accounting {
  const { needed, dropped, programmedAtEffect, afterMark, uncertain, sentSeq, settledSeq } = seen;
  const counted = new Set<string>(programmedAtEffect);
  const out: Accounting = {
    pinned: programmedAtEffect.size,
    pinnedLate: seen.programmedInDoubt?.size ?? 0,
    counted: [],
    forgotten: sw.forgotten,
  };
  const count = (id: string, why: AtRiskReason | 'window'): void => {
    counted.add(id);
    out.counted.push({ id, why });
  };
  for (const [id, why] of dropped) if (!counted.has(id)) count(id, why);
  for (const id of needed) {
    if (counted.has(id)) continue;
    const failed = sw.failedWhy(id);
    if (failed !== undefined && failed !== 'idle-timeout') count(id, failed);
    else if (sw.desired(id)) count(id, 'not-programmed');
    // Otherwise the flow ended (FIN/RST, or idle) before the change: nothing to protect.
  }
  // Resolved after the mark and before the group write, or observed (the server that
  // answered) for a SYN up to the settle: the server is certain; protected only if its pin
  // was programmed when the change took effect.
  for (const res of afterMark.values()) {
    const id = idOfKey(res.key);
    if (
      res.seq > (res.observed === true ? settledSeq : sentSeq) ||
      res.nexthop === undefined ||
      res.pinOwner === undefined ||
      counted.has(id)
    )
      continue;
    if (sw.drainOf !== undefined && res.nexthop !== sw.drainOf) continue;
    if (!sw.isProgrammed(id, res.nexthop) || !programmedAtEffect.has(id)) count(id, 'window');
    else counted.add(id);
  }
  // Not resolved before the group write: the switch may have sent the SYN to either group.
  for (const key of uncertain) count(idOfKey(key), 'window');
  // SYNs shed (the resolve queue was full): flowpin never learned where those flows go.
  for (const id of sw.shed) if (!counted.has(id)) count(id, 'shed');
  // Flows the switch could not resolve: wherever they go, nothing pinned them.
  for (const id of sw.unresolved) if (!counted.has(id)) count(id, 'unresolved');
  return out;
}
