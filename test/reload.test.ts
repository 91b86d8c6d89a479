// Reloading the configuration of a running `flowpin run` (a process of its own, against two
// switch simulators in processes of their own): SIGHUP and `flowpin reload` take new API tokens,
// a VIP and a nexthop added to a switch, a switch added and later removed, without a restart.
// An invalid file, a key read at start only, and a switch removed while a change of it is in
// flight are refused whole, naming the file and the key; the running configuration stays.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cli } from './helpers/cli.js';
import { until } from './helpers/demo.js';
import { proc, type Proc } from './helpers/processes.js';
import { flowpinBin } from './helpers/tools.js';

interface Sim extends Proc {
  eapi: string;
}

/** A switch simulator with two VIPs (192.0.2.80, 192.0.2.81) and no traffic. */
async function sim(dir: string, name: string): Promise<Sim> {
  const scenario = path.join(dir, `${name}.yaml`);
  writeFileSync(
    scenario,
    `switch: { hostname: ${name} }
vips:
  - { address: 192.0.2.80, port: 443, nexthops: [10.0.1.1, 10.0.1.2, 10.0.1.3] }
  - { address: 192.0.2.81, port: 443, nexthops: [10.0.2.1, 10.0.2.2] }
spareServers: [10.0.1.5]
`,
  );
  const p = proc([
    flowpinBin,
    'sim',
    '--config',
    scenario,
    '--eapi-port',
    '0',
    '--gnmi-port',
    '0',
    '--status-port',
    '0',
    '--mirror',
    '127.0.0.1:9',
    '--no-traffic',
  ]);
  try {
    return {
      ...p,
      eapi: await until(
        () => /eAPI\s+(http:\S+)/.exec(p.out())?.[1],
        20_000,
        `the simulator (output: ${p.out()})`,
      ),
    };
  } catch (err) {
    await p.stop();
    throw err;
  }
}

const switchYaml = (name: string, source: string, eapi: string, vips: string[]): string[] => [
  `  - name: ${name}`,
  '    adapter: arista-eapi',
  `    mirrorSources: [${source}]`,
  `    eapi: { url: '${eapi}', username: admin, password: flowpin, groupTemplate: static-ecmp }`,
  '    vips:',
  ...vips.map((v) => `      - ${v}`),
];

