// The arista-eapi kind: its configuration section (`eapi`), the checks a schema cannot say
// (the URL, the group template and its BGP names, secrets and the CA file), and the factory of
// AristaEapiAdapter. Group changes need a template (`groupTemplate` or `groupCommands`):
// without one the adapter refuses them, and flowpin refuses to start.

import { Type, type Static } from 'typebox';
import { Int, Str, Strs, strict } from '../../lib/schema.js';
import type { AdapterKind, KeyPath, SettingsReader } from '../kind.js';
import { AristaEapiAdapter } from './adapter.js';
import type { GroupCommandTemplates, GroupTemplate } from './templates.js';

export const KIND = 'arista-eapi';

export const EapiSchema = Type.Object(
  {
    url: Str(),
    username: Str({ default: 'admin' }),
    password: Str(),
    timeoutMs: Int(1, undefined, 10_000),
    maxConcurrent: Int(1, 64, 4),
    caFile: Type.Optional(Str()),
    insecureSkipVerify: Type.Boolean({ default: false }),
    resolveBatchSize: Int(1, 5000, 200),
    pinBatchSize: Int(1, 1000, 1000),
    groupCommands: Type.Optional(Type.Object({ add: Strs(1), remove: Strs(1) }, strict)),
    groupTemplate: Type.Optional(Type.Enum(['static-ecmp', 'bgp-route-map'])),
    bgp: Type.Optional(
      Type.Object(
        {
          asn: Int(1, 4294967295),
          peerGroup: Str(),
          routeMap: Str({ default: 'FLOWPIN-DRAIN-IN' }),
          prefixList: Type.Optional(Str()),
        },
        strict,
      ),
    ),
    enableSecret: Type.Optional(Str()),
    atomicity: Type.Enum(['session', 'cleanup'], { default: 'session' }),
    readBackLimit: Int(0, undefined, 100_000),
  },
  strict,
);

export type EapiDoc = Static<typeof EapiSchema>;

export interface EapiSettings {
  url: string;
  username: string;
  password: string;
  timeoutMs: number;
  maxConcurrent: number;
  caFile: string | undefined;
  insecureSkipVerify: boolean;
  resolveBatchSize: number;
  pinBatchSize: number;
  groupCommands: GroupCommandTemplates | undefined;
  /** How VIP groups are changed: static-ecmp, bgp-route-map (with its names), or none. */
  groupTemplate: GroupTemplate | undefined;
  enableSecret: string | undefined;
  /**
   * 'session' (configuration session, committed whole) or 'cleanup' (line by line, half-built flows removed).
   */
  atomicity: 'session' | 'cleanup';
  /** Largest listed table read back with each write; beyond it the controller's timed read-back confirms. */
  readBackLimit: number;
}

function urlAt(at: SettingsReader, path: KeyPath, v: string): URL {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return at.fail(path, `must be an http:// or https:// URL, got '${v.slice(0, 64)}'`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '')
    at.fail(path, `must be an http:// or https:// URL, got '${v.slice(0, 64)}'`);
  return u;
}

export function readEapi(doc: EapiDoc, at: SettingsReader, path: KeyPath): EapiSettings {
  const e = doc;
  const url = urlAt(at, [...path, 'url'], e.url);
  if (e.groupCommands !== undefined && e.groupTemplate !== undefined)
    at.fail([...path, 'groupCommands'], 'give either groupTemplate or groupCommands');
  if (e.groupTemplate === 'bgp-route-map' && e.bgp === undefined)
    at.fail([...path, 'bgp'], 'is required with groupTemplate: bgp-route-map');
  if (e.bgp !== undefined && e.groupTemplate !== 'bgp-route-map')
    at.fail([...path, 'bgp'], 'is only for groupTemplate: bgp-route-map');
  const groupTemplate: GroupTemplate | undefined =
    e.groupTemplate === undefined
      ? undefined
      : e.groupTemplate === 'static-ecmp' || e.bgp === undefined
        ? { kind: 'static-ecmp' }
        : {
            kind: 'bgp-route-map',
            asn: e.bgp.asn,
            peerGroup: e.bgp.peerGroup,
            routeMap: e.bgp.routeMap,
            ...(e.bgp.prefixList === undefined ? {} : { prefixList: e.bgp.prefixList }),
          };
  const href = url.href.replace(/\/$/, '');
  return {
    url: href.endsWith('/command-api') ? href : `${href}/command-api`,
    username: e.username,
    password: at.secret([...path, 'password'], e.password),
    timeoutMs: e.timeoutMs,
    maxConcurrent: e.maxConcurrent,
    caFile: e.caFile === undefined ? undefined : at.readableFile([...path, 'caFile'], e.caFile),
    insecureSkipVerify: e.insecureSkipVerify,
    resolveBatchSize: e.resolveBatchSize,
    pinBatchSize: e.pinBatchSize,
    groupCommands:
      e.groupCommands === undefined
        ? undefined
        : { add: [...e.groupCommands.add], remove: [...e.groupCommands.remove] },
    groupTemplate,
    enableSecret:
      e.enableSecret === undefined ? undefined : at.secret([...path, 'enableSecret'], e.enableSecret),
    atomicity: e.atomicity,
    readBackLimit: e.readBackLimit,
  };
}

export const eapiKind: AdapterKind<EapiSettings> = {
  kind: KIND,
  section: { key: 'eapi', schema: EapiSchema },
  read: readEapi,
  mirrorSource: (e) => new URL(e.url).hostname.replace(/^\[|\]$/g, ''),
  securityWarnings(e) {
    if (e.url.startsWith('http://'))
      return [
        [
          'url',
          "plain http: the switch's password and every command cross the network unencrypted (use https)",
        ],
      ];
    if (e.insecureSkipVerify)
      return [
        [
          'insecureSkipVerify',
          "the switch's TLS certificate is not verified: anyone in the path can pose as the switch (give caFile instead)",
        ],
      ];
    return [];
  },
  enabledBy: { changesGroups: 'groupTemplate' },
  create(setup, e) {
    return new AristaEapiAdapter({
      switchName: setup.name,
      url: e.url,
      username: e.username,
      password: e.password,
      timeoutMs: e.timeoutMs,
      maxConcurrent: e.maxConcurrent,
      insecureSkipVerify: e.insecureSkipVerify,
      resolveBatchSize: e.resolveBatchSize,
      pinBatchSize: e.pinBatchSize,
      ...(setup.pinTableSize === undefined ? {} : { pinTableSize: setup.pinTableSize }),
      vips: setup.vips.map((v) => v.address),
      atomicity: e.atomicity,
      readBackLimit: e.readBackLimit,
      ...(e.caFile === undefined ? {} : { caFile: e.caFile }),
      ...(e.groupCommands === undefined ? {} : { groupCommands: e.groupCommands }),
      ...(e.groupTemplate === undefined ? {} : { groupTemplate: e.groupTemplate }),
      ...(e.enableSecret === undefined ? {} : { enableSecret: e.enableSecret }),
    });
  },
};
