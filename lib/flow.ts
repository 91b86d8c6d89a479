// A TCP flow toward a VIP as a switch matches it, and its stable text key: the one shape the
// adapters, the simulator and the controller share.

export interface FlowSpec {
  family: 4 | 6;
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

/** A stable text key of a flow, for maps. */
export const flowId = (f: FlowSpec): string => `${f.src}|${f.sport}|${f.dst}|${f.dport}`;
