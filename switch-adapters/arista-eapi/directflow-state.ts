// Reads `show directflow detail` as EOS answers it, in both forms, and merges them. Pure.
//
// JSON (DirectFlowAssist tests/feature/show_directflow_detail.txt, EOS 4.14/4.15):
//   {"details": {"status": {NAME: "Flow programmed" | ...}, "numFlowsProgrammed": N},
// "flows": [{name, priority, matchPackets, matchBytes, hardTimeout, idleTimeout, persistent, match, action}]}
// Status prose (DirectFlowAssist DirectFlowSwitch.get_inactive_flownames): "Flow programmed",
// "Flow not programmed", "Flow rejected due to insufficient resources". No capture shows the
// JSON of a nexthop action, so the nexthop comes from the text form (`output nexthop: A`,
// networkop/ecmp-conntrack README). EOS 4.35.4M omits a flow waiting for resources from the
// JSON while the text keeps it, marking its header `(Waiting for a resource to be allocated)`
// and counting it in `Flows: N programmed, M rejected` (ANTA sa_142.py and its tests).
// A flow is programmed only when nothing says otherwise and the JSON says so.

import { canonicalIp } from '../../lib/addr.js';
import type { NotProgrammedReason } from '../contract.js';

export const STATUS_PROGRAMMED = 'Flow programmed';
export const STATUS_NOT_PROGRAMMED = 'Flow not programmed';
export const STATUS_REJECTED_RESOURCES = 'Flow rejected due to insufficient resources';
/** The 4.35 text header annotation of a flow waiting for TCAM space. */
export const ANNOTATION_WAITING = 'Waiting for a resource to be allocated';

export interface JsonFlow {
  name: string;
  status: string | undefined;
  packets: number;
  bytes: number;
  idleTimeoutS: number | undefined;
  persistent: boolean | undefined;
}

