// What a switch's VIPs need of its adapter, checked once at start against the adapter's
// capabilities (data, switch-adapters/contract.ts): a configuration that asks a switch for
// what it cannot do is refused before anything runs, naming the key that would give it (the
// kind's `enabledBy`), rather than failing at the first group write of a drain.

import type { SwitchAdapter } from '../switch-adapters/contract.js';
import { adapterKind } from '../switch-adapters/registry.js';
import type { FlowpinConfig } from './config.js';
import { ConfigError, keyOf } from '../lib/validate.js';

/**
 * Throws a ConfigError naming the key of the first switch whose adapter cannot serve its VIPs
 * (switches without an adapter in `adapters` are not checked); `after` ends its message.
 */
export function checkCapabilities(
  config: Pick<FlowpinConfig, 'file' | 'switches'>,
  adapters: ReadonlyMap<string, SwitchAdapter>,
  after = '',
): void {
  config.switches.forEach((s, i) => {
    const a = adapters.get(s.name);
    if (a === undefined) return;
    const kind = adapterKind(s.adapter);
    const section = kind.section?.key;
    const keyFor = (cap: keyof SwitchAdapter['capabilities']): string => {
      const key = kind.enabledBy?.[cap];
      return keyOf(
        key === undefined || section === undefined
          ? ['switches', i, 'adapter']
          : ['switches', i, section, key],
      );
    };
    // Every drain and addition changes the VIP's group: a switch whose groups cannot be changed serves no
    // change.
    if (!a.capabilities.changesGroups && s.vips.length > 0) {
      throw new ConfigError(
        config.file,
        keyFor('changesGroups'),
        `is needed: drains and additions change the groups of ${s.name}'s VIPs (${s.vips.map((v) => v.address).join(', ')}), and its ${kind.kind} adapter changes no group as configured${after}`,
      );
    }
    // Resolution by observation tells a reply's server by its MAC or port: from the switch, or listed.
    if (s.resolution !== 'lookup' && !a.capabilities.knowsServers && s.servers.length === 0) {
      throw new ConfigError(
        config.file,
        keyOf(['switches', i, 'servers']),
        `is needed with resolution ${s.resolution}: ${s.name}'s ${kind.kind} adapter does not report the servers' MACs, so a mirrored reply would name no server${after}`,
      );
    }
  });
}
