// NexthopRegistry: interns (switch, VIP, nexthop) triples as small integers, so that a
// flow's resolved nexthop is one number in the flow table and the nexthop index is keyed
// by number. Ids start at 1; 0 means "not resolved yet".

export interface NexthopRef {
  readonly switchName: string;
  readonly vip: string;
  readonly nexthop: string;
}

export class NexthopRegistry {
  private readonly ids = new Map<string, number>();
  private readonly refs: NexthopRef[] = [];

  /** The id of a triple, made on first use. */
  intern(switchName: string, vip: string, nexthop: string): number {
    const k = `${switchName}\u0000${vip}\u0000${nexthop}`;
    let id = this.ids.get(k);
    if (id === undefined) {
      this.refs.push(Object.freeze({ switchName, vip, nexthop }));
      id = this.refs.length;
      this.ids.set(k, id);
    }
    return id;
  }

  /** The id of a triple, or undefined if it was never interned. */
  find(switchName: string, vip: string, nexthop: string): number | undefined {
    return this.ids.get(`${switchName}\u0000${vip}\u0000${nexthop}`);
  }

  ref(id: number): NexthopRef | undefined {
    return this.refs[id - 1];
  }
}
