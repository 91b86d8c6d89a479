// The one contract every dataplane adapter implements. Vendor differences are data (the
// capabilities object), never branches in the controller. Every operation is batched and
// idempotent: installing a pin that exists, or removing one that does not, is not an error.

import type { FlowSpec } from '../lib/flow.js';
import type { FenceKind, FenceToken } from './fence.js';

export { flowId, type FlowSpec } from '../lib/flow.js';
export type { FenceKind, FenceToken } from './fence.js';

export interface PinRule {
  flow: FlowSpec;
  nexthop: string;
  /** Idle timeout for adapters with native timeouts, seconds. */
  idleTimeoutS: number;
}

export interface InstalledPin {
  /** The adapter's name for the pin on the switch. */
  name: string;
  flow: FlowSpec;
  nexthop: string;
  /** Programmed in hardware, or configured but not programmed (with the reason). */
  programmed: boolean;
  reason?: NotProgrammedReason;
  packets: number;
  bytes: number;
  /** The epoch of the owner that wrote it, where the switch keeps it (eAPI, simulator: in its name). */
  epoch?: bigint;
}

/**
 * Why a configured pin is not programmed. `pending`: accepted, the switch is still
 * programming it (read it back later); every other reason means it will not forward.
 */
export type NotProgrammedReason =
  'pending' | 'table-full' | 'rejected' | 'idle-timeout' | 'hard-timeout' | 'disabled' | 'unknown';

export interface PinOutcome {
  flow: FlowSpec;
  /** The switch accepted the pin as configuration (not the same as programmed). */
  ok: boolean;
  /** Why the switch refused it, when not ok. */
  error?: string;
  /**
   * Programming state where the adapter read it back with the write: true programmed, false
   * not (with `reason`); absent when unknown yet (the controller reads it back with listPins).
   */
  programmed?: boolean;
  reason?: NotProgrammedReason;
}

/** The switch's pin table as the switch reports it (shared with entries flowpin does not own). */
export interface PinTableUsage {
  capacity: number;
  /** Programmed entries of every owner. */
  used: number;
}

/**
 * How the switch knows a server (a nexthop): the MAC address it answers from and, where the
 * mirror names ports, the mirror port index of the port it is on. Learnt from the switch's
 * neighbour (ARP/ND) and MAC tables; used to tell which server sent a mirrored reply.
 */
export interface ServerIdentity {
  nexthop: string;
  /** Lower-case, colon-separated. */
  mac?: string;
  /** The port's index as the switch's ERSPAN header names it (ERSPAN II Index, platform Port ID). */
  portIndex?: number;
  /** The interface the switch reaches the server through, for messages. */
  interface?: string;
}

/**
 * What an adapter can do, as data: the controller reads these flags and never probes for a
 * method. Every method of the contract exists on every adapter; one whose flag is false
 * rejects with SwitchUnsupportedError, and the controller does not call it.
 */
export interface AdapterCapabilities {
  /** The adapter can tell which nexthop a flow hashes to (`resolve` answers). */
  resolvesNexthop: boolean;
  /** Flows per resolve request. */
  resolveBatchSize: number;
  /** Pins per install/remove request. */
  pinBatchSize: number;
  /** The switch ages pins itself (DirectFlow `timeout idle`); otherwise the controller does. */
  nativeIdleTimeout: boolean;
  /** Pin table entries for flowpin on this switch. */
  pinTableSize: number;
  /** The adapter can add and remove members of a VIP's ECMP group (as configured). */
  changesGroups: boolean;
  /** The adapter can tell which flows an added member would take over (`movedByAdd`). */
  predictsMovedFlows: boolean;
  /** The state of a few pins can be read without listing the table (`readPins`). */
  readsPins: boolean;
  /** The switch reports its pin table's capacity and use by every owner (`pinTableUsage`). */
  reportsTableUsage: boolean;
  /** The members forwarding uses now can be read back (`groupProgrammed`). */
  readsProgrammedGroup: boolean;
  /** The switch reports the servers it knows, for telling a mirrored reply's server (`serverIdentities`). */
  knowsServers: boolean;
  /**
   * Upper bound (ms) for a group change to take effect in forwarding after the switch
   * accepted it, used where the programmed group cannot be read back (readsProgrammedGroup
   * false). 0: effective when accepted.
   */
  groupProgramDelayMs: number;
  /**
   * How a stale owner's writes are kept off the switch under high availability (docs/fencing.md):
   * `refused`, the switch refuses a write of a lower epoch than one it has seen (gNMI master
   * arbitration, the Linux adapter's nft fence element); `timed`, it cannot, and the writer stops
   * starting writes at its fence's `validUntil` (eAPI, the simulator).
   */
  fencing: FenceKind;
}

