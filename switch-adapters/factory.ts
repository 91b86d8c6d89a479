// Builds the adapter a switch's configuration asks for. The simulator adapter needs the
// in-process simulated switch, which only the embedded mode (`flowpin start`) has.

import type { FlowpinConfig, SwitchConfig } from '../controller/config.js';
import type { SimSwitch } from '../switch-sim/sim-switch.js';
import { AristaEapiAdapter } from './arista-eapi/adapter.js';
import type { SwitchAdapter } from './contract.js';
import { GnmiAdapter } from './gnmi/adapter.js';
import { SimAdapter } from './sim/adapter.js';
import { LinuxRouterAdapter } from './linux/adapter.js';

/** Settings of the whole configuration an adapter needs besides its switch's section. */
export interface AdapterContext {
  /** The pins' idle timeout (`pinIdleTimeoutS`), for adapters that set it per table (linux). */
  pinIdleTimeoutS: number;
  /** The in-process simulated switches, by name (`flowpin start` only). */
  sims?: ReadonlyMap<string, SimSwitch>;
}

/** Every switch's adapter of a configuration, by switch name. */
export function createAdapters(config: Pick<FlowpinConfig, 'switches' | 'pinIdleTimeoutS'>, sims?: ReadonlyMap<string, SimSwitch>): Map<string, SwitchAdapter> {
  return new Map(config.switches.map((s) => [s.name, createAdapter(s, { pinIdleTimeoutS: config.pinIdleTimeoutS, ...(sims === undefined ? {} : { sims }) })]));
}

export function createAdapter(cfg: SwitchConfig, ctx: AdapterContext): SwitchAdapter {
  const sims = ctx.sims ?? new Map<string, SimSwitch>();
  if (cfg.adapter === 'sim') {
    const sw = sims.get(cfg.name);
    if (sw === undefined) throw new Error(`switch ${cfg.name}: adapter 'sim' needs the built-in simulator (flowpin start)`);
    return new SimAdapter(sw);
  }
  if (cfg.adapter === 'gnmi') {
    const g = cfg.gnmi;
    if (g === undefined) throw new Error(`switch ${cfg.name}: adapter 'gnmi' needs a gnmi section`);
    return new GnmiAdapter({
      switchName: cfg.name,
      address: g.address,
      timeoutMs: g.timeoutMs,
      insecure: g.insecure,
      networkInstance: g.networkInstance,
      policyId: g.policyId,
      ingressInterfaces: g.ingressInterfaces,
      pinBatchSize: g.pinBatchSize,
      pinTableSize: cfg.pinTableSize,
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
  }
  if (cfg.adapter === 'linux') {
    const l = cfg.linux;
    if (l === undefined) throw new Error(`switch ${cfg.name}: adapter 'linux' needs a linux section`);
    return new LinuxRouterAdapter({
      switchName: cfg.name,
      prefix: [...l.prefix],
      vips: cfg.vips.map((v) => ({ address: v.address, nexthops: [...v.nexthops] })),
      clientInterfaces: [...l.clientInterfaces],
      serverInterfaces: [...l.serverInterfaces],
      ...(l.mirrorDevice === undefined ? {} : { mirrorDevice: l.mirrorDevice }),
      buckets: l.buckets,
      idBase: l.idBase,
      tableBase: l.tableBase,
      // The adapter's own size (65535) unless configured: the default of the setting is a DirectFlow table's.
      ...(cfg.pinTableSizeSet ? { pinTableSize: cfg.pinTableSize } : {}),
      idleTimeoutS: ctx.pinIdleTimeoutS,
      timeoutMs: l.timeoutMs,
      resolveBatchSize: l.resolveBatchSize,
      pinBatchSize: l.pinBatchSize,
      probeFlows: l.probeFlows,
      probeTimeoutMs: l.probeTimeoutMs,
    });
  }
  const e = cfg.eapi;
  if (e === undefined) throw new Error(`switch ${cfg.name}: adapter 'arista-eapi' needs an eapi section`);
  return new AristaEapiAdapter({
    switchName: cfg.name,
    url: e.url,
    username: e.username,
    password: e.password,
    timeoutMs: e.timeoutMs,
    maxConcurrent: e.maxConcurrent,
    insecureSkipVerify: e.insecureSkipVerify,
    resolveBatchSize: e.resolveBatchSize,
    pinBatchSize: e.pinBatchSize,
    ...(cfg.pinTableSizeSet ? { pinTableSize: cfg.pinTableSize } : {}),
    vips: cfg.vips.map((v) => v.address),
    atomicity: e.atomicity,
    readBackLimit: e.readBackLimit,
    ...(e.caFile === undefined ? {} : { caFile: e.caFile }),
    ...(e.groupCommands === undefined ? {} : { groupCommands: e.groupCommands }),
    ...(e.groupTemplate === undefined ? {} : { groupTemplate: e.groupTemplate }),
    ...(e.enableSecret === undefined ? {} : { enableSecret: e.enableSecret }),
  });
}
