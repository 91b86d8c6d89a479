// One eAPI request's CLI session on the simulated switch: commands run in order through
// EOS-like modes (exec, enable, config, directflow, flow); a command that is not valid in
// the current mode is tried in the enclosing modes, as the EOS CLI does. A flow being
// configured is applied when its mode is left or the request ends (so a request that fails
// inside a flow leaves the flow half-built, as line-by-line configuration does on EOS).
// `configure session NAME` collects configuration without applying it until `commit`
// (`abort` discards it); an uncommitted session stays pending across requests, as on EOS
// (`configure session NAME` / `commit` / `abort`: pyeapi's config-session docs; the
// one-line `configure session NAME commit`: emilarista/Enhanced-Session-Timer).

import { SiteConfig } from './site-config.js';
import { canonicalIp } from '../../lib/addr.js';
import type { PinSpec } from '../pin-table.js';
import type { SimSwitch } from '../sim-switch.js';
import { CommandError, EAPI_GENERAL, incomplete, invalidInput } from './errors.js';
import type { EosProfile } from './profile.js';
import {
  showDirectflow,
  showIpRoute,
  showLoadBalance,
  showMacTable,
  showNeighbors,
  showPortChannel,
  showVersion,
  type Format,
  type Result,
} from './show.js';

type Mode = 'exec' | 'enable' | 'config' | 'directflow' | 'flow';
const PARENT: Record<Mode, Mode | undefined> = {
  exec: undefined,
  enable: undefined,
  config: 'enable',
  directflow: 'config',
  flow: 'directflow',
};

interface FlowDraft {
  name: string;
  spec: PinSpec;
}

const DEFAULT_SPEC = (): PinSpec => ({
  source: 'directflow',
  match: {},
  idleTimeoutS: 0,
  hardTimeoutS: 0,
  persistent: true,
  priority: 0,
});

type Op = () => void;

/** A configuration session: changes collected until commit, and the flows as the session sees them. */
export interface ConfigSession {
  ops: Op[];
  flows: Map<string, PinSpec | undefined>;
}

const copySpec = (s: PinSpec): PinSpec => ({ ...s, match: { ...s.match } });

export class CliSession {
  private mode: Mode = 'exec';
  private draft: FlowDraft | undefined;
  private session: { name: string; state: ConfigSession } | undefined;
  private readonly site = new SiteConfig();

  constructor(
    private readonly sw: SimSwitch,
    private readonly profile: EosProfile,
    /** Sessions pending commit, shared by the requests of one switch. */
    private readonly sessions: Map<string, ConfigSession>,
  ) {}

  /** Runs one command (with `input` for its prompt); returns its result or throws CommandError. */
  run(command: string, format: Format, input?: string): Result {
    const tokens = command
      .trim()
      .split(/\s+/)
      .filter((t) => t !== '');
    if (tokens.length === 0) return {};
    const head = (tokens[0] as string).toLowerCase();
    if (head === 'show' || head === 'sh') return this.show(tokens, format);
    if (
      head === 'enable' &&
      tokens.length === 1 &&
      this.profile.enableSecret !== undefined &&
      this.mode === 'exec' &&
      input !== this.profile.enableSecret
    ) {
      // The wording of a wrong enable secret over eAPI is not evidenced.
      throw new CommandError(EAPI_GENERAL, ['% Bad secret'], 'could not run command');
    }
    const sessionLine = this.sessionCommand(tokens);
    if (sessionLine !== undefined) return sessionLine;
    for (let mode: Mode | undefined = this.mode; mode !== undefined; mode = PARENT[mode]) {
      const result = this.tryInMode(mode, tokens);
      if (result !== undefined) return result;
    }
    throw invalidInput(tokens, 0);
  }

  /** Applies a flow still being configured at the end of the request (into its session, if one is open). */
  finish(): void {
    this.commitDraft();
  }

  /** Applies a change now, or collects it into the open configuration session. */
  private apply(op: Op): void {
    if (this.session !== undefined) this.session.state.ops.push(op);
    else op();
  }

