// gNMI master arbitration (openconfig/reference rpc/gnmi/gnmi-master-arbitration.md; messages
// in gnmi_ext.proto of openconfig/gnmi: Extension.master_arbitration = 2, MasterArbitration
// { Role role = 1; Uint128 election_id = 2 }, Uint128 { uint64 high = 1; uint64 low = 2 },
// SetRequest.extension = 5). The owner's epoch is the election id: it "MUST be guaranteed to
// be monotonically increasing" (section 1), which the owner's epoch is. The client "carries
// the election ID in all of its Set requests" and sends "an empty Set RPC (with the election ID
// only) as soon as it becomes master" (3.2); the target refuses a smaller id with
// PERMISSION_DENIED. A client that can be part of a replica group "MUST always set this
// extension, and the role MUST be populated" (3.2); but SONiC's target, the one public
// implementation found, refuses any Set that sets a role ("MA: Role is not implemented",
// sonic-net/sonic-gnmi gnmi_server/server.go), so the role is left unset by default (the
// default role, 2.1, in which every flowpin instance is arbitrated) and can be given.

import type { Extension } from '../../proto/gnmi.js';
export { uint128 } from '../../proto/gnmi.js';
import { checkEpoch } from '../fence.js';

const U64 = (1n << 64n) - 1n;

/** The master-arbitration extension with `epoch` as the election id (64-bit halves as decimal strings). */
export function masterArbitration(epoch: bigint, role?: string): Extension {
  const id = checkEpoch(epoch);
  return {
    master_arbitration: {
      ...(role === undefined ? {} : { role: { id: role } }),
      election_id: { high: String(id >> 64n), low: String(id & U64) },
    },
  };
}
