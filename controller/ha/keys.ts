// Where flowpin keeps its coordination state in etcd, under the configured prefix (default
// /flowpin/):
//   <prefix>members/<name>        {name, apiAddress, lease}   bound to the member's lease
//   <prefix>switches/<sw>/owner   {name, lease}               bound to the owner's lease
//   <prefix>switches/<sw>/epoch   decimal; only grows, bumped in the txn that takes the owner key
//   <prefix>switches/<sw>/changes the switch's change records (JSON), written by its owner only
//   <prefix>switches/<sw>/watch   what the owner watched of the switch's mirror (JSON), likewise
// Switch and member names are the configuration's (letters, digits, . _ -), so no name can
// reach outside its directory.

export interface HaKeys {
  readonly prefix: string;
  members(): string;
  member(name: string): string;
  owner(sw: string): string;
  epoch(sw: string): string;
  changes(sw: string): string;
  watch(sw: string): string;
}

export function haKeys(prefix: string): HaKeys {
  const sw = (name: string, leaf: string): string => `${prefix}switches/${encodeURIComponent(name)}/${leaf}`;
  return {
    prefix,
    members: () => `${prefix}members/`,
    member: (name) => `${prefix}members/${encodeURIComponent(name)}`,
    owner: (name) => sw(name, 'owner'),
    epoch: (name) => sw(name, 'epoch'),
    changes: (name) => sw(name, 'changes'),
    watch: (name) => sw(name, 'watch'),
  };
}

/** What an owner key holds: who owns the switch, under which lease (hex, as etcdctl prints it). */
export interface OwnerValue {
  name: string;
  lease: string;
}

export const ownerText = (o: OwnerValue): string => JSON.stringify({ name: o.name, lease: o.lease });

export function parseOwner(text: string | null): OwnerValue | null {
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as Partial<OwnerValue>;
    return typeof v.name === 'string' && typeof v.lease === 'string'
      ? { name: v.name, lease: v.lease }
      : null;
  } catch {
    return null;
  }
}

/** What a member key holds. */
export interface MemberValue {
  name: string;
  apiAddress: string;
  lease: string;
}