  /** `configure session NAME [commit|abort]`, `commit`, `abort`; undefined if not one of them. */
  private sessionCommand(t: string[]): Result | undefined {
    const w = t.map((x) => x.toLowerCase());
    const isConfigure = w[0] === 'configure' || w[0] === 'conf' || w[0] === 'config';
    if (isConfigure && w[1] === 'session') {
      if (this.mode === 'exec')
        throw new CommandError(1002, ['Invalid input (privileged mode required)'], 'invalid command');
      if (!this.profile.configSessions) throw invalidInput(t, 1);
      const name = t[2];
      if (name === undefined) throw incomplete();
      if (t.length > 4) throw invalidInput(t, 4);
      this.leaveSession();
      const state = this.sessions.get(name) ?? { ops: [], flows: new Map<string, PinSpec | undefined>() };
      this.sessions.set(name, state);
      this.session = { name, state };
      this.mode = 'config';
      if (w[3] === 'commit') return this.commit();
      if (w[3] === 'abort') return this.abort();
      if (w[3] !== undefined) throw invalidInput(t, 3);
      return {};
    }
    if (this.session !== undefined && t.length === 1 && w[0] === 'commit') return this.commit();
    if (this.session !== undefined && t.length === 1 && w[0] === 'abort') return this.abort();
    if (this.session !== undefined && t.length === 1 && w[0] === 'end') {
      this.leaveSession();
      this.mode = 'enable';
      return {};
    }
    return undefined;
  }

  private commit(): Result {
    this.commitDraft();
    const s = this.session;
    if (s === undefined) return {};
    this.session = undefined;
    this.sessions.delete(s.name);
    for (const op of s.state.ops) op();
    this.mode = 'enable';
    return {};
  }

  private abort(): Result {
    this.draft = undefined;
    const s = this.session;
    this.session = undefined;
    if (s !== undefined) this.sessions.delete(s.name);
    this.mode = 'enable';
    return {};
  }

  /** Leaves the open session pending (its changes kept, not applied). */
  private leaveSession(): void {
    this.commitDraft();
    this.session = undefined;
  }

  private enter(mode: Mode): Result {
    if (this.mode === 'flow' && mode !== 'flow') this.commitDraft();
    this.mode = mode;
    return {};
  }

  /** Result if the command belongs to `mode` (switching to it), undefined if it does not. */
  private tryInMode(mode: Mode, t: string[]): Result | undefined {
    const [a, b] = t.map((x) => x.toLowerCase());
    switch (mode) {
      case 'exec':
        if (a === 'enable' && t.length === 1) return this.enter('enable');
        if (this.mode === 'exec' && (a === 'configure' || a === 'conf' || a === 'config')) {
          throw new CommandError(1002, ['Invalid input (privileged mode required)'], 'invalid command');
        }
        return undefined;
      case 'enable':
        if ((a === 'configure' || a === 'conf' || a === 'config') && (t.length === 1 || b === 'terminal')) {
          this.leaveSession();
          return this.enter('config');
        }
        if (a === 'enable' && t.length === 1) return this.enter('enable');
        if (a === 'disable' && t.length === 1) return this.enter('exec');
        return undefined;
      case 'config':
        if (this.mode === 'exec' || this.mode === 'enable') return undefined;
        // The operator's one-time switch configuration (site-config.ts), in its EOS modes.
        if (this.site.line(t)) {
          if (this.mode !== 'config') this.enter('config');
          return {};
        }
        this.site.reset();
        if ((a === 'end' || (a === 'exit' && this.mode === 'config')) && t.length === 1) {
          this.leaveSession();
          return this.enter('enable');
        }
        if (a === 'directflow' && t.length === 1) return this.enter('directflow');
        return this.configLine(t);
      case 'directflow':
        if (this.mode !== 'directflow' && this.mode !== 'flow') return undefined;
        return this.directflowLine(t);
      case 'flow':
        if (this.mode !== 'flow') return undefined;
        return this.flowLine(t);
    }
  }