export interface DirectflowJson {
  flows: Map<string, JsonFlow>;
  /** Status of every flow `details.status` names (some may be missing from `flows`). */
  status: Map<string, string>;
  numFlowsProgrammed: number | undefined;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export function parseDirectflowJson(result: unknown): DirectflowJson {
  const r = (typeof result === 'object' && result !== null ? result : {}) as {
    details?: { status?: unknown; numFlowsProgrammed?: unknown };
    flows?: unknown;
  };
  const status = new Map<string, string>();
  const st = r.details?.status;
  if (typeof st === 'object' && st !== null)
    for (const [k, v] of Object.entries(st)) if (typeof v === 'string') status.set(k, v);
  const flows = new Map<string, JsonFlow>();
  for (const raw of Array.isArray(r.flows) ? (r.flows as unknown[]) : []) {
    if (typeof raw !== 'object' || raw === null) continue;
    const f = raw as Record<string, unknown>;
    if (typeof f['name'] !== 'string') continue;
    const name = f['name'];
    flows.set(name, {
      name,
      status: status.get(name),
      packets: num(f['matchPackets']) ?? 0,
      bytes: num(f['matchBytes']) ?? 0,
      idleTimeoutS: num(f['idleTimeout']),
      persistent: typeof f['persistent'] === 'boolean' ? f['persistent'] : undefined,
    });
  }
  return { flows, status, numFlowsProgrammed: num(r.details?.numFlowsProgrammed) };
}

export interface TextFlow {
  name: string;
  /** What the header says in parentheses after the name, if anything. */
  annotation: string | undefined;
  nexthop: string | undefined;
  packets: number | undefined;
  bytes: number | undefined;
  idleTimeoutS: number | undefined;
}

export interface DirectflowText {
  flows: Map<string, TextFlow>;
  /** The `Flows: N programmed, M rejected` footer, where the release prints it. */
  programmed: number | undefined;
  rejected: number | undefined;
}

const HEADER = /^Flow (\S+):(?:\s+\((.*)\))?\s*$/;
const FOOTER = /^Flows:\s+(\d+) programmed,\s+(\d+) rejected\s*$/;

export function parseDirectflowText(output: unknown): DirectflowText {
  const out: DirectflowText = { flows: new Map(), programmed: undefined, rejected: undefined };
  if (typeof output !== 'string') return out;
  let cur: TextFlow | undefined;
  for (const line of output.split(/\r?\n/)) {
    const h = HEADER.exec(line);
    if (h) {
      cur = {
        name: h[1] as string,
        annotation: h[2],
        nexthop: undefined,
        packets: undefined,
        bytes: undefined,
        idleTimeoutS: undefined,
      };
      out.flows.set(cur.name, cur);
      continue;
    }
    const f = FOOTER.exec(line);
    if (f) {
      out.programmed = Number(f[1]);
      out.rejected = Number(f[2]);
      cur = undefined;
      continue;
    }
    if (cur === undefined) continue;
    const nh = /^\s+output nexthop:\s+(\S+)/.exec(line);
    if (nh) {
      try {
        cur.nexthop = canonicalIp(nh[1] as string);
      } catch {
        cur.nexthop = undefined;
      }
      continue;
    }
    const m = /^\s+matched:\s+(\d+) packets?,\s+(\d+) bytes?/.exec(line);
    if (m) {
      cur.packets = Number(m[1]);
      cur.bytes = Number(m[2]);
      continue;
    }
    const idle = /^\s+idle timeout:\s+(\d+)/.exec(line);
    if (idle) cur.idleTimeoutS = Number(idle[1]);
  }
  return out;
}

export type FlowState =
  | { programmed: true }
  /**
   * `expired`: "Flow not programmed" (a timed-out flow, or one not programmed yet); the caller tells which.
   */
  | { programmed: false; why: 'rejected' | 'not-programmed' | 'unknown' };

/**
 * A flow's programming state from what each form says of it; unrecognised or missing counts as not
 * programmed.
 */
export function flowState(jsonStatus: string | undefined, annotation: string | undefined): FlowState {
  if (annotation !== undefined && annotation.includes(ANNOTATION_WAITING))
    return { programmed: false, why: 'rejected' };
  if (jsonStatus === STATUS_REJECTED_RESOURCES) return { programmed: false, why: 'rejected' };
  if (annotation !== undefined)
    return { programmed: false, why: jsonStatus === STATUS_NOT_PROGRAMMED ? 'not-programmed' : 'unknown' };
  if (jsonStatus === STATUS_PROGRAMMED) return { programmed: true };
  if (jsonStatus === STATUS_NOT_PROGRAMMED) return { programmed: false, why: 'not-programmed' };
  return { programmed: false, why: 'unknown' };
}

export interface MergedFlow {
  name: string;
  nexthop: string | undefined;
  state: FlowState;
  packets: number;
  bytes: number;
  idleTimeoutS: number | undefined;
}

export interface DirectflowState {
  flows: Map<string, MergedFlow>;
  /** Programmed flows of every owner (numFlowsProgrammed, or the text footer). */
  programmed: number | undefined;
  /** Flows of every owner rejected for resources. */
  rejected: number;
}

/** Merges both forms: the text lists every configured flow; the JSON adds status and counters. */
export function mergeDirectflow(json: DirectflowJson, text: DirectflowText): DirectflowState {
  const flows = new Map<string, MergedFlow>();
  const names = new Set([...text.flows.keys(), ...json.flows.keys(), ...json.status.keys()]);
  let rejected = 0;
  for (const name of names) {
    const t = text.flows.get(name);
    const j = json.flows.get(name);
    const state = flowState(json.status.get(name), t?.annotation);
    if (!state.programmed && state.why === 'rejected') rejected++;
    flows.set(name, {
      name,
      nexthop: t?.nexthop,
      state,
      packets: j?.packets ?? t?.packets ?? 0,
      bytes: j?.bytes ?? t?.bytes ?? 0,
      idleTimeoutS: j?.idleTimeoutS ?? t?.idleTimeoutS,
    });
  }
  return {
    flows,
    programmed: json.numFlowsProgrammed ?? text.programmed,
    rejected: Math.max(rejected, text.rejected ?? 0),
  };
}

/**
 * The contract's reason for a flow that is not programmed; `writtenAgoMs` tells a pending flow from an
 * expired one.
 */
export function notProgrammedReason(
  why: 'rejected' | 'not-programmed' | 'unknown',
  writtenAgoMs: number | undefined,
  idleTimeoutS: number | undefined,
): NotProgrammedReason {
  if (why === 'rejected') return 'table-full';
  if (why === 'unknown') return 'unknown';
  // A flow cannot have idled out before its idle timeout has passed since it was written.
  if (
    writtenAgoMs !== undefined &&
    (idleTimeoutS === undefined || idleTimeoutS === 0 || writtenAgoMs < idleTimeoutS * 1000)
  )
    return 'pending';
  return 'idle-timeout';
}
