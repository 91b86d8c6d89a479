// Every command's help: what it does, its options and examples, as `flowpin CMD --help` (or
// `flowpin help CMD`) prints it, and the table shell completion reads (completion.ts). Plain
// data, imported by the entry point before anything else: it must stay free of imports, so
// that `--help` and completion start as fast as bare Node.

export interface CommandHelp {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Positional arguments and option synopsis after `flowpin NAME`. */
  synopsis: string;
  /** What it does, a few lines. */
  description: string;
  /** [flag (with its value's name), what it does]. */
  options: [string, string][];
  examples: string[];
  /** What a positional argument completes to: files, a shell name, or nothing known. */
  positional?: 'file' | 'shell' | 'command';
  /** Operator commands (against a running controller) share the connection options. */
  operator?: boolean;
}

const CONNECTION: [string, string][] = [
  ['--url URL', 'the controller (or FLOWPIN_URL; default http://127.0.0.1:8080)'],
  ['--token-file FILE', 'the operator token for changes (or FLOWPIN_TOKEN)'],
  ['-o, --output json|text', "json: the API's JSON, for scripts"],
];
const PLACE: [string, string][] = [
  ['--vip V', 'the VIP (may be left out when only one has the nexthop)'],
  ['--switch S', 'the switch (may be left out when only one fits)'],
];
const SIM_OPTIONS: [string, string][] = [
  ['--config FILE', 'a simulator scenario (docs/sim-scenario.example.yaml)'],
  ['--eapi-port N, --gnmi-port N, --status-port N', 'where its eAPI, gNMI and counters listen'],
  ['--mirror HOST:PORT', 'where it sends mirrored frames (GRE-in-UDP)'],
  ['--mirror-raw', 'send raw GRE (IP protocol 47) instead (root)'],
  ['--rate N', 'new connections per second'],
  ['--no-traffic', 'no traffic generator'],
  ['--seed N', "the traffic's random seed"],
  ['--state-file F', "the switch's groups read from F at start and written to it at stop"],
  ['--speed X', "the simulator's clock runs X times wall time (traffic, lifetimes, timeouts)"],
  [
    '--preexisting-s S',
    'traffic runs this long before the mirror reaches flowpin (connections older than flowpin)',
  ],
  [
    '--mirror-mode syn-only|fin-rst|both-ways',
    'what the mirror sessions carry (both-ways: FIN and RST from clients and servers)',
  ],
  ['--lifetime-model lognormal|heavy-tail', 'connection lifetimes (heavy-tail: most short, some for hours)'],
  [
    '--half-close-share X, --idle-share X',
    'clients that half-close and keep reading; connections idle between packets',
  ],
  ['--table N, --reserved-entries N', "the pin table's size, and entries other owners hold"],
  ['--dataplane HOST:PORT', 'serve TCP segments from an external load (flowpin load) over UDP'],
  ['--reset-log FILE', "one JSON line per reset connection (the torture runner's ground truth)"],
];
/** The bound every change takes. */
const BOUND: [string, string] = [
  '--max-at-risk N',
  'the most connections the change may cost (at risk, never seen, expected in its window above the threshold): checked on its dry run and again right before its group write; 0 unless given, unbounded for any',
];

