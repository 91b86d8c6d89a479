// One eAPI request's CLI session on the simulated switch: commands run in order through
// EOS-like modes (exec, enable, config, directflow, flow); a command that is not valid in
// the current mode is tried in the enclosing modes, as the EOS CLI does. A flow being
// configured is applied when its mode is left or the request ends.

import { canonicalIp } from '../../mirror-receiver/addr.js';
import type { PinSpec } from '../pin-table.js';
import type { SimSwitch } from '../sim-switch.js';
import { CommandError, EAPI_GENERAL, incomplete, invalidInput } from './errors.js';
import { showDirectflow, showIpRoute, showLoadBalance, showVersion, type Format, type Result } from './show.js';

type Mode = 'exec' | 'enable' | 'config' | 'directflow' | 'flow';
const PARENT: Record<Mode, Mode | undefined> = { exec: undefined, enable: undefined, config: 'enable', directflow: 'config', flow: 'directflow' };

interface FlowDraft {
  name: string;
  spec: PinSpec;
}

const DEFAULT_SPEC = (): PinSpec => ({ source: 'directflow', match: {}, idleTimeoutS: 0, hardTimeoutS: 0, persistent: true, priority: 0 });

export class CliSession {
  private mode: Mode = 'exec';
  private draft: FlowDraft | undefined;

  constructor(private readonly sw: SimSwitch) {}

  /** Runs one command; returns its result or throws CommandError. */
  run(command: string, format: Format): Result {
    const tokens = command.trim().split(/\s+/).filter((t) => t !== '');
    if (tokens.length === 0) return {};
    const head = (tokens[0] as string).toLowerCase();
    if (head === 'show' || head === 'sh') return this.show(tokens, format);
    for (let mode: Mode | undefined = this.mode; mode !== undefined; mode = PARENT[mode]) {
      const result = this.tryInMode(mode, tokens);
      if (result !== undefined) return result;
    }
    throw invalidInput(tokens, 0);
  }

  /** Applies a flow still being configured at the end of the request. */
  finish(): void {
    this.commitDraft();
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
        if ((a === 'configure' || a === 'conf' || a === 'config') && (t.length === 1 || b === 'terminal')) return this.enter('config');
        if (a === 'enable' && t.length === 1) return this.enter('enable');
        if (a === 'disable' && t.length === 1) return this.enter('exec');
        return undefined;
      case 'config':
        if (this.mode === 'exec' || this.mode === 'enable') return undefined;
        if ((a === 'end' || (a === 'exit' && this.mode === 'config')) && t.length === 1) return this.enter('enable');
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
    if (what === 'version' || what === 'ver') return showVersion(this.sw, format);
    if ((what === 'ip' || what === 'ipv6') && t[2]?.toLowerCase() === 'route') {
      if (t[3] === undefined) throw incomplete();
      return showIpRoute(this.sw, t[3], format);
    }
    if (what === 'load-balance' && t[2]?.toLowerCase() === 'destination') return showLoadBalance(this.sw, t, format);
    if (what === 'directflow') return showDirectflow(this.sw, t, format);
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
      if (len !== undefined && len !== (vip.includes(':') ? '128' : '32')) throw new CommandError(EAPI_GENERAL, ['Only host routes to a VIP are modelled by the simulator'], 'could not run command');
      if (this.mode === 'flow' || this.mode === 'directflow') this.enter('config');
      if (negate) this.sw.groupRemove(vip, nh);
      else this.sw.groupAdd(vip, nh);
      return {};
    }
    // ip hardware fib ecmp resilience PREFIX capacity C redundancy R
    if (w[0] === 'ip' && w[1] === 'hardware' && w[2] === 'fib' && w[3] === 'ecmp' && w[4] === 'resilience') {
      if (negate) return {};
      const cap = Number(r[7]);
      const red = Number(r[9]);
      if (w[6] !== 'capacity' || w[8] !== 'redundancy' || !Number.isInteger(cap) || !Number.isInteger(red) || cap < 1 || red < 1) throw invalidInput(t, 6);
      const vip = this.sw.vips.get(canonicalIp((r[5] ?? '').split('/')[0] ?? ''));
      if (vip !== undefined) {
        const members = [...vip.group.members()];
        this.sw.removeVip(vip.address);
        this.sw.addVip(vip.address, members, cap * red);
      }
      return {};
    }
    return undefined;
  }

  private directflowLine(t: string[]): Result | undefined {
    const w = t.map((x) => x.toLowerCase());
    if (w[0] === 'exit' && t.length === 1) return this.enter(this.mode === 'flow' ? 'directflow' : 'config');
    if (w[0] === 'shutdown' && t.length === 1) {
      this.enter('directflow');
      this.sw.directflowEnabled = false;
      return {};
    }
    if (w[0] === 'no' && w[1] === 'shutdown' && t.length === 2) {
      this.enter('directflow');
      this.sw.directflowEnabled = true;
      return {};
    }
    if (w[0] === 'flow') {
      if (t.length !== 2) throw t.length < 2 ? incomplete() : invalidInput(t, 2);
      this.enter('directflow');
      const name = t[1] as string;
      const existing = this.sw.pins.get(name);
      this.draft = { name, spec: existing ? { ...existing, match: { ...existing.match } } : DEFAULT_SPEC() };
      this.mode = 'flow';
      return {};
    }
    if (w[0] === 'no' && w[1] === 'flow') {
      if (t.length !== 3) throw t.length < 3 ? incomplete() : invalidInput(t, 3);
      this.enter('directflow');
      this.sw.pins.remove(t[2] as string);
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
        if (w[2] === 'ip') m.family = 4;
        else if (w[2] === 'ipv6') m.family = 6;
        else throw invalidInput(t, 2);
      } else if ((w[1] === 'source' || w[1] === 'destination') && (w[2] === 'ip' || w[2] === 'ipv6')) {
        const a = addr(3);
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
    this.sw.pins.upsert(d.name, d.spec, this.sw.now());
    if (this.mode === 'flow') this.mode = 'directflow';
  }
}
