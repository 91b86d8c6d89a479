// A configuration reload (SIGHUP, `flowpin reload`, POST /api/v1/reload), applied whole or not
// at all. The new file is validated as at start (config.ts); reload-plan.ts says what differs
// and refuses keys read at start only; then what runs is checked: a switch, VIP or nexthop the
// file no longer has may not have a change in flight, and a nexthop forgotten may have no
// connection left on it. Then the adapters check what they are given (new VIPs' routes, a
// Linux router's VIPs), new switches' adapters are made (and refused, as at start, where they
// cannot do what their VIPs need) and connected switches' new VIPs have their groups read; what runs is
// checked again (a change may have started meanwhile); only
// then is anything applied, in one turn of the event loop. A refusal is a ConfigError naming the
// file and the key; the running configuration stays.

import type { SwitchAdapter } from '../switch-adapters/contract.js';
import { isActive, type ChangeRecord } from './change-record.js';
import type { FlowpinConfig } from './config.js';
import type { Controller } from './controller.js';
import { planReload, type ReloadPlan } from './reload-plan.js';
import { ConfigError } from '../lib/validate.js';
import { checkCapabilities } from './capability-check.js';

const KEPT = 'Nothing was reloaded: the running configuration stays';

const describe = (r: ChangeRecord): string => `${r.kind} ${r.id} of ${r.nexthop}, ${r.phase}`;

/** What runs that the plan may not take away: refusals naming the key. */
function checkRunning(c: Controller, plan: ReloadPlan, file: string): void {
  for (const name of plan.switchesRemoved) {
    const active = c.changes.get(name)?.active() ?? [];
    if (active.length > 0)
      throw new ConfigError(
        file,
        'switches',
        `switch ${name} is no longer in the file, but changes of it are in flight (${active.map(describe).join('; ')}): wait until they end (or cancel one that has not written its group), then reload. ${KEPT}`,
      );
  }
  for (const sp of plan.switchesChanged) {
    const cm = c.changes.get(sp.name);
    const rt = c.runtimes.get(sp.name);
    if (cm === undefined || rt === undefined) continue;
    const active = cm.records.filter(isActive);
    for (const vip of sp.vipsRemoved) {
      const on = active.filter((r) => r.vip === vip);
      if (on.length > 0)
        throw new ConfigError(
          file,
          `${sp.key}.vips`,
          `VIP ${vip} is no longer in the file, but changes of it are in flight (${on.map(describe).join('; ')}). ${KEPT}`,
        );
    }
    for (const vp of sp.vipsChanged) {
      const v = rt.vips.get(vp.address);
      if (v === undefined) continue;
      for (const nh of vp.nexthopsRemoved) {
        // In the switch's group: managed whatever the file says (as at start).
        if (v.members.has(nh)) continue;
        const on = active.filter((r) => r.vip === vp.address && r.nexthop === nh);
        if (on.length > 0)
          throw new ConfigError(
            file,
            `${vp.key}.nexthops`,
            `${nh} is no longer in the file, but a change of it is in flight (${on.map(describe).join('; ')}). ${KEPT}`,
          );
        const l = rt.leftOn(vp.address, nh);
        if (l.live + l.unknown + l.pinned > 0)
          throw new ConfigError(
            file,
            `${vp.key}.nexthops`,
            `${nh} is no longer in the file, but connections are left on it (${l.live} live, ${l.unknown} unknown, ${l.pinned} pinned): forgetting it would drop their pins. Remove it with its bound first (flowpin remove ${nh} --vip ${vp.address} --max-at-risk N), or keep it in the file. ${KEPT}`,
          );
      }
    }
  }
}

/**
 * Applies `next` to the running controller, or throws a ConfigError naming the key and changes
 * nothing. Returns what changed, one line each (empty: nothing differed).
 */
