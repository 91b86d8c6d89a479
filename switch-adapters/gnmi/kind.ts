// The gnmi kind: its configuration section (`gnmi`), the checks a schema cannot say (the
// target's host:port, TLS or an explicit plaintext, the group path), and the factory of
// GnmiAdapter.

import { Type, type Static } from 'typebox';
import { Int, Num, Str, Strs, strict } from '../../lib/schema.js';
import type { AdapterKind, KeyPath, SettingsReader } from '../kind.js';
import { GnmiAdapter } from './adapter.js';
import type { GroupPaths } from './openconfig.js';

export const KIND = 'gnmi';

/** The pin table's size where `pinTableSize` is not configured (gNMI does not say it). */
const DEFAULT_PIN_TABLE = 1500;

export const GnmiSchema = Type.Object(
  {
    address: Str({ description: 'host:port (IPv6 in brackets)' }),
    username: Type.Optional(Str()),
    password: Type.Optional(Str()),
    timeoutMs: Int(1, undefined, 10_000),
    caFile: Type.Optional(Str()),
    insecure: Type.Boolean({ default: false }),
    tlsServerName: Type.Optional(Str()),
    networkInstance: Str({ default: 'default' }),
    policyId: Str({ default: 'flowpin' }),
    ingressInterfaces: Strs(1),
    pinBatchSize: Int(1, 5000, 200),
    sampleIntervalMs: Int(10, undefined, 10_000),
    groupProgramDelayMs: Num(0, 600_000, 500),
    requiredModels: Type.Optional(Strs()),
    pinTable: Type.Optional(Type.Object({ component: Str(), resource: Str() }, strict)),
    group: Type.Optional(
      Type.Object({ list: Str(), key: Str(), addressLeaf: Str(), programmedLeaf: Str() }, strict),
    ),
  },
  strict,
);

export type GnmiDoc = Static<typeof GnmiSchema>;

export interface GnmiSettings {
  /** host:port of the gNMI target. */
  address: string;
  username: string | undefined;
  password: string | undefined;
  timeoutMs: number;
  caFile: string | undefined;
  insecure: boolean;
  tlsServerName: string | undefined;
  networkInstance: string;
  policyId: string;
  ingressInterfaces: string[];
  pinBatchSize: number;
  sampleIntervalMs: number;
  /** Bound on a group change reaching forwarding (a removal cannot be read back over gNMI). */
  groupProgramDelayMs: number;
  requiredModels: string[] | undefined;
  pinTable: { component: string; resource: string } | undefined;
  group: GroupPaths | undefined;
}

export function readGnmi(g: GnmiDoc, at: SettingsReader, path: KeyPath): GnmiSettings {
  if (!(
    /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(g.address) &&
    Number(g.address.slice(g.address.lastIndexOf(':') + 1)) <= 65535
  ))
    at.fail([...path, 'address'], `must be host:port (IPv6 in brackets), got '${g.address.slice(0, 64)}'`);
  if (g.caFile === undefined && !g.insecure)
    at.fail([...path, 'caFile'], 'needed for TLS (or set insecure: true for plaintext gRPC)');
  if (g.caFile !== undefined && g.insecure)
    at.fail([...path, 'insecure'], 'cannot be true together with caFile');
  if (g.group !== undefined && !(g.group.list.startsWith('/') && g.group.list.includes('{vip}')))
    at.fail(
      [...path, 'group', 'list'],
      `must be an absolute path with {vip}, got '${g.group.list.slice(0, 64)}'`,
    );
  return {
    address: g.address,
    username: g.username,
    password: g.password === undefined ? undefined : at.secret([...path, 'password'], g.password),
    timeoutMs: g.timeoutMs,
    caFile: g.caFile === undefined ? undefined : at.readableFile([...path, 'caFile'], g.caFile),
    insecure: g.insecure,
    tlsServerName: g.tlsServerName,
    networkInstance: g.networkInstance,
    policyId: g.policyId,
    ingressInterfaces: [...g.ingressInterfaces],
    pinBatchSize: g.pinBatchSize,
    sampleIntervalMs: g.sampleIntervalMs,
    groupProgramDelayMs: g.groupProgramDelayMs,
    requiredModels: g.requiredModels === undefined ? undefined : [...g.requiredModels],
    pinTable: g.pinTable === undefined ? undefined : { ...g.pinTable },
    group: g.group === undefined ? undefined : { ...g.group },
  };
}

export const gnmiKind: AdapterKind<GnmiSettings> = {
  kind: KIND,
  section: { key: 'gnmi', schema: GnmiSchema },
  read: readGnmi,
  mirrorSource: (g) => g.address.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''),
  securityWarnings: (g) =>
    g.insecure
      ? [
          [
            'insecure',
            'gNMI without TLS: credentials and pins cross the network unencrypted (give caFile instead)',
          ],
        ]
      : [],
  create(setup, g) {
    return new GnmiAdapter({
      switchName: setup.name,
      address: g.address,
      timeoutMs: g.timeoutMs,
      insecure: g.insecure,
      networkInstance: g.networkInstance,
      policyId: g.policyId,
      ingressInterfaces: g.ingressInterfaces,
      pinBatchSize: g.pinBatchSize,
      pinTableSize: setup.pinTableSize ?? DEFAULT_PIN_TABLE,
      sampleIntervalMs: g.sampleIntervalMs,
      groupProgramDelayMs: g.groupProgramDelayMs,
      ...(g.username === undefined ? {} : { username: g.username }),
      ...(g.password === undefined ? {} : { password: g.password }),
      ...(g.caFile === undefined ? {} : { caFile: g.caFile }),
      ...(g.tlsServerName === undefined ? {} : { tlsServerName: g.tlsServerName }),
      ...(g.requiredModels === undefined ? {} : { requiredModels: g.requiredModels }),
      ...(g.pinTable === undefined ? {} : { pinTable: g.pinTable }),
      ...(g.group === undefined ? {} : { group: g.group }),
    });
  },
};
