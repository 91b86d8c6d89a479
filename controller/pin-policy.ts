// Which flows need a pin, now: a pure function of the pin mode and the changes in
// progress. `always` pins every resolved flow (the prototype); `on-change` pins only flows
// that a pending or applied change would move: the live flows on a nexthop being drained,
// and before an addition the flows the new member would take over (or, where the switch
// cannot tell, every live flow of the VIP).

export type PinMode = 'always' | 'on-change';

export interface ChangeView {
  kind: 'drain' | 'add';
  vip: string;
  nexthop: string;
  /** Pins are wanted until the change is done (drain complete, or add applied and settled). */
  active: boolean;
}

export interface PinQuestion {
  vip: string;
  nexthop: string;
  /** Whether an addition in progress on the VIP would move this flow; undefined if unknown. */
  movedByAdd: boolean | undefined;
}

/** Why a flow needs a pin, or undefined if it does not. */
export function pinReason(mode: PinMode, changes: readonly ChangeView[], q: PinQuestion): 'always' | 'drain' | 'add' | undefined {
  if (mode === 'always') return 'always';
  for (const c of changes) {
    if (!c.active || c.vip !== q.vip) continue;
    if (c.kind === 'drain' && c.nexthop === q.nexthop) return 'drain';
    if (c.kind === 'add' && c.nexthop !== q.nexthop && q.movedByAdd !== false) return 'add';
  }
  return undefined;
}
