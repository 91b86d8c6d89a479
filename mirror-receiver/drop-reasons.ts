// Drop reasons of the mirror decoder: a fixed, ordered list, so that counting a drop is
// an array increment on the hot path and every frame lands under exactly one name.

export const DROP_REASONS = [
  'truncated-link',
  'unknown-link-type',
  'not-ip',
  'truncated-outer-ip',
  'bad-outer-ip',
  'outer-fragment',
  'not-gre',
  'truncated-udp',
  'truncated-gre',
  'bad-gre-header',
  'unknown-gre-protocol',
  'truncated-erspan',
  'bad-erspan-header',
  'truncated-ethernet',
  'too-many-vlan-tags',
  'bad-arista-header',
  'unknown-ethertype',
  'truncated-ip',
  'bad-ip-header',
  'bad-ipv6-extension',
  'ip-fragment',
  'not-tcp',
  'truncated-tcp',
  'bad-tcp-header',
  'truncated-vxlan',
  'bad-vxlan-header',
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

/** Result code of a decode: 0 is success, any other value is 1 + the index in DROP_REASONS. */
export type DecodeResult = number;
export const OK: DecodeResult = 0;

const codes = new Map<DropReason, number>(DROP_REASONS.map((r, i) => [r, i + 1]));

/** The result code that stands for a drop reason. */
export function drop(reason: DropReason): DecodeResult {
  const code = codes.get(reason);
  if (code === undefined) throw new Error(`unknown drop reason ${reason}`);
  return code;
}

/** The name of a non-zero result code. */
export function reasonName(code: DecodeResult): DropReason {
  const name = DROP_REASONS[code - 1];
  if (name === undefined) throw new RangeError(`not a drop code: ${code}`);
  return name;
}

/** Counters of frames seen, decoded and dropped by reason; increments only, no allocation. */
export class DecodeCounters {
  frames = 0;
  decoded = 0;
  private readonly dropped = new Float64Array(DROP_REASONS.length + 1);

  count(result: DecodeResult): void {
    this.frames++;
    if (result === OK) this.decoded++;
    else this.dropped[result] = (this.dropped[result] ?? 0) + 1;
  }

  /** Drop counts indexed by result code (index 0 unused); the live array, not a copy. */
  droppedByCode(): Float64Array {
    return this.dropped;
  }

  droppedTotal(): number {
    let sum = 0;
    for (let i = 1; i < this.dropped.length; i++) sum += this.dropped[i] ?? 0;
    return sum;
  }

  /** Non-zero drop counts by reason name. */
  droppedByReason(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 1; i < this.dropped.length; i++) {
      const n = this.dropped[i] ?? 0;
      if (n > 0) out[reasonName(i)] = n;
    }
    return out;
  }

  summary(): { frames: number; decoded: number; dropped: Record<string, number> } {
    return { frames: this.frames, decoded: this.decoded, dropped: this.droppedByReason() };
  }
}
