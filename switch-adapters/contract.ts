// The one contract every dataplane adapter implements. Vendor differences are data (the
// capabilities object), never branches in the controller. Every operation is batched and
// idempotent: installing a pin that exists, or removing one that does not, is not an error.

/** A TCP flow toward a VIP, as the switch matches it. */
export interface FlowSpec {
  family: 4 | 6;
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

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
  reason?: 'table-full' | 'idle-timeout' | 'hard-timeout' | 'disabled' | 'unknown';
  packets: number;
  bytes: number;
}

export interface PinOutcome {
  flow: FlowSpec;
  ok: boolean;
  /** Why the switch refused it, when not ok. */
  error?: string;
}

export interface AdapterCapabilities {
  /** The adapter can tell which nexthop a flow hashes to. */
  resolvesNexthop: boolean;
  /** Flows per resolve request. */
  resolveBatchSize: number;
  /** Pins per install/remove request. */
  pinBatchSize: number;
  /** The switch ages pins itself (DirectFlow `timeout idle`); otherwise the controller does. */
  nativeIdleTimeout: boolean;
  /** Pin table entries for flowpin on this switch. */
  pinTableSize: number;
  /** The adapter can add and remove members of a VIP's ECMP group. */
  changesGroups: boolean;
  /** The adapter can tell which flows an added member would take over. */
  predictsMovedFlows: boolean;
}

export interface SwitchAdapter {
  readonly kind: string;
  readonly capabilities: AdapterCapabilities;
  /** Checks that the switch answers (and readies pin support); throws a SwitchError if not. */
  connect(): Promise<void>;
  /** The nexthop each flow hashes to now, ignoring pins; undefined where the switch cannot tell. */
  resolve(flows: FlowSpec[]): Promise<(string | undefined)[]>;
  installPins(pins: PinRule[]): Promise<PinOutcome[]>;
  removePins(flows: FlowSpec[]): Promise<void>;
  /** Every pin flowpin owns on the switch. */
  listPins(): Promise<InstalledPin[]>;
  /** Members of a VIP's ECMP group. */
  groupMembers(vip: string): Promise<string[]>;
  addGroupMember(vip: string, nexthop: string): Promise<void>;
  removeGroupMember(vip: string, nexthop: string): Promise<void>;
  /** For each flow, whether adding `nexthop` to the VIP's group would move it (predictsMovedFlows only). */
  movedByAdd?(vip: string, nexthop: string, flows: FlowSpec[]): Promise<boolean[]>;
  close(): Promise<void>;
}

/** A stable text key of a flow, for maps. */
export const flowId = (f: FlowSpec): string => `${f.src}|${f.sport}|${f.dst}|${f.dport}`;
