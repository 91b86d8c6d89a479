// The `ha:` section of the configuration: the etcd cluster flowpin instances coordinate
// through (endpoints, optional TLS), the lease TTL, the key prefix, and this instance's name
// and the API address the others forward to. Checked here for what the schema cannot say:
// URLs, TLS files that go together and exist, a prefix that is a directory. Without `ha:`
// flowpin runs alone and none of this is read.

import { hostname } from 'node:os';
import { Type, type Static } from 'typebox';
import { Int, Str, Strs, strict } from '../../lib/schema.js';
import type { SettingsReader } from '../../switch-adapters/kind.js';

export const HaSchema = Type.Object(
  {
    /** etcd client URLs (http://host:port, or https:// with tls). */
    endpoints: Strs(1),
    tls: Type.Optional(
      Type.Object({ caFile: Str(), certFile: Type.Optional(Str()), keyFile: Type.Optional(Str()) }, strict),
    ),
    /** The lease's time to live: how long etcd keeps this instance's keys after it stops renewing. */
    leaseTtlS: Int(2, 300, 5),
    /** How often the owner audits each switch it owns for pins no write of its own explains. */
    auditIntervalS: Int(1, 3600, 60),
    prefix: Str({ default: '/flowpin/' }),
    /** This instance's name among the others (default: the host name). */
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$' })),
    /** Where the other instances reach this one's API (default: http://api.host:api.port). */
    apiAddress: Type.Optional(Str()),
  },
  strict,
);

export type HaDoc = Static<typeof HaSchema>;

export interface HaConfig {
  endpoints: string[];
  tls: { caFile: string; certFile: string | undefined; keyFile: string | undefined } | undefined;
  leaseTtlS: number;
  auditIntervalS: number;
  prefix: string;
  name: string;
  apiAddress: string;
}

const PATH = ['ha'] as const;

function url(at: SettingsReader, path: readonly (string | number)[], v: string, what: string): URL {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return at.fail(path, `'${v}' is not a URL (${what})`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    at.fail(path, `'${v}' must be an http:// or https:// URL (${what})`);
  if (u.pathname !== '/' || u.search !== '' || u.hash !== '' || u.username !== '')
    at.fail(path, `'${v}' must be scheme://host:port alone (${what})`);
  return u;
}

/** Reads `ha:` (already checked against HaSchema); `api` gives the default advertised address. */
export function readHa(at: SettingsReader, d: HaDoc, api: { host: string; port: number }): HaConfig {
  const schemes = new Set<string>();
  const seen = new Set<string>();
  d.endpoints.forEach((e, i) => {
    const u = url(at, [...PATH, 'endpoints', i], e, 'an etcd client URL');
    if (seen.has(u.host)) at.fail([...PATH, 'endpoints', i], `${u.host} appears twice`);
    seen.add(u.host);
    schemes.add(u.protocol);
  });
  if (schemes.size > 1) at.fail([...PATH, 'endpoints'], 'mixes http:// and https:// endpoints');
  const https = schemes.has('https:');
  if (https && d.tls === undefined) at.fail([...PATH, 'tls'], 'needed for https:// endpoints (caFile)');
  if (!https && d.tls !== undefined) at.fail([...PATH, 'tls'], 'given, but the endpoints are http://');
  const t = d.tls;
  if (t !== undefined && (t.certFile === undefined) !== (t.keyFile === undefined))
    at.fail(
      [...PATH, 'tls', t.certFile === undefined ? 'certFile' : 'keyFile'],
      'certFile and keyFile go together',
    );
  if (!d.prefix.startsWith('/') || !d.prefix.endsWith('/'))
    at.fail([...PATH, 'prefix'], `'${d.prefix}' must start and end with '/'`);
  const apiAddress =
    d.apiAddress ?? `http://${api.host.includes(':') ? `[${api.host}]` : api.host}:${api.port}`;
  url(at, [...PATH, 'apiAddress'], apiAddress, "this instance's API as the others reach it");
  return {
    endpoints: [...d.endpoints],
    tls:
      t === undefined
        ? undefined
        : {
            caFile: at.readableFile([...PATH, 'tls', 'caFile'], t.caFile),
            certFile:
              t.certFile === undefined
                ? undefined
                : at.readableFile([...PATH, 'tls', 'certFile'], t.certFile),
            keyFile:
              t.keyFile === undefined ? undefined : at.readableFile([...PATH, 'tls', 'keyFile'], t.keyFile),
          },
    leaseTtlS: d.leaseTtlS,
    auditIntervalS: d.auditIntervalS,
    prefix: d.prefix,
    name: d.name ?? hostname(),
    apiAddress,
  };
}
