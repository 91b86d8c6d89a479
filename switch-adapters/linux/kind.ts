// The linux kind: its configuration section (`linux`), the checks a schema cannot say (the
// command prefix's words and the interface names, which reach command lines), and the factory
// of LinuxRouterAdapter.

import { Type, type Static } from 'typebox';
import { Int, Str, Strs, strict } from '../../lib/schema.js';
import type { AdapterKind, KeyPath, SettingsReader } from '../kind.js';
import { LinuxRouterAdapter } from './adapter.js';
import { checkPrefix } from './exec.js';

export const KIND = 'linux';

export const LinuxSchema = Type.Object(
  {
    prefix: Type.Array(Str(), { default: [] }),
    clientInterfaces: Strs(1),
    serverInterfaces: Type.Array(Str(), { default: [] }),
    mirrorDevice: Type.Optional(Str()),
    buckets: Int(2, 4096, 64),
    idBase: Int(1, 0x7fffffff - 10_000, 7000),
    tableBase: Int(256, 0x7fffffff - 300, 7000),
    timeoutMs: Int(1, undefined, 30_000),
    resolveBatchSize: Int(1, 100_000, 10_000),
    pinBatchSize: Int(1, 100_000, 5000),
    probeFlows: Int(1, 256, 8),
    probeTimeoutMs: Int(1, undefined, 10_000),
  },
  strict,
);

export type LinuxDoc = Static<typeof LinuxSchema>;

/** The Linux router adapter's settings (docs/linux.md). */
export interface LinuxSettings {
  /** Words before every `ip`/`nft` command, e.g. [ip, netns, exec, router1] or [ssh, router1]. */
  prefix: string[];
  clientInterfaces: string[];
  /** Server-facing devices: the servers' SYN-ACK, FIN and RST are mirrored from there too. */
  serverInterfaces: string[];
  mirrorDevice: string | undefined;
  buckets: number;
  idBase: number;
  tableBase: number;
  timeoutMs: number;
  resolveBatchSize: number;
  pinBatchSize: number;
  probeFlows: number;
  probeTimeoutMs: number;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

export function readLinux(l: LinuxDoc, at: SettingsReader, path: KeyPath): LinuxSettings {
  l.prefix.forEach((w, i) => {
    const bad = checkPrefix([w]);
    if (bad !== undefined) at.fail([...path, 'prefix', i], bad);
  });
  const ifname = (p: KeyPath, w: string): string =>
    IFNAME.test(w) ? w : at.fail(p, `'${w.slice(0, 64)}' is not an interface name`);
  return {
    prefix: [...l.prefix],
    clientInterfaces: l.clientInterfaces.map((w, i) => ifname([...path, 'clientInterfaces', i], w)),
    serverInterfaces: l.serverInterfaces.map((w, i) => ifname([...path, 'serverInterfaces', i], w)),
    mirrorDevice:
      l.mirrorDevice === undefined ? undefined : ifname([...path, 'mirrorDevice'], l.mirrorDevice),
    buckets: l.buckets,
    idBase: l.idBase,
    tableBase: l.tableBase,
    timeoutMs: l.timeoutMs,
    resolveBatchSize: l.resolveBatchSize,
    pinBatchSize: l.pinBatchSize,
    probeFlows: l.probeFlows,
    probeTimeoutMs: l.probeTimeoutMs,
  };
}

export const linuxKind: AdapterKind<LinuxSettings> = {
  kind: KIND,
  section: { key: 'linux', schema: LinuxSchema },
  read: readLinux,
  create(setup, l) {
    return new LinuxRouterAdapter({
      switchName: setup.name,
      prefix: [...l.prefix],
      vips: setup.vips.map((v) => ({ address: v.address, nexthops: [...v.nexthops] })),
      clientInterfaces: [...l.clientInterfaces],
      serverInterfaces: [...l.serverInterfaces],
      ...(l.mirrorDevice === undefined ? {} : { mirrorDevice: l.mirrorDevice }),
      buckets: l.buckets,
      idBase: l.idBase,
      tableBase: l.tableBase,
      // The adapter's own size (65535) unless configured.
      ...(setup.pinTableSize === undefined ? {} : { pinTableSize: setup.pinTableSize }),
      idleTimeoutS: setup.pinIdleTimeoutS,
      timeoutMs: l.timeoutMs,
      resolveBatchSize: l.resolveBatchSize,
      pinBatchSize: l.pinBatchSize,
      probeFlows: l.probeFlows,
      probeTimeoutMs: l.probeTimeoutMs,
    });
  },
};