test(
  'reload: SIGHUP and flowpin reload take tokens, VIPs, nexthops and switches; an invalid file, a start-only key and a switch with a change in flight are refused whole',
  { timeout: 240_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-reload-'));
    const procs: Proc[] = [];
    try {
      const [s1, s2] = await Promise.all([sim(dir, 'sim1'), sim(dir, 'sim2')]);
      procs.push(s1, s2);
      const token = (name: string, value: string): string => {
        const f = path.join(dir, `${name}.token`);
        writeFileSync(f, `${value}\n`);
        chmodSync(f, 0o600);
        return f;
      };
      const alice = token('alice', 'alice-token-1');
      const bob = token('bob', 'bob-token-2');
      const cfg = path.join(dir, 'flowpin.yaml');
      const write = (o: {
        tokens: string[];
        port?: string;
        sw1: string[];
        sw2?: string[];
        extra?: string;
      }): void =>
        writeFileSync(
          cfg,
          [
            `api: { host: 127.0.0.1, port: ${o.port ?? '0'}, tokens: [${o.tokens.join(', ')}] }`,
            'mirror: { udp: [{ host: 127.0.0.1, port: 0 }] }',
            `stateFile: ${path.join(dir, 'state')}`,
            // Each change waits 4 s before its group write: one can be caught in flight.
            'settleMs: 4000',
            'barrierTimeoutMs: 30000',
            ...(o.extra === undefined ? [] : [o.extra]),
            'switches:',
            ...switchYaml('sim1', '127.0.0.2', s1.eapi, o.sw1),
            ...(o.sw2 === undefined ? [] : switchYaml('sim2', '127.0.0.3', s2.eapi, o.sw2)),
            '',
          ].join('\n'),
        );
      const v80 = '{ address: 192.0.2.80, nexthops: [10.0.1.1, 10.0.1.2, 10.0.1.3] }';
      write({ tokens: [`{ name: alice, role: operator, file: ${alice} }`], sw1: [v80] });
      const fp = proc([flowpinBin, 'run', '--config', cfg], { FLOWPIN_LOG_LEVEL: 'info' });
      procs.push(fp);
      const api = await until(
        () => /API (http:\S+?),/.exec(fp.out())?.[1],
        20_000,
        `flowpin run (output: ${fp.out()})`,
      );
      const as = (t: string | undefined) => ({ FLOWPIN_URL: api, FLOWPIN_TOKEN: t });
      const dryRun = async (t: string): Promise<number> =>
        (
          await fetch(`${api}/api/v1/switches/sim1/vips/192.0.2.80/nexthops/10.0.1.2/drain`, {
            method: 'POST',
            headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' },
            body: '{"dryRun":true}',
          })
        ).status;
      const vips = async (sw: string): Promise<Record<string, string[]>> => {
        const r = (await (await fetch(`${api}/api/v1/switches/${sw}/vips`)).json()) as {
          vips?: { address: string; nexthops: { address: string }[] }[];
        };
        return Object.fromEntries((r.vips ?? []).map((v) => [v.address, v.nexthops.map((n) => n.address)]));
      };
      const switches = async (): Promise<{ name: string; connected: boolean }[]> =>
        (
          (await (await fetch(`${api}/api/v1/switches`)).json()) as {
            switches: { name: string; connected: boolean }[];
          }
        ).switches;
      await until(async () => (await switches())[0]?.connected, 20_000, 'sim1 connected');

      const same = await cli(['reload'], as('alice-token-1'));
      assert.equal(same.code, 0, same.err);
      assert.equal(same.out, `${cfg}: reloaded; nothing changed\n`);
      assert.equal(await dryRun('bob-token-2'), 401);

      // SIGHUP: bob's token, a nexthop and a VIP of sim1.
      write({
        tokens: [
          `{ name: alice, role: operator, file: ${alice} }`,
          `{ name: bob, role: operator, file: ${bob} }`,
        ],
        sw1: [
          '{ address: 192.0.2.80, nexthops: [10.0.1.1, 10.0.1.2, 10.0.1.3, 10.0.1.5] }',
          '{ address: 192.0.2.81, nexthops: [10.0.2.1] }',
        ],
      });
      fp.child.kill('SIGHUP');
      await until(() => /configuration reloaded"/.test(fp.out()), 20_000, 'the reload logged');
      assert.equal(await dryRun('bob-token-2'), 200);
      const after = await vips('sim1');
      assert.deepEqual(after['192.0.2.80'], ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.5']);
      // The VIP's group as the switch has it (read at the reload), beside the configured nexthop.
      assert.deepEqual(after['192.0.2.81'], ['10.0.2.1', '10.0.2.2']);
      assert.ok(fp.child.exitCode === null, 'SIGHUP did not end the process');

      // flowpin reload: a switch added.
      const both = {
        tokens: [
          `{ name: alice, role: operator, file: ${alice} }`,
          `{ name: bob, role: operator, file: ${bob} }`,
        ],
        sw1: [v80, '{ address: 192.0.2.81, nexthops: [10.0.2.1] }'],
        sw2: [v80],
      };
      write(both);
      const added = await cli(['reload'], as('bob-token-2'));
      assert.equal(added.code, 0, added.err);
      assert.match(added.out, /\n {2}switch sim2 added \(arista-eapi, 1 VIPs\): connecting\n/);
      assert.match(added.out, /\n {2}sim1: VIP 192\.0\.2\.80: nexthop 10\.0\.1\.5 forgotten\n/);
      await until(
        async () => (await switches()).find((s) => s.name === 'sim2')?.connected,
        20_000,
        'sim2 connected',
      );
      assert.deepEqual((await vips('sim2'))['192.0.2.80'], ['10.0.1.1', '10.0.1.2', '10.0.1.3']);

      // Refused whole: an invalid file, a key read at start only; nothing of either applies.
      write({ ...both, tokens: [...both.tokens.slice(0, 1)], extra: 'pinMode: sometimes' });
      const invalid = await cli(['reload'], as('bob-token-2'));
      assert.equal(invalid.code, 1);
      assert.equal(
        invalid.err,
        `flowpin reload: ${cfg}: pinMode: must be one of on-change, always, got 'sometimes'\n`,
      );
      write({ ...both, tokens: [...both.tokens.slice(0, 1)], port: '1' });
      const startOnly = await cli(['reload'], as('bob-token-2'));
      assert.equal(startOnly.code, 1);
      assert.match(
        startOnly.err,
        new RegExp(
          `^flowpin reload: ${cfg.replace(/[.]/g, '\\.')}: api\\.port: changed; it takes effect at a restart only .*Nothing was reloaded: the running configuration stays\\n$`,
        ),
      );
      assert.equal(
        await dryRun('bob-token-2'),
        200,
        "bob's token still works: the refused files took nothing",
      );

      // A switch with a change in flight cannot leave; once the change is done it can.
      const drain = fetch(`${api}/api/v1/switches/sim2/vips/192.0.2.80/nexthops/10.0.1.3/drain`, {
        method: 'POST',
        headers: { authorization: 'Bearer alice-token-1', 'content-type': 'application/json' },
        body: '{"maxAtRisk":"unbounded"}',
        signal: AbortSignal.timeout(60_000),
      });
      const id = await until(
        async () =>
          (
            (await (await fetch(`${api}/api/v1/switches/sim2/changes`)).json()) as {
              changes: { id: string; phase: string }[];
            }
          ).changes.find((c) => c.phase === 'pending')?.id,
        20_000,
        'the drain pending',
      );
      write({ tokens: [`{ name: bob, role: operator, file: ${bob} }`], sw1: [v80] });
      const inFlight = await cli(['reload'], as('bob-token-2'));
      assert.equal(inFlight.code, 1);
      assert.match(
        inFlight.err,
        new RegExp(
          `: switches: switch sim2 is no longer in the file, but changes of it are in flight \\(drain ${id} of 10\\.0\\.1\\.3, pending\\).*Nothing was reloaded`,
        ),
      );
      assert.equal((await drain).status, 202);
      const removed = await cli(['reload'], as('bob-token-2'));
      assert.equal(removed.code, 0, removed.err);
      assert.match(removed.out, /\n {2}API tokens: 1 \(were 2\); reads are open\n/);
      assert.match(
        removed.out,
        /\n {2}switch sim2 removed: its pins stay on the switch until they idle out, its change records are kept\n/,
      );
      assert.match(removed.out, /\n {2}sim1: VIP 192\.0\.2\.81 removed/);
      assert.deepEqual(
        (await switches()).map((s) => s.name),
        ['sim1'],
      );
      assert.equal(await dryRun('alice-token-1'), 401, "alice's token is gone");
      // The audit log names who reloaded.
      assert.match(
        fp.out(),
        /"audit":true,"token":"bob","client":"127\.0\.0\.1","method":"POST","url":"\/api\/v1\/reload","status":200/,
      );
    } finally {
      for (const p of procs.reverse()) await p.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
