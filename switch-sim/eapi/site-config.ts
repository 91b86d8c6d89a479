// The switch-side configuration an operator enters once for flowpin (README: "Pointing an
// Arista switch at flowpin"): the eAPI with its TLS profile, flowpin's user and role, the
// mirror ACLs and monitor sessions. The simulator accepts these lines in their EOS modes and
// remembers them (nothing in the model depends on them), and refuses a line that is not in
// the grammar below with EOS's "Invalid input" error, so the documented block is checked
// line by line against what EOS is evidenced to accept.
//
// Grammar, each form from public EOS configurations:
// - `management security` / `ssl profile P` / `certificate C key K` / `tls versions ...` /
//   `cipher-list ...`; `management api http-commands` / `protocol https [ssl profile P]` /
//   `no protocol http` / `[no] shutdown` / `vrf V` / `ip access-group A`:
//   arista-netdevops-community/avd-cEOS-Lab ceos_lab_template/ceos.cfg.tpl and aristanetworks/avd
//   eos_cli_config_gen documentation/devices/management-api-http.md (Apache-2.0);
// - `vrf instance V`: the same cEOS template;
// - `role R` / `SEQ permit|deny [mode M] command REGEX`; `username U [privilege N] role R
//   (secret [0|5|sha512] S | nopassword)`: aristanetworks/avd documentation/devices/aaa.md and
//   roles, openstack networking-arista's `role neutron-role` (mode exec and mode config);
// - `aaa authorization commands all default local`, `aaa authorization exec default local`:
//   avd eos_cli_config_gen AAA Authorization;
// - `ip access-list A` / `SEQ permit|deny tcp SRC [eq P] DST [eq P] [syn|ack|fin|rst|psh|urg ...]`
//   (flags after addresses and ports: ansible arista.eos `eos_acls`, README);
// - `monitor session S source INTF [rx|tx|both] [ip access-group A]`, `monitor session S ip
//   access-group A`, `monitor session S destination tunnel mode gre source A destination B`:
//   networkop/ecmp-conntrack README (`source Ethernet47 rx ip access-group ACL-TCP-SYN`) and
//   an Arista ERSPAN note (`monitor session ERSPAN ip access-group ERSPAN-ACL`);
// - `directflow` / `no shutdown` stay with the DirectFlow modes in session.ts.

import { isIP } from 'node:net';

type Block = 'mgmt-security' | 'ssl-profile' | 'mgmt-api' | 'mgmt-api-vrf' | 'role' | 'acl' | 'vrf-instance';

const NAME = '[A-Za-z0-9_.:-]+';
const INTF =
  '(Ethernet|Port-Channel|Et|Po)[0-9/]+(-[0-9/]+)?(,(Ethernet|Port-Channel|Et|Po)?[0-9/]+(-[0-9/]+)?)*';
const PORT = '(eq [0-9]{1,5} )?';
const ADDR = `(any|host \\S+|\\S+/[0-9]{1,3})`;
const FLAGS = '( (syn|ack|fin|rst|psh|urg))*';
const ipOk = (line: string): boolean =>
  [...line.matchAll(/(?:host |source |destination )(\S+)/g)].every(
    (m) => isIP(m[1] ?? '') !== 0 || !/^[0-9.:]+$/.test(m[1] ?? ''),
  );

/** Lines of each block, and the block a header line opens. */
const LINES: Record<Block | 'config', { re: RegExp; opens?: Block }[]> = {
  config: [
    { re: /^management security$/, opens: 'mgmt-security' },
    { re: /^management api http-commands$/, opens: 'mgmt-api' },
    { re: new RegExp(`^vrf instance ${NAME}$`), opens: 'vrf-instance' },
    { re: new RegExp(`^role ${NAME}$`), opens: 'role' },
    { re: new RegExp(`^ip access-list ${NAME}$`), opens: 'acl' },
    {
      re: new RegExp(
        `^username ${NAME}( privilege [0-9]{1,2})?( role ${NAME})?( secret( (0|5|sha512))? \\S+| nopassword)$`,
      ),
    },
    { re: /^aaa authorization (commands all|exec) default local$/ },
    { re: new RegExp(`^monitor session ${NAME} source ${INTF}( (rx|tx|both))?( ip access-group ${NAME})?$`) },
    { re: new RegExp(`^monitor session ${NAME} ip access-group ${NAME}$`) },
    { re: new RegExp(`^monitor session ${NAME} destination tunnel mode gre source \\S+ destination \\S+$`) },
  ],
  'mgmt-security': [{ re: new RegExp(`^ssl profile ${NAME}$`), opens: 'ssl-profile' }],
  'ssl-profile': [
    { re: new RegExp(`^certificate ${NAME} key ${NAME}$`) },
    { re: /^tls versions( 1\.[0-3])+$/ },
    { re: /^cipher-list \S+$/ },
  ],
  'mgmt-api': [
    { re: new RegExp(`^protocol https( ssl profile ${NAME})?$`) },
    { re: /^no protocol http$/ },
    { re: /^(no )?shutdown$/ },
    { re: new RegExp(`^vrf ${NAME}$`), opens: 'mgmt-api-vrf' },
  ],
  'mgmt-api-vrf': [{ re: /^(no )?shutdown$/ }, { re: new RegExp(`^ip access-group ${NAME}$`) }],
  'vrf-instance': [{ re: /^description .+$/ }],
  role: [{ re: /^[0-9]{1,5} (permit|deny)( mode \S+)? command \S.*$/ }],
  acl: [
    { re: new RegExp(`^[0-9]{1,5} (permit|deny) tcp ${ADDR} ${PORT}${ADDR}( eq [0-9]{1,5})?${FLAGS}$`) },
    { re: /^remark .+$/ },
  ],
};

export class SiteConfig {
  /** Open blocks, outermost first. */
  private stack: Block[] = [];
  /** Lines accepted, as entered (for tests and `show` later). */
  readonly lines: string[] = [];

  /** Leaves every block (a line of another mode, `end`). */
  reset(): void {
    this.stack = [];
  }

  /**
   * Takes a line entered in configuration mode: true where it belongs to this grammar (in the
   * innermost open block, else in an enclosing one, as EOS tries enclosing modes), false where it
   * does not (the session's other configuration lines may take it).
   */
  line(tokens: string[]): boolean {
    const text = tokens.join(' ');
    if (text.startsWith('!')) return true;
    if (text === 'exit' && this.stack.length > 0) {
      this.stack.pop();
      return true;
    }
    for (let depth = this.stack.length; depth >= 0; depth--) {
      const block: Block | 'config' = depth === 0 ? 'config' : (this.stack[depth - 1] as Block);
      const hit = LINES[block].find((l) => l.re.test(text));
      if (hit === undefined || !ipOk(text)) continue;
      this.stack = this.stack.slice(0, depth);
      if (hit.opens !== undefined) this.stack.push(hit.opens);
      this.lines.push(text);
      return true;
    }
    return false;
  }

  /** Whether a block is open (a line no mode takes is then an error, not a config-mode line). */
  get inBlock(): boolean {
    return this.stack.length > 0;
  }
}