export const COMMANDS: CommandHelp[] = [
  {
    name: 'start',
    summary: 'flowpin with the built-in switch simulator and live traffic',
    synopsis:
      '[--api-host H] [--api-port N] [--pin-mode on-change|always] [--state-file F | --no-state] [--discard-state] [sim options]',
    description:
      "Runs the switch simulator in a child process and a flowpin controller that manages it through its eAPI, with\nmirrored SYNs, FINs and RSTs (both ways) over GRE-in-UDP. The API and dashboard listen on http://127.0.0.1:8080.\nState (changes in progress, tracked flows, the switch's groups) is kept in .flowpin/start.state, so a restart\nresumes what was in progress. Ctrl-C stops both.",
    options: [
      ['--api-host H', 'where the API listens (127.0.0.1)'],
      ['--api-port N', "the API's port (8080)"],
      ['--pin-mode on-change|always', 'pin only what a change would move, or every flow'],
      ['--state-file F', 'where state is kept (.flowpin/start.state; one flowpin per file)'],
      ['--no-state', 'keep no state (a restart forgets)'],
      [
        '--discard-state',
        'move the state files that cannot be read aside (<file>.discarded-<time>) and start without them',
      ],
      ...SIM_OPTIONS.filter(([f]) => !f.startsWith('--state-file')),
    ],
    examples: [
      'FLOWPIN_TOKEN=demo flowpin start',
      'flowpin start --rate 100 --pin-mode always --api-port 9090',
    ],
  },
  {
    name: 'run',
    summary: 'flowpin against the switches of a configuration file',
    synopsis: '--config FILE [--discard-state]',
    description:
      "Validates the configuration (errors name the file and key), takes the state file's lock, reads the state back\n(refusing, with the file and line named, state it cannot read as written), connects to the switches and serves\nthe API until SIGINT/SIGTERM (state written, pins left on the switches). SIGHUP reads the file again and applies\nit whole or not at all (as flowpin reload does; the outcome is logged).",
    options: [
      ['-c, --config FILE', 'the configuration (docs/flowpin.example.yaml shows every key)'],
      [
        '--discard-state',
        "move the state files that cannot be read aside (<file>.discarded-<time>) and start without them: a damaged change log's changes are not resumed, a damaged flow journal's flows are forgotten; the parts that read are kept",
      ],
    ],
    examples: [
      'flowpin run --config /etc/flowpin/flowpin.yaml',
      'kill -HUP <pid>        # reload the configuration (flowpin reload does the same and prints what changed)',
    ],
  },
  {
    name: 'lab',
    summary: '(root) a Linux router in network namespaces, driven by flowpin, with live TCP',
    synopsis: '[--api-port N] [--connections N]',
    description:
      'Builds clients, a router and four servers in network namespaces, runs flowpin on the router through the\nLinux adapter with real TCP connections, and removes everything on exit.',
    options: [
      ['--api-port N', "the API's port (8080)"],
      ['--connections N', 'connections to open (200)'],
    ],
    examples: ['sudo flowpin lab', 'sudo flowpin lab --api-port 9090 --connections 1000'],
  },
  {
    name: 'sim',
    summary: 'the switch simulator alone (eAPI, gNMI, counters, mirror)',
    synopsis: '[options]',
    description:
      'Runs the simulator and prints where its eAPI, gNMI, counters and mirror are; runs until SIGINT/SIGTERM.',
    options: SIM_OPTIONS,
    examples: [
      'flowpin sim --rate 100 --mirror 127.0.0.1:4754',
      'flowpin sim --config docs/sim-scenario.example.yaml',
    ],
  },
  {
    name: 'receive',
    summary: 'listen for mirrored frames and print decoded TCP segments',
    synopsis: '[--host H] [--port P] [--raw]',
    description:
      'GRE-in-UDP on --host/--port, and with --raw a raw GRE socket; one JSON line per segment, counters on SIGINT.',
    options: [
      ['--host H', 'address to listen on (127.0.0.1)'],
      ['--port P', 'UDP port (4754)'],
      ['--raw', 'also a raw IPv4 socket for IP protocol 47 (root or CAP_NET_RAW)'],
    ],
    examples: ['flowpin receive --host 0.0.0.0', 'flowpin receive --raw'],
  },
  {
    name: 'decode',
    summary: 'decode a capture of mirrored frames, one JSON line per TCP segment',
    synopsis: 'FILE|-',
    description:
      'Reads classic pcap or pcapng (a file, or - for stdin); prints each decoded TCP segment as JSON and a summary\non stderr. Exit status 0 unless the input cannot be read.',
    options: [],
    positional: 'file',
    examples: [
      'flowpin decode mirror.pcap',
      "tcpdump -U -i eth0 -w - 'ip proto 47 or udp port 4754' | flowpin decode -",
    ],
  },
  {
    name: 'scenario',
    summary: 'one traffic pattern, a drain and an add, against the switch alone, the prototype and flowpin',
    synopsis: '[options]',
    description:
      "Runs on the simulator with a virtual clock and prints one row (or JSON object) per configuration: resets in all,\nprotected (0 for flowpin), counted by the change records and uncounted (0 for flowpin), pins per live connection moved;\nwith --json each change's dry run, pins, moved live connections and refusal.",
    options: [
      ['--live N[,N...]', 'live connections before the changes'],
      ['--rate R', 'new connections per second'],
      ['--latency-ms L', 'switch API latency'],
      ['--program-delay-ms D', 'pin programming delay'],
      ['--table N', 'pin table size'],
      ['--changes drain,add', 'the changes, in order'],
      ['--configs mod-n,resilient,prototype,always,on-change', 'the configurations to run'],
      ['--settle-ms S', 'settle time'],
      ['--seed S', 'random seed'],
      ['--json', 'one JSON object per line'],
      ['--resolution lookup|observe|both', "how flows' servers are learnt"],
      ['--lookup exact|none|wrong-hash', "the switch's look-up answers"],
      ['--client-rtt-ms R', 'client round trip'],
      ['--adapter sim|gnmi', 'through the in-process adapter or gNMI'],
      [
        '--lifetimes fixed|realistic',
        "fixed: live connections last 2 h, new ones ~30 s; realistic: flowpin start's heavy-tailed model (most short, some for hours)",
      ],
      ['--half-close-share F', 'share of clients that half-close and keep reading'],
      ['--server-close-share F', 'share of connections the server closes first'],
      ['--rst-share F', 'share of connections reset by the client'],
      ['--idle-share F', 'share of long-lived idle connections'],
      ['--idle-gap-s S', "seconds between an idle connection's packets (600)"],
      [
        '--preexisting-s S',
        'traffic for S seconds before flowpin starts (connections it never saw; nothing claims their age)',
      ],
      ['--shared-table N', 'pin table entries held by other owners'],
      [
        '--mirror-ends both-ways|client-side|syn-only',
        "what the switch mirrors of connections' ends (syn-only)",
      ],
      ['--max-at-risk N|unbounded', 'the bound each change consents to (unbounded)'],
    ],
    examples: [
      'flowpin scenario --live 100000 --rate 5000 --json',
      'flowpin scenario --adapter gnmi --live 2000 --configs on-change',
      'flowpin scenario --configs on-change --lifetimes realistic --half-close-share 0.1 --idle-share 0.02 --mirror-ends both-ways --table 1500 --json',
    ],
  },
  {
    name: 'status',
    summary: 'readiness, switches, VIPs and nexthops with tracked and pinned flows',
    synopsis: '[--url URL] [-o json]',
    operator: true,
    description: 'Exit status 0 when flowpin is ready, 1 when not (the reasons are printed).',
    options: [],
    examples: ['flowpin status', 'flowpin status -o json | jq .ready'],
  },
  {
    name: 'drain',
    summary: "take a nexthop out of its VIP's group without resetting its connections",
    synopsis:
      'NEXTHOP [--vip V] [--switch S] [--dry-run] [--max-at-risk N] [--deadline S] [--wait] [--timeout S]',
    operator: true,
    description:
      "Pins the nexthop's live connections, takes it out of the ECMP group, and tracks them until none is left: drained.\n--dry-run prints what it would do and what it may cost, changing nothing. A drain that may cost more connections\nthan --max-at-risk is refused with the dry run's figures. At --deadline with connections left it reads\ndeadline-passed (with what is left), never drained; --wait then exits 4.",
    options: [
      ...PLACE,
      [
        '--dry-run',
        'report only: connections to pin, room in the pin table, at risk, never seen, the change window',
      ],
      BOUND,
      ['--deadline S', 'stop waiting for its connections after S seconds: deadline-passed, tracked on'],
      ['--wait', "follow the drain until drained (or its deadline), with the server's estimate"],
      ['--timeout S', 'stop waiting after S seconds (exit 3; the drain goes on)'],
      ['--interval S', 'how often --wait polls (1)'],
    ],
    examples: [
      'flowpin drain 10.0.1.2 --dry-run',
      'flowpin drain 10.0.1.2 --wait --timeout 600',
      'flowpin drain 10.0.1.2 --max-at-risk 12 --vip 192.0.2.80 --switch leaf1 --deadline 3600',
    ],
  },
  {
    name: 'undrain',
    summary: "put a drained nexthop back into its VIP's group",
    synopsis: 'NEXTHOP [--vip V] [--switch S] [--max-at-risk N]',
    operator: true,
    description: 'Runs as an addition: the flows the nexthop would take over are pinned first.',
    options: [...PLACE, BOUND],
    examples: ['flowpin undrain 10.0.1.2', 'flowpin undrain 10.0.1.2 --max-at-risk 20'],
  },
  {
    name: 'add',
    summary: "add a nexthop to a VIP's group without moving any connection",
    synopsis: 'NEXTHOP [--vip V] [--switch S] [--dry-run] [--max-at-risk N]',
    operator: true,
    description: 'Pins the flows the new member would take over, then adds it to the ECMP group.',
    options: [...PLACE, ['--dry-run', 'report only'], BOUND],
    examples: ['flowpin add 10.0.1.5 --dry-run', 'flowpin add 10.0.1.5 --vip 192.0.2.80 --max-at-risk 5'],
  },
  {
    name: 'remove',
    summary: "forget a nexthop that is out of its VIP's group",
    synopsis: 'NEXTHOP [--vip V] [--switch S] [--dry-run] [--max-at-risk N]',
    operator: true,
    description:
      'Refused while the nexthop is in the group (drain it first), and while more connections are left on it (live or\nunknown) than --max-at-risk: they lose their pins. --dry-run says what is left, changing nothing.',
    options: [
      ...PLACE,
      ['--dry-run', 'report only: live, unknown and pinned connections left'],
      [
        '--max-at-risk N',
        'the most connections left on it the removal may cost (0 unless given, unbounded for any)',
      ],
    ],
    examples: ['flowpin remove 10.0.1.2 --dry-run', 'flowpin remove 10.0.1.2'],
  },
  {
    name: 'flows',
    summary: 'tracked flows, most recently seen first',
    synopsis:
      '[--client A] [--port P] [--pinned|--unpinned] [--vip V] [--nexthop N] [--switch S] [--limit N] [--offset N]',
    operator: true,
    description: "Pages of flows from the controller's table, filtered on the server.",
    options: [
      ['--client A', "the client's address"],
      ['--port P', "the client's port"],
      ['--pinned, --unpinned', 'only flows with (without) a pin wanted'],
      ['--vip V', 'the VIP'],
      ['--nexthop N', 'the nexthop'],
      ['--switch S', 'the switch'],
      ['--limit N', 'rows (100, at most 1000)'],
      ['--offset N', 'rows to skip'],
    ],
    examples: ['flowpin flows --client 203.0.113.7', 'flowpin flows --nexthop 10.0.1.2 --pinned --limit 20'],
  },
  {
    name: 'pins',
    summary: 'pins on the switches: pending, installed, failed',
    synopsis:
      '[--state desired|installed|failed|pending] [--client A] [--vip V] [--nexthop N] [--switch S] [--limit N] [--offset N]',
    operator: true,
    description:
      'installed: programmed on the switch; pending: accepted, not yet programmed; failed: refused, with why.',
    options: [
      ['--state desired|installed|failed|pending', 'pins in this state'],
      ['--client A', "the client's address"],
      ['--vip V', 'the VIP'],
      ['--nexthop N', 'the nexthop'],
      ['--switch S', 'the switch'],
      ['--limit N', 'rows'],
      ['--offset N', 'rows to skip'],
    ],
    examples: ['flowpin pins --state failed', 'flowpin pins --nexthop 10.0.1.2 -o json'],
  },
  {
    name: 'changes',
    summary: 'changes queued, in progress and recent',
    synopsis: '[--switch S] [--watch [--interval S]]',
    operator: true,
    description:
      'One row per change: phase, pinned, at risk, never seen, change-window connections, connections left ("not\nmeasured" where a kill took the figure). --watch keeps polling (each request with its own deadline) and prints what\nchanged; Ctrl-C ends it.',
    options: [
      ['--switch S', 'one switch'],
      ['-w, --watch', 'keep watching'],
      ['--interval S', 'seconds between polls with --watch (2)'],
    ],
    examples: ['flowpin changes', 'flowpin changes --watch', 'flowpin changes --switch leaf1 -o json'],
  },
  {
    name: 'change',
    summary: 'one change by its id',
    synopsis: 'ID [--switch S]',
    operator: true,
    description:
      "The change's record: phase, times, pinned, at risk by reason, change-window flows, pinned flows left.",
    options: [['--switch S', 'the switch (found from the id otherwise)']],
    examples: ['flowpin change sim1-drain-m1k2x3-1', 'flowpin change sim1-drain-m1k2x3-1 -o json'],
  },
  {
    name: 'reload',
    summary: 'read the configuration file again and apply it, or refuse it whole',
    synopsis: '',
    operator: true,
    description:
      "The running `flowpin run` reads its --config file again (as on SIGHUP) and applies the API tokens, switches\nadded or removed, and each switch's VIPs, nexthops and maxUnavailable, all or nothing. An invalid file, a new\nvalue for a key read at start only, or a switch, VIP or nexthop removed while a change of it is in flight is\nrefused with the file and key named (exit 1); the running configuration stays.",
    options: [],
    examples: [
      'flowpin reload',
      'kill -HUP $(sed -n "s/^pid //p" STATEFILE.lock)    # the same, by signal (the outcome is logged)',
    ],
  },
  {
    name: 'cancel',
    summary: 'cancel a change before its group write',
    synopsis: 'ID [--switch S]',
    operator: true,
    description:
      'A queued change leaves the queue; a pending one stops at its next step and releases its pins; no group write is\nsent. Either reads cancelled. Once its group write was sent there is nothing cancel can take back: it changes\nnothing and says what would undo the change: for a drain an undrain, for an addition a drain, each a new change\nwith its own --max-at-risk. Exit 0 cancelled, 1 refused (too late, no such change) or failed.',
    options: [['--switch S', 'the switch (found from the id otherwise)']],
    examples: [
      'flowpin changes                       # the id of the change to cancel',
      'flowpin cancel sim1-drain-m1k2x3-1',
    ],
  },
  {
    name: 'load',
    summary: "an external load through the simulator's dataplane endpoint (for flowpin torture)",
    synopsis: '--dataplane HOST:PORT [options]',
    description:
      'Opens TCP connections through `flowpin sim --dataplane`, each with its lifetime, segments and close, and logs them.',
    options: [
      ['--dataplane HOST:PORT', "the simulator's dataplane endpoint"],
      ['--vip ADDR:PORT', 'the VIP'],
      ['--rate N', 'new connections per second'],
      ['--duration-s S', 'how long'],
      ['--lifetime-median-s S, --lifetime-sigma X, --lifetime-max-s S', 'lognormal lifetimes'],
      ['--interval-ms N', "between a connection's segments"],
      ['--log FILE', 'one JSON line per connection'],
      ['--seed N', 'random seed'],
    ],
    examples: ['flowpin load --dataplane 127.0.0.1:7000 --rate 2000 --duration-s 30'],
  },
  {
    name: 'torture',
    summary: 'the simulator, the controller and the load in real processes, with kills and faults',
    synopsis: '[--seed N] [--runs N] [--faults F,...] [--rate N] [options]',
    description:
      "Runs seeded schedules of faults (kills at random and at named phases, SIGSTOP, a queued change killed, a full\ndisk, damaged state files, switch faults) and checks the promise against the simulator's reset log: one JSON line\nper run; exit 1 on any violation (docs/torture.md).",
    options: [
      ['--seed N', 'the schedule (printed first)'],
      ['--runs N', 'runs'],
      ['--faults F,...', 'none, kill-random, kill-phase, stop, queued-kill, disk-full, corrupt, eapi-fault'],
      ['--rate N', 'new connections per second (2000)'],
      ['--keep', "keep each run's directory"],
      ['--cpu-prof', 'profile the controller'],
      ['--verbose', 'say what each run does'],
    ],
    examples: [
      'npm run torture',
      'flowpin torture --seed 42 --faults kill-phase,queued-kill --runs 6 --rate 3000',
    ],
  },
  {
    name: 'completion',
    summary: 'shell completion for bash or zsh',
    synopsis: 'bash|zsh',
    positional: 'shell',
    description: 'Prints a completion script for the shell: commands, options and their values.',
    options: [],
    examples: [
      'source <(flowpin completion bash)          # bash, this shell',
      'flowpin completion bash > /etc/bash_completion.d/flowpin',
      'flowpin completion zsh > "${fpath[1]}/_flowpin"   # zsh (then compinit)',
    ],
  },
  {
    name: 'help',
    summary: "this list, or a command's help",
    synopsis: '[COMMAND]',
    positional: 'command',
    description: 'flowpin help COMMAND is flowpin COMMAND --help.',
    options: [],
    examples: ['flowpin help drain'],
  },
];

