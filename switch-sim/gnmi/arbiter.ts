// The simulated gNMI target's master arbitration, as the specification has a target do it
// (openconfig/reference rpc/gnmi/gnmi-master-arbitration.md, 3.2 "SetRequest Handling"): per
// role (an unset role is the default role), the largest election id seen is stored; a Set with
// an equal id proceeds, a larger one is stored and proceeds, a smaller one is refused with
// PERMISSION_DENIED naming the stored id, and an arbitration extension without election_id is
// INVALID_ARGUMENT. A Set with no arbitration extension "should be accepted and processed"
// (3.2): the target accepts it, and counts it where arbitration is in use in its role's target
// (such a Set is how a client outside the replica group, or one that forgot the extension,
// writes past the fence; section 1 says such Sets are rejected, 3.2 that they are accepted:
// this target follows 3.2, the detailed handling). Other extensions are refused, as before.

import { uint128, type Extension } from '../../proto/gnmi.js';
import { GnmiError } from './schema.js';

export class MasterArbiter {
  /** The largest election id seen, by role id ('' for the default role). */
  readonly highest = new Map<string, bigint>();
  /** Sets refused for a smaller election id than the stored one. */
  staleRefused = 0;
  /** Sets applied with a smaller election id than the largest seen in their role (must stay 0). */
  staleLanded = 0;
  /** Sets applied without arbitration while some client uses it (accepted per 3.2). */
  unarbitrated = 0;

  /**
   * Checks a Set's extensions before it is applied; throws the error the target answers with.
   * Returns the role and id of an arbitrated Set (for `landed`), undefined otherwise.
   */
  check(ext: readonly Extension[] | undefined): { role: string; id: bigint } | undefined {
    let arb: Extension['master_arbitration'];
    for (const e of ext ?? []) {
      if (e.master_arbitration !== undefined && e.master_arbitration !== null) arb = e.master_arbitration;
      else
        throw new GnmiError(
          'UNIMPLEMENTED',
          `extension ${e.ext ?? 'of a gNMI release after 0.10.0'} is not supported by this target`,
        );
    }
    if (arb === undefined) {
      if (this.highest.size > 0) this.unarbitrated++;
      return undefined;
    }
    if (arb.election_id === undefined || arb.election_id === null)
      throw new GnmiError('INVALID_ARGUMENT', 'master arbitration without election_id');
    const role = arb.role?.id ?? '';
    const id = uint128(arb.election_id);
    const stored = this.highest.get(role);
    if (stored !== undefined && id < stored) {
      this.staleRefused++;
      throw new GnmiError(
        'PERMISSION_DENIED',
        `election id ${id} of role '${role}' is lower than the master's ${stored}: not the master`,
      );
    }
    this.highest.set(role, id);
    return { role, id };
  }

  /** A Set that `check` admitted was applied: counted stale if a larger id was stored meanwhile. */
  landed(admitted: { role: string; id: bigint } | undefined): void {
    if (admitted === undefined) return;
    if (admitted.id < (this.highest.get(admitted.role) ?? 0n)) this.staleLanded++;
  }
}