  private show(t: string[], format: Format): Result {
    const what = t[1]?.toLowerCase();
    if (what === undefined) throw incomplete();
    if (this.mode === 'exec' && this.profile.privilegedShows.includes(what))
      throw new CommandError(1002, ['Invalid input (privileged mode required)'], 'invalid command');
    const p = this.profile;
    const w2 = t[2]?.toLowerCase();
    if (what === 'version' || what === 'ver') return showVersion(this.sw, p, format);
    if ((what === 'ip' || what === 'ipv6') && w2 === 'route') {
      if (t[3] === undefined) throw incomplete();
      return showIpRoute(this.sw, p, what === 'ip' ? 4 : 6, t[3], format);
    }
    if ((what === 'ip' && w2 === 'arp') || what === 'arp')
      return showNeighbors(this.sw, p, 4, t[what === 'arp' ? 2 : 3], format);
    if (what === 'ipv6' && (w2 === 'neighbors' || w2 === 'neighbor'))
      return showNeighbors(this.sw, p, 6, t[3], format);
    if (what === 'mac' && w2 === 'address-table') return showMacTable(this.sw, format);
    if (what === 'port-channel') return showPortChannel(this.sw, format);
    if (what === 'load-balance' && w2 === 'destination') return showLoadBalance(this.sw, p, t, format);
    if (what === 'directflow') return showDirectflow(this.sw, p, t, format);
    throw invalidInput(t, 1);
  }

  /** Config-mode lines: VIP group membership and resilient ECMP sizing. */
  private configLine(t: string[]): Result | undefined {
    const negate = t[0]?.toLowerCase() === 'no';
    const r = negate ? t.slice(1) : t;
    const w = r.map((x) => x.toLowerCase());
    // [no] ip route PREFIX NEXTHOP  /  [no] ipv6 route PREFIX NEXTHOP
    if ((w[0] === 'ip' || w[0] === 'ipv6') && w[1] === 'route') {
      if (r.length !== 4) throw r.length < 4 ? incomplete() : invalidInput(t, negate ? 5 : 4);
      const prefix = r[2] as string;
      const [addr = '', len] = prefix.split('/');
      let vip: string;
      let nh: string;
      try {
        vip = canonicalIp(addr);
        nh = canonicalIp(r[3] as string);
      } catch {
        throw invalidInput(t, negate ? 3 : 2);
      }
      const v6 = vip.includes(':');
      if (v6 !== (w[0] === 'ipv6') || v6 !== nh.includes(':')) throw invalidInput(t, negate ? 3 : 2);
      if (len !== undefined && len !== (v6 ? '128' : '32'))
        throw new CommandError(
          EAPI_GENERAL,
          ['Only host routes to a VIP are modelled by the simulator'],
          'could not run command',
        );
      if (this.mode === 'flow' || this.mode === 'directflow') this.enter('config');
      this.apply(() => (negate ? this.sw.groupRemove(vip, nh) : this.sw.groupAdd(vip, nh)));
      return {};
    }
    // ip hardware fib ecmp resilience PREFIX capacity C redundancy R
    if (w[0] === 'ip' && w[1] === 'hardware' && w[2] === 'fib' && w[3] === 'ecmp' && w[4] === 'resilience') {
      if (negate) return {};
      const cap = Number(r[7]);
      const red = Number(r[9]);
      if (
        w[6] !== 'capacity' ||
        w[8] !== 'redundancy' ||
        !Number.isInteger(cap) ||
        !Number.isInteger(red) ||
        cap < 1 ||
        red < 1
      )
        throw invalidInput(t, 6);
      const address = canonicalIp((r[5] ?? '').split('/')[0] ?? '');
      this.apply(() => {
        const vip = this.sw.vips.get(address);
        if (vip === undefined) return;
        const members = [...vip.group.members()];
        this.sw.removeVip(vip.address);
        this.sw.addVip(vip.address, members, cap * red);
      });
      return {};
    }
    return undefined;
  }

