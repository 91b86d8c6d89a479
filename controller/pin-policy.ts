// Which flows need a pin, now: a pure function of the pin mode and the changes in
// progress. `always` pins every resolved flow (the prototype); `on-change` pins only flows
// that a pending or applied change would move: the live flows on a nexthop being drained,
// and before an addition the flows the new member would take over (or, where the switch
// cannot tell, every live flow of the VIP).

export type PinMode = 'always' | 'on-change';

export interface ChangeView {
  id: string;
  kind: 'drain' | 'add';
  vip: string;
  nexthop: string;
  /** Pins are wanted until the change is done (drain complete, or add applied). */
  active: boolean;
}

export interface PinQuestion {
  vip: string;
  nexthop: string;
  /** Whether an addition in progress on the VIP would move this flow; undefined if unknown. */
  movedByAdd: boolean | undefined;
}

/** Who wants a pin on the flow: 'always', the id of the change that needs it, or undefined if none. */
export function pinReason(mode: PinMode, changes: readonly ChangeView[], q: PinQuestion): string | undefined {
  if (mode === 'always') return 'always';
  for (const c of changes) {
    if (!c.active || c.vip !== q.vip) continue;
    if (c.kind === 'drain' && c.nexthop === q.nexthop) return c.id;
    if (c.kind === 'add' && c.nexthop !== q.nexthop && q.movedByAdd !== false) return c.id;
  }
  return undefined;
}
