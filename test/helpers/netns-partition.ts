// A network namespace for a `flowpin run` instance that a test partitions from etcd: the
// namespace joined to the root namespace by a veth pair with a /30 on it (etcd, the simulator's
// eAPI and gNMI target are reached at the root's end, the mirror sessions reach the instance at
// the namespace's end), and an nft table inside the namespace that drops only its packets to
// etcd's client ports (the partition), deleted to heal it. Removing the namespace removes the
// pair. Needs root, ip netns and nft (the skip rule below: a failure under CI=true).

import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import type { NsPlacement } from '../../torture/procs.js';
import { TestNetns } from './netns.js';
import { have, isRoot, skipUnless } from './tools.js';

/** The reason to skip, or false: root, ip netns and nft (under CI=true a missing one throws). */
export const skipNetnsPartition = (): string | false =>
  skipUnless(isRoot() && have('nft', ['-v']) && have('ip', ['-V']), 'root with ip netns and nft');

const TABLE = 'fpcut';

export class PartitionNs {
  readonly ns: TestNetns;
  readonly place: NsPlacement;

  constructor() {
    this.ns = new TestNetns();
    try {
      const tag = this.ns.name.slice(-6);
      const host = `fph${tag}`;
      const peer = `fpn${tag}`;
      const base = randomInt(0, 64) * 4;
      const hostAddr = `10.254.${randomInt(0, 256)}.${base + 1}`;
      const nsAddr = hostAddr.replace(/\.\d+$/, `.${base + 2}`);
      execFileSync('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer, 'netns', this.ns.name]);
      execFileSync('ip', ['addr', 'add', `${hostAddr}/30`, 'dev', host]);
      execFileSync('ip', ['link', 'set', host, 'up']);
      this.ns.exec('ip', ['addr', 'add', `${nsAddr}/30`, 'dev', peer]);
      this.ns.exec('ip', ['link', 'set', peer, 'up']);
      this.place = { prefix: ['ip', 'netns', 'exec', this.ns.name], hostAddr, nsAddr };
    } catch (err) {
      this.ns.remove();
      throw err;
    }
  }

  /**
   * The partition: the namespace's packets to the client ports of etcd's `endpoints` (at the root's end
   * of the pair) dropped on output; the eAPI, the gNMI target and the mirror pass.
   */
  partition(endpoints: readonly string[]): void {
    const ports = endpoints.map((e) => /:(\d+)$/.exec(e)?.[1] as string);
    this.ns.exec(
      'nft',
      ['-f', '-'],
      [
        `table inet ${TABLE} {`,
        '  chain out {',
        '    type filter hook output priority 0; policy accept;',
        `    ip daddr ${this.place.hostAddr} tcp dport { ${ports.join(', ')} } drop`,
        '  }',
        '}',
        '',
      ].join('\n'),
    );
  }

  /** The partition healed (the nft table deleted). */
  heal(): void {
    this.ns.exec('nft', ['delete', 'table', 'inet', TABLE]);
  }

  /** The namespace removed, and with it the veth pair and any partition. */
  remove(): void {
    this.ns.remove();
  }
}
