// The configuration file's schema (TypeBox): every key, its type, range and default, in one
// place, but for each switch kind's own section, which its adapter folder declares (kind.ts,
// listed in switch-adapters/registry.ts). config.ts checks a document against it, then applies
// the rules a schema cannot say (addresses, URLs, duplicates, files, keys that go together). A
// new key is one line here and one line where config.ts builds the section it belongs to.

import { Type, type Static } from 'typebox';
import { DEFAULT_RECEIVE_BUFFER } from '../mirror-receiver/sources/gre-udp.js';

import { Int, Num, Port, Str, Strs, strict } from '../lib/schema.js';
import { ADAPTER_KINDS, DEFAULT_KIND } from '../switch-adapters/registry.js';
import { HaSchema } from './ha/config.js';

/** Each switch kind's own section (`eapi`, `gnmi`, `linux`), as its adapter folder declares it. */
const sections = Object.fromEntries(
  ADAPTER_KINDS.flatMap((k) =>
    k.section === undefined ? [] : [[k.section.key, Type.Optional(k.section.schema)]],
  ),
);

export const TokenSchema = Type.Object(
  {
    /** Who holds it, as change records and the audit log name it (api.tokens[N] unless given). */
    name: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        pattern: '^[A-Za-z0-9_.@-]+$',
        description: 'who holds the token: change records and the audit log name it',
      }),
    ),
    role: Type.Enum(['read', 'operator'], { description: 'read: GET calls; operator: GET and changes' }),
    file: Str({
      description: 'file holding the token (one line); warned about when group or others may read it',
    }),
  },
  strict,
);

export const ApiSchema = Type.Object(
  {
    host: Str({
      default: '127.0.0.1',
      description: 'address the API listens on (loopback unless configured)',
    }),
    port: Port(8080),
    token: Type.Optional(Str({ description: 'operator token: text, env:NAME or file:/path' })),
    tokens: Type.Optional(Type.Array(TokenSchema)),
    requestTimeoutMs: Int(100, 600_000, 30_000),
  },
  { ...strict, default: {} },
);

export const MirrorSchema = Type.Object(
  {
    /**
     * receiveBufferBytes: SO_RCVBUF asked for (the kernel caps it at net.core.rmem_max; see
     * docs/architecture.md).
     */
    /**
     * reader: auto (the native recvmmsg reader where built, else dgram), recvmmsg (fail to start without it)
     * or dgram.
     */
    udp: Type.Array(
      Type.Object(
        {
          host: Str({ default: '0.0.0.0' }),
          port: Port(4754),
          receiveBufferBytes: Int(1, undefined, DEFAULT_RECEIVE_BUFFER),
          reader: Type.Enum(['auto', 'recvmmsg', 'dgram'], { default: 'auto' }),
        },
        strict,
      ),
      {
        default: [
          { host: '127.0.0.1', port: 4754, receiveBufferBytes: DEFAULT_RECEIVE_BUFFER, reader: 'auto' },
        ],
      },
    ),
    raw: Type.Boolean({ default: false }),
    silenceS: Num(1, undefined, 60),
    collapseRatio: Num(0, 1, 0.1),
  },
  { ...strict, default: {} },
);

export const VipSchema = Type.Object(
  {
    address: Str(),
    nexthops: Type.Array(Str(), { default: [] }),
    /**
     * Members that may be out (draining or drained, not removed) at once: a second drain is refused past it.
     */
    maxUnavailable: Int(1, undefined, 1),
  },
  strict,
);

export const SwitchSchema = Type.Object(
  {
    name: Str(),
    adapter: Type.Enum(
      ADAPTER_KINDS.map((k) => k.kind),
      { default: DEFAULT_KIND },
    ),
    mirrorSources: Type.Optional(Strs()),
    greKey: Type.Optional(Int(0, 0xffffffff)),
    sessionId: Type.Optional(Int(0, 1023)),
    pinTableSize: Type.Optional(Int(1, undefined)),
    ...sections,
    vips: Type.Array(VipSchema, { minItems: 1 }),
    /** The switch also mirrors the servers' replies (SYN-ACK from a VIP, on the server-facing ports). */
    mirrorReplies: Type.Boolean({ default: false }),
    /** How a flow's nexthop is learnt (default: both where replies are mirrored, lookup otherwise). */
    resolution: Type.Optional(Type.Enum(['both', 'observe', 'lookup'])),
    replyTimeoutMs: Int(1, 60_000, 1000),
    identityRefreshS: Int(1, undefined, 30),
    /**
     * Which connection ends the mirror carries: auto (learnt from what it shows), or as configured on the
     * switch.
     */
    mirrorEnds: Type.Enum(['auto', 'both-ways', 'client-side', 'syn-only'], { default: 'auto' }),
    /**
     * No connection to this switch's VIPs is older than this time (ISO 8601 or epoch ms): a lab, or VIPs
     * announced since.
     */
    connectionsSince: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0 })]),
    ),
    /** Static server identities (MAC and/or mirror port index per nexthop), over what the switch reports. */
    servers: Type.Array(
      Type.Object(
        { nexthop: Str(), mac: Type.Optional(Str()), port: Type.Optional(Int(0, 0xffffffff)) },
        strict,
      ),
      { default: [] },
    ),
  },
  strict,
);

export const ConfigSchema = Type.Object(
  {
    api: ApiSchema,
    mirror: MirrorSchema,
    pinMode: Type.Enum(['on-change', 'always'], { default: 'on-change' }),
    pinIdleTimeoutS: Int(1, 86400, 300),
    /**
     * maxAgeS: the connection lifetime: a connection not seen for this long is taken as ended, and flowpin
     * warms up for this long.
     */
    flowTable: Type.Object(
      { maxFlows: Int(1, undefined, 1_000_000), maxAgeS: Num(1, undefined, 3600) },
      { ...strict, default: {} },
    ),
    /**
     * windowFlows: connections expected in a change window count against a change's bound only above this
     * many.
     */
    consent: Type.Object({ windowFlows: Int(0, undefined, 50) }, { ...strict, default: {} }),
    /** maxShedShare: not ready while more than this share of SYNs is shed (the resolver cannot keep up). */
    readiness: Type.Object({ maxShedShare: Num(0, 1, 0.01) }, { ...strict, default: {} }),
    resolveQueue: Int(1, undefined, 100_000),
    settleMs: Num(0, undefined, 200),
    barrierTimeoutMs: Num(1, undefined, 30_000),
    resyncIntervalS: Num(0.05, undefined, 30),
    retryMaxMs: Num(10, undefined, 30_000),
    stateFile: Type.Optional(Str()),
    persistIntervalS: Num(0.05, undefined, 10),
    /** Several instances coordinated through etcd (controller/ha/config.ts); absent: flowpin runs alone. */
    ha: Type.Optional(HaSchema),
    switches: Type.Array(SwitchSchema, { minItems: 1 }),
  },
  strict,
);

export type ConfigDoc = Static<typeof ConfigSchema>;
export type SwitchDoc = Static<typeof SwitchSchema>;
export type ApiDoc = Static<typeof ApiSchema>;
