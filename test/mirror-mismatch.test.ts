// A mirror source that does not match the switch: the switch mirrors from an address its
// configuration does not name (here the frames come from 127.0.0.1, the switch is configured
// with 127.0.0.2). flowpin sees frames but none for the switch: the switch is not ready (its
// mirror silent), readiness names the unmatched source, every such frame is counted, and a
// drain is refused (409, the mirror named) unless the risk is accepted. Real processes:
// `flowpin run`, the simulator, and a mirror sender.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { until } from './helpers/demo.js';
import { recordFigures } from '../reliability/figures.js';
import { sendMirror, startFlowpin, startSim, type Proc } from './helpers/processes.js';

const TOKEN = 'mismatch';

test(
  'a mirror whose source matches no switch: not ready, the source named, frames counted, a drain refused',
  { timeout: 90_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-mismatch-'));
    const procs: Proc[] = [];
    try {
      const sim = await startSim(dir);
      procs.push(sim);
      const fp = await startFlowpin(dir, sim, {
        token: TOKEN,
        stateFile: path.join(dir, 'state'),
        mirrorSources: ['127.0.0.2'],
        extra: ['mirror: { udp: [{ host: 127.0.0.1, port: 0 }], silenceS: 2 }'],
      });
      procs.push(fp);
      const sender = sendMirror(fp.mirrorPort, 3000, 1000);
      procs.push(sender);
      const sent = await sender.result();
      interface Ready {
        ready: boolean;
        reasons: string[];
        switches: { mirror: { state: string; syns: number } }[];
      }
      const r = await until(
        async () => {
          const res = await fetch(`${fp.api}/readyz`);
          const body = (await res.json()) as Ready;
          return res.status === 503 && body.switches[0]?.mirror.state === 'silent' && body;
        },
        20_000,
        'readiness to report the silent mirror',
      );
      assert.equal(r.ready, false);
      assert.equal(r.switches[0]?.mirror.syns, 0, 'no SYN was taken for the switch');
      const line = r.reasons.find((x) =>
        /mirrored frames came from a source no switch is configured for/.test(x),
      );
      assert.ok(line !== undefined, JSON.stringify(r.reasons));
      assert.match(line, /the last from 127\.0\.0\.1\)/);
      const counted = Number(/^(\d+) mirrored frames/.exec(line)?.[1]);
      // Every frame the sender got out is counted (the kernel may drop some on loopback: counted apart, by
      // the receiver).
      const metrics = await (await fetch(`${fp.api}/metrics`)).text();
      const unknown = Number(
        /flowpin_mirror_events(?:_total)?\{[^}]*switch="unknown"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 'NaN',
      );
      assert.equal(unknown, counted, 'readiness and /metrics agree');
      assert.ok(counted > 0 && counted <= sent.sent, `${counted} counted of ${sent.sent} sent`);
      const drain = await fetch(`${fp.api}/api/v1/switches/sim1/vips/192.0.2.80/nexthops/10.0.1.2/drain`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(drain.status, 409);
      const body = (await drain.json()) as {
        message: string;
        detail: { report: { mirror: { state: string }; flowsToPin: number } };
      };
      assert.match(
        body.message,
        /the mirror of sim1 is silent .*only maxAtRisk "unbounded" consents to that/,
      );
      assert.equal(body.detail.report.mirror.state, 'silent');
      const c = (await (await fetch(sim.counters)).json()) as { vips: { members: string[] }[] };
      assert.deepEqual(
        c.vips[0]?.members,
        ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'],
        'nothing changed on the switch',
      );
      recordFigures({
        fault: 'a mirror source that matches no switch',
        test: 'test/mirror-mismatch.test.ts',
        outcome:
          'switch not ready (mirror silent), readiness names the unmatched source, every frame counted, drain refused (409) without maxAtRisk unbounded',
        inputs: sent.sent,
        broken: 0,
        brokenPromised: 0,
        dropsCounted: counted,
        figures: {
          'frames sent': sent.sent,
          'frames counted as from an unknown source': counted,
          'SYNs taken for the switch': 0,
        },
      });
    } finally {
      for (const p of procs.reverse()) await p.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