export async function applyReload(c: Controller, next: FlowpinConfig): Promise<string[]> {
  const file = next.file;
  const plan = planReload(c.config, next);
  checkRunning(c, plan, file);
  const commits: (() => void)[] = [];
  const groups = new Map<string, string[]>();
  for (const sp of plan.switchesChanged) {
    const rt = c.runtimes.get(sp.name);
    const s = next.switches.find((x) => x.name === sp.name);
    if (rt === undefined || s === undefined) continue;
    if (sp.vipsAdded.length > 0 || sp.vipsRemoved.length > 0) {
      try {
        commits.push(await rt.adapter.prepareVips(s.vips));
      } catch (err) {
        throw new ConfigError(
          file,
          `${sp.key}.vips`,
          `${err instanceof Error ? err.message : String(err)}. ${KEPT}`,
        );
      }
    }
    // Connected: the new VIPs' groups are read now (otherwise the switch reads them when it connects).
    if (!rt.connected) continue;
    for (const v of sp.vipsAdded) {
      try {
        groups.set(`${sp.name}\n${v.address}`, await rt.adapter.groupMembers(v.address));
      } catch (err) {
        throw new ConfigError(
          file,
          `${v.key}.address`,
          `cannot read the group of VIP ${v.address} on ${sp.name}: ${err instanceof Error ? err.message : String(err)}. ${KEPT}`,
        );
      }
    }
  }
  const adapters = new Map<string, SwitchAdapter>();
  for (const s of plan.switchesAdded) {
    try {
      adapters.set(s.name, c.makeAdapter(s));
    } catch (err) {
      for (const a of adapters.values()) void a.close().catch(() => undefined);
      throw new ConfigError(file, s.key, `${err instanceof Error ? err.message : String(err)}. ${KEPT}`);
    }
  }
  // A change may have begun while the adapters were asked: checked again, then applied in this turn.
  try {
    checkCapabilities(next, adapters, `. ${KEPT}`);
    checkRunning(c, plan, file);
  } catch (err) {
    for (const a of adapters.values()) void a.close().catch(() => undefined);
    throw err;
  }
  return commit(c, next, plan, commits, groups, adapters);
}

function commit(
  c: Controller,
  next: FlowpinConfig,
  plan: ReloadPlan,
  commits: (() => void)[],
  groups: Map<string, string[]>,
  adapters: Map<string, SwitchAdapter>,
): string[] {
  const lines: string[] = [];
  if (plan.tokens.changed)
    lines.push(
      `API tokens: ${plan.tokens.after} (were ${plan.tokens.before})${next.api.readsNeedToken ? '; reads need a token' : '; reads are open'}`,
    );
  for (const name of plan.switchesRemoved) {
    c.removeSwitch(name);
    lines.push(
      `switch ${name} removed: its pins stay on the switch until they idle out, its change records are kept`,
    );
  }
  for (const sp of plan.switchesChanged) {
    const rt = c.runtimes.get(sp.name);
    if (rt === undefined) continue;
    for (const vip of sp.vipsRemoved) {
      rt.removeVip(vip);
      lines.push(
        `${sp.name}: VIP ${vip} removed (its group is left as it is; its pins stay until they idle out)`,
      );
    }
    for (const v of sp.vipsAdded) {
      const members = groups.get(`${sp.name}\n${v.address}`);
      rt.addVip(v.address, v.nexthops, members);
      lines.push(
        `${sp.name}: VIP ${v.address} added, nexthops ${v.nexthops.join(', ') || 'none'}${members === undefined ? ' (its group is read when the switch connects)' : `; the switch's group has ${members.join(', ') || 'no member'}`}`,
      );
    }
    for (const vp of sp.vipsChanged) {
      const v = rt.vips.get(vp.address);
      if (v === undefined) continue;
      for (const nh of vp.nexthopsAdded) {
        v.nexthops.add(nh);
        lines.push(
          `${sp.name}: VIP ${vp.address}: nexthop ${nh} added${v.members.has(nh) ? ' (in the group already)' : ' (not in the group: flowpin undrain or add puts it in)'}`,
        );
      }
      for (const nh of vp.nexthopsRemoved) {
        if (v.members.has(nh)) {
          lines.push(
            `${sp.name}: VIP ${vp.address}: nexthop ${nh} stays: it is in the switch's group (drain and remove it to forget it)`,
          );
          continue;
        }
        v.nexthops.delete(nh);
        lines.push(`${sp.name}: VIP ${vp.address}: nexthop ${nh} forgotten`);
      }
      if (vp.maxUnavailable !== undefined)
        lines.push(
          `${sp.name}: VIP ${vp.address}: maxUnavailable ${vp.maxUnavailable.after} (was ${vp.maxUnavailable.before})`,
        );
    }
  }
  for (const take of commits) take();
  c.setConfig(next);
  for (const s of plan.switchesAdded) {
    c.addSwitch(s, adapters.get(s.name) as SwitchAdapter);
    lines.push(`switch ${s.name} added (${s.adapter}, ${s.vips.length} VIPs): connecting`);
  }
  // The records of a removed switch stay in the state; a failed write is the controller's to report (not
  // ready).
  if (plan.switchesRemoved.length > 0) c.persistChanges().catch(() => undefined);
  return lines;
}