export const commandNamed = (name: string | undefined): CommandHelp | undefined =>
  COMMANDS.find((c) => c.name === name);

/** The options a command takes, with the operator commands' connection options. */
export const optionsOf = (c: CommandHelp): [string, string][] => [
  ...c.options,
  ...(c.operator ? CONNECTION : []),
];

const rows = (items: [string, string][]): string => {
  const w = Math.min(34, Math.max(...items.map(([f]) => f.length)));
  return items.map(([f, t]) => `  ${f.padEnd(w)}  ${t}`).join('\n');
};

export function commandHelp(c: CommandHelp): string {
  const opts = optionsOf(c);
  return `flowpin ${c.name}: ${c.summary}

usage: flowpin ${c.name} ${c.synopsis}

${c.description}
${opts.length > 0 ? `\noptions:\n${rows(opts)}\n` : ''}
examples:
${c.examples.map((e) => `  ${e}`).join('\n')}
`;
}

export function overview(): string {
  const list = (operator: boolean): string =>
    rows(COMMANDS.filter((c) => (c.operator ?? false) === operator).map((c) => [c.name, c.summary]));
  return `usage: flowpin <command> [options]

commands:
${list(false)}

operator commands (against a running controller: --url URL or FLOWPIN_URL, default http://127.0.0.1:8080;
changes send the token from FLOWPIN_TOKEN or --token-file FILE; -o json for the API's JSON):
${list(true)}

flowpin <command> --help shows a command's options and examples.
`;
}

/** A usage error's last line, as kubectl says it. */
export const seeHelp = (command: string): string => `see 'flowpin ${command} --help'`;
