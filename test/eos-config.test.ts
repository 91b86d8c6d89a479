// The README's EOS configuration block, as it stands, fed line by line to the simulator's eAPI
// (enable, configure, the block, end): every line is accepted in its mode. A line EOS would
// not take (a typo, a wrong mode) is refused with the eAPI error 1002 "Invalid input", so the
// check can fail. And the block holds what the README says it does: HTTPS with the SSL profile,
// the user's role, DirectFlow, FIN and RST in the mirror ACLs of both directions, two sessions.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { EapiServer } from '../switch-sim/eapi/server.js';
import { testSwitch } from './helpers/sim.js';
import { repoRoot } from './helpers/tools.js';

const { sw } = testSwitch();
const server = new EapiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 'eos-block' });
let url = '';

const block = (): string[] => {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const m = /<!-- eos-config:start -->\n```\n([\s\S]*?)```\n<!-- eos-config:end -->/.exec(readme);
  assert.ok(m?.[1] !== undefined, 'the README has the EOS block between its markers');
  return m[1]
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
};

async function runCmds(
  cmds: string[],
): Promise<{ result?: unknown[]; error?: { code: number; message: string; data: { errors?: string[] }[] } }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from('admin:eos-block').toString('base64')}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      method: 'runCmds',
      params: { version: 1, cmds, format: 'json' },
      id: 1,
    }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200);
  return (await res.json()) as {
    result?: unknown[];
    error?: { code: number; message: string; data: { errors?: string[] }[] };
  };
}

before(async () => {
  url = (await server.start()).url;
});
after(async () => {
  await server.stop();
});

test(
  "the README's EOS block is accepted line by line by the simulator's eAPI",
  { timeout: 30_000 },
  async () => {
    const lines = block();
    const r = await runCmds(['enable', 'configure', ...lines, 'end']);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.result?.length, lines.length + 3);
    // DirectFlow was turned on by the block's own lines.
    assert.equal(sw.directflowEnabled, true);
  },
);

test(
  'a line EOS would not take is refused with Invalid input (the check can fail)',
  { timeout: 30_000 },
  async () => {
    const lines = block();
    const broken: [string, string][] = [
      ['protocol https ssl profile FLOWPIN-EAPI', 'protocol htps ssl profile FLOWPIN-EAPI'],
      ['10 permit tcp any host 192.0.2.80 eq 443 syn', '10 permit tcp any host 192.0.2.80 eq 443 synn'],
      [
        'monitor session FLOWPIN destination tunnel mode gre source 10.0.0.1 destination 10.0.0.50',
        'monitor session FLOWPIN destination tunnel mode gre source 10.0.0.1 destination 10.0.0.500',
      ],
    ];
    for (const [good, bad] of broken) {
      const i = lines.indexOf(good);
      assert.ok(i >= 0, `the block has '${good}'`);
      const cmds = ['enable', 'configure', ...lines.slice(0, i), bad];
      const r = await runCmds(cmds);
      assert.equal(r.error?.code, 1002, `'${bad}' refused`);
      assert.match(r.error?.data.at(-1)?.errors?.[0] ?? '', /^Invalid input/);
      assert.match(r.error?.message ?? '', new RegExp(`CLI command ${cmds.length} of ${cmds.length} `));
    }
    // A mode's line outside its mode: `no protocol http` at the top level is no configuration line.
    const r = await runCmds(['enable', 'configure', 'no protocol http']);
    assert.equal(r.error?.code, 1002);
  },
);

test(
  'the block holds what the README says: HTTPS with its profile, the role, DirectFlow, FIN and RST both ways, two sessions',
  { timeout: 10_000 },
  () => {
    const text = block().join('\n');
    assert.match(
      text,
      /^management api http-commands\nprotocol https ssl profile (\S+)\nno protocol http\nno shutdown\nvrf MGMT\nno shutdown$/m,
    );
    assert.match(text, /^ssl profile FLOWPIN-EAPI\ncertificate \S+ key \S+$/m);
    assert.match(text, /^username flowpin privilege 15 role FLOWPIN secret/m);
    assert.match(text, /^directflow\nno shutdown$/m);
    for (const acl of ['FLOWPIN-CLIENTS', 'FLOWPIN-SERVERS']) {
      const body = new RegExp(`^ip access-list ${acl}\\n((?:\\d+ .*\\n?)+)`, 'm').exec(text)?.[1] ?? '';
      for (const flag of acl === 'FLOWPIN-CLIENTS' ? ['syn', 'fin', 'rst'] : ['syn ack', 'fin', 'rst'])
        assert.match(body, new RegExp(` ${flag}$`, 'm'), `${acl} mirrors ${flag}`);
      assert.match(text, new RegExp(`^monitor session \\S+ source \\S+ rx ip access-group ${acl}$`, 'm'));
    }
    assert.equal(
      text.match(
        /^monitor session \S+ destination tunnel mode gre source 10\.0\.0\.1 destination 10\.0\.0\.50$/gm,
      )?.length,
      2,
    );
  },
);