/**
 * The adapter of one switch. Reads (resolve, listPins, readPins, pinTableUsage, groupMembers,
 * groupProgrammed, serverIdentities, movedByAdd, problems) change nothing on the switch; only
 * the writes (connect, installPins, removePins, removeStrays, addGroupMember,
 * removeGroupMember, fenceTakeover) do, and the controller calls those from the switch's
 * reconciler alone (connect: at start; fenceTakeover: at a takeover). Under high availability
 * each write carries the owner's fence (`fence`); without it the adapter writes as it always
 * has. What a read finds to clean up is reported, and removed by a write the reconciler asks
 * for in its round.
 */
export interface SwitchAdapter {
  readonly kind: string;
  readonly capabilities: AdapterCapabilities;
  /** Checks that the switch answers (and readies pin support); throws a SwitchError if not. */
  connect(): Promise<void>;
  /** The nexthop each flow hashes to now, ignoring pins; undefined where the switch cannot tell. */
  resolve(flows: FlowSpec[]): Promise<(string | undefined)[]>;
  installPins(pins: PinRule[], fence?: FenceToken): Promise<PinOutcome[]>;
  removePins(flows: FlowSpec[], fence?: FenceToken): Promise<void>;
  /**
   * Every pin flowpin owns on the switch, with its programming state; entries the switch timed
   * out or could not program are listed as not programmed (the reconciler removes them).
   */
  listPins(): Promise<InstalledPin[]>;
  /**
   * Removes what the last listing found of flowpin's on the switch that no listed pin stands
   * for (a flow left without its action, a second rule holding a flow, a rule it cannot read);
   * answers how many. A write: the reconciler calls it in its resync round, after listPins.
   */
  removeStrays(fence?: FenceToken): Promise<number>;
  /** The state of these flows' pins (undefined where the switch has none) without a listing (readsPins). */
  readPins(flows: FlowSpec[]): Promise<(InstalledPin | undefined)[]>;
  /** The pin table's capacity and programmed entries of every owner (reportsTableUsage). */
  pinTableUsage(): Promise<PinTableUsage>;
  /** Members of a VIP's ECMP group, as configured. */
  groupMembers(vip: string): Promise<string[]>;
  /** Members forwarding uses now, programmed in hardware (readsProgrammedGroup). */
  groupProgrammed(vip: string): Promise<string[]>;
  addGroupMember(vip: string, nexthop: string, fence?: FenceToken): Promise<void>;
  removeGroupMember(vip: string, nexthop: string, fence?: FenceToken): Promise<void>;
  /**
   * A new owner takes the switch with this fence: where the switch keeps a fence (`refused`), it
   * is set to the new epoch now, so that a lower epoch's writes are refused from here on (gNMI:
   * an empty Set with the election id; Linux: the nft fence element replaced). `timed` kinds keep
   * nothing on the switch and do nothing.
   */
  fenceTakeover(fence: FenceToken): Promise<void>;
  /**
   * The servers the switch knows (neighbour and MAC tables), for telling a mirrored reply's server
   * (knowsServers).
   */
  serverIdentities(): Promise<ServerIdentity[]>;
  /** For each flow, whether adding `nexthop` to the VIP's group would move it (predictsMovedFlows). */
  movedByAdd(vip: string, nexthop: string, flows: FlowSpec[]): Promise<boolean[]>;
  /**
   * What the connected adapter cannot answer for now and why, one line each (empty: nothing),
   * e.g. VIPs whose look-ups it holds back. Each makes the switch not ready until it clears.
   */
  problems(): string[];
  /**
   * The switch's VIPs changed at a configuration reload: checks that the new list can be driven
   * (a SwitchUnsupportedError says why not, and the reload is refused) and returns the step that
   * takes it, run once every switch of the reload has been checked. An adapter that keeps no VIP
   * list of its own checks nothing and its step does nothing.
   */
  prepareVips(vips: readonly { address: string; nexthops: readonly string[] }[]): Promise<() => void>;
  close(): Promise<void>;
}