  private directflowLine(t: string[]): Result | undefined {
    const w = t.map((x) => x.toLowerCase());
    if (w[0] === 'exit' && t.length === 1) return this.enter(this.mode === 'flow' ? 'directflow' : 'config');
    if (w[0] === 'shutdown' && t.length === 1) {
      this.enter('directflow');
      this.apply(() => (this.sw.directflowEnabled = false));
      return {};
    }
    if (w[0] === 'no' && w[1] === 'shutdown' && t.length === 2) {
      this.enter('directflow');
      this.apply(() => (this.sw.directflowEnabled = true));
      return {};
    }
    if (w[0] === 'flow') {
      if (t.length !== 2) throw t.length < 2 ? incomplete() : invalidInput(t, 2);
      this.enter('directflow');
      const name = t[1] as string;
      const staged = this.session?.state.flows;
      const existing = staged?.has(name) ? staged.get(name) : this.sw.pins.get(name);
      this.draft = { name, spec: existing ? copySpec(existing) : DEFAULT_SPEC() };
      this.mode = 'flow';
      return {};
    }
    if (w[0] === 'no' && w[1] === 'flow') {
      if (t.length !== 3) throw t.length < 3 ? incomplete() : invalidInput(t, 3);
      this.enter('directflow');
      const name = t[2] as string;
      this.session?.state.flows.set(name, undefined);
      this.apply(() => this.sw.pins.remove(name));
      return {};
    }
    return undefined;
  }

  private flowLine(t: string[]): Result | undefined {
    const d = this.draft;
    if (d === undefined) return undefined;
    const w = t.map((x) => x.toLowerCase());
    const num = (i: number, max: number): number => {
      const v = Number(t[i]);
      if (t[i] === undefined) throw incomplete();
      if (!Number.isInteger(v) || v < 0 || v > max) throw invalidInput(t, i);
      return v;
    };
    const addr = (i: number): string => {
      if (t[i] === undefined) throw incomplete();
      try {
        return canonicalIp((t[i] ?? '').split('/')[0] ?? '');
      } catch {
        throw invalidInput(t, i);
      }
    };
    const m = d.spec.match;
    if (w[0] === 'match') {
      if (w[1] === 'ethertype') {
        // Keyword `ip` (prototype) and the number (34525 for IPv6: grf5/arista_f5_directflow on 4.15.0F).
        if (w[2] === 'ip' || w[2] === '2048' || w[2] === '0x800' || w[2] === '0x0800') m.family = 4;
        else if (w[2] === 'ipv6' || w[2] === '34525' || w[2] === '0x86dd') m.family = 6;
        else throw t.length < 3 ? incomplete() : invalidInput(t, 2);
      } else if ((w[1] === 'source' || w[1] === 'destination') && (w[2] === 'ip' || w[2] === 'ipv6')) {
        const a = addr(3);
        if (a.includes(':') !== (w[2] === 'ipv6')) throw invalidInput(t, 3);
        if (w[1] === 'source') m.src = a;
        else m.dst = a;
      } else if ((w[1] === 'source' || w[1] === 'destination') && w[2] === 'port') {
        const p = num(3, 65535);
        if (w[1] === 'source') m.sport = p;
        else m.dport = p;
      } else if (w[1] === 'ip' && w[2] === 'protocol') {
        m.protocol = w[3] === 'tcp' ? 6 : w[3] === 'udp' ? 17 : num(3, 255);
      } else {
        throw t.length < 3 ? incomplete() : invalidInput(t, 1);
      }
      return {};
    }
    if (w[0] === 'no' && w[1] === 'persistent' && t.length === 2) {
      d.spec.persistent = false;
      return {};
    }
    if (w[0] === 'persistent' && t.length === 1) {
      d.spec.persistent = true;
      return {};
    }
    if (w[0] === 'timeout' && (w[1] === 'idle' || w[1] === 'hard')) {
      const s = num(2, 86400 * 7);
      if (w[1] === 'idle') d.spec.idleTimeoutS = s;
      else d.spec.hardTimeoutS = s;
      return {};
    }
    if (w[0] === 'priority') {
      d.spec.priority = num(1, 65535);
      return {};
    }
    if (w[0] === 'action' && w[1] === 'output' && w[2] === 'nexthop') {
      d.spec.nexthop = addr(3);
      return {};
    }
    if (w[0] === 'action' && w[1] === 'drop' && t.length === 2) {
      delete d.spec.nexthop;
      return {};
    }
    return undefined;
  }

  private commitDraft(): void {
    const d = this.draft;
    this.draft = undefined;
    if (d === undefined) return;
    this.session?.state.flows.set(d.name, copySpec(d.spec));
    this.apply(() => this.sw.pins.upsert(d.name, d.spec, this.sw.now()));
    if (this.mode === 'flow') this.mode = 'directflow';
  }
}
