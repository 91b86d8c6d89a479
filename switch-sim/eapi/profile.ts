// What the simulated EOS switch is and how it answers where real EOS releases differ or the
// public evidence is silent (docs/eapi.md). Every choice that is not proven one way
// is a setting here, so the adapter is tested against both.

export interface EosProfile {
  /** `show version` modelName, e.g. DCS-7050SX-64 (a 7050X, Trident2). */
  modelName: string;
  /** `show version` version, e.g. 4.20.15M. */
  version: string;
  /**
   * Whether the JSON of `show directflow detail` lists flows rejected for resources (4.14/4.15,
   * DirectFlowAssist) or omits them (4.35.4M, ANTA SA-0142); the text form always lists them.
   */
  jsonListsRejected: boolean;
  /** Whether `show load-balance destination` has a JSON form (`outputIntf`); else error 1003, text only. */
  loadBalanceJson: boolean;
  /** `show` commands that need privileged mode (`enable`), by their second word, e.g. 'load-balance'. */
  privilegedShows: string[];
  /** Secret `enable` asks for (given as the command's input); none: enable without one. */
  enableSecret?: string;
  /**
   * The ARP JSON `interface` of a neighbour on an SVI: 'Vlan10, Ethernet5' as the manual's text
   * form shows it ('with-port'), or only 'Vlan10' ('svi-only': the port is in the MAC table).
   */
  arpSviForm: 'with-port' | 'svi-only';
  /** The routeType `show ip route` gives a VIP's route (how the group is built). */
  vipRouteType: 'static' | 'eBGP' | 'iBGP';
  /** Whether `configure session` is available for DirectFlow configuration. */
  configSessions: boolean;
}

export const DEFAULT_PROFILE: EosProfile = {
  modelName: 'DCS-7050SX-64',
  version: '4.20.15M',
  jsonListsRejected: true,
  loadBalanceJson: true,
  privilegedShows: ['load-balance'],
  arpSviForm: 'with-port',
  vipRouteType: 'static',
  configSessions: true,
};
