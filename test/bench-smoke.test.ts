// The benchmarks keep working: `bench/run.js --tiny` runs small versions of the decode and
// receive benchmarks (tcpdump and tshark included) into a scratch directory, and the generated
// results.json, BENCHMARKS.md and README table hold every figure with its baseline. No timing
// is asserted; frame accounting is.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { renderBenchmarks, recordResults, type Figure, type Section } from '../bench/results.js';
import { have, repoRoot, skipUnless } from './helpers/tools.js';
import { loadNativeReader } from '../mirror-receiver/native/addon.js';

const skip = skipUnless(
  have('tcpdump') && have('tshark') && have('/usr/bin/time', ['true']),
  'tcpdump, tshark or GNU time',
);

test('tiny decode and receive benchmarks run and regenerate their tables', { skip, timeout: 180_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-bench-smoke-'));
  try {
    writeFileSync(
      path.join(dir, 'README.md'),
      '# x\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\nrest\n',
    );
    const res = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        path.join(repoRoot, 'dist/bench/run.js'),
        '--tiny',
        '--out',
        dir,
        'decode',
        'receive',
        'cli',
      ],
      { encoding: 'utf8', timeout: 170_000 },
    );
    assert.equal(res.status, 0, res.stderr + res.stdout);
    const results = JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')) as {
      figures: Figure[];
      sections: Section[];
    };
    const byId = new Map(results.figures.map((f) => [f.id, f]));
    assert.deepEqual(
      results.sections.map((s) => s.key),
      ['decode', 'cli', 'receive'],
    );
    assert.equal(
      byId.get('cli.status_ms')?.baseline,
      'cli.node_bare_ms',
      'start-up is shown beside bare Node',
    );
    for (const id of [
      'cli.help_ms',
      'cli.status_ms',
      'cli.node_bare_ms',
      'decode.flowpin_s',
      'decode.tcpdump_s',
      'decode.tshark_s',
      'decode.frames_per_s',
      'receive.paced.decoded_per_s',
      'receive.flood.decoded_per_cpu_s',
    ]) {
      const f = byId.get(id);
      assert.ok(f !== undefined && Number.isFinite(f.value) && f.value > 0, `${id}: ${JSON.stringify(f)}`);
    }
    assert.equal(byId.get('decode.flowpin_s')?.baseline, 'decode.tcpdump_s');
    assert.equal(byId.get('receive.flood.decoded_per_cpu_s')?.baseline, 'receive.flood.dgram_per_cpu_s');
    assert.ok((byId.get('receive.flood.dgram_per_cpu_s')?.value ?? 0) > 0, 'the bare dgram baseline ran');
    if (!('error' in loadNativeReader()))
      assert.equal(
        byId.get('receive.flood.recvmmsg_per_cpu_s')?.baseline,
        'receive.flood.dgram_per_cpu_s',
        'the bare recvmmsg ceiling beside the dgram one',
      );
    assert.ok(
      (byId.get('flowtable.bytes_per_flow_v4_tenth')?.value ?? 0) > 0,
      'memory per flow at a tenth of the size',
    );
    assert.equal(
      byId.get('receive.unexplained')?.value,
      0,
      'every frame sent was received or counted as a kernel drop',
    );
    // The C sender (sendmmsg) is built with cc, which .ci/run installs.
    assert.ok(
      (byId.get('receive.c_paced.decoded_per_s')?.value ?? 0) > 0,
      'the C sender ran and its frames were decoded',
    );
    assert.equal(byId.get('receive.c_paced.decoded_per_s')?.baseline, 'receive.c_paced.offered_per_s');
    for (const s of results.sections) {
      assert.ok(s.measured !== undefined && s.measured.loadAverage.length === 3);
      assert.ok(s.about.length > 200, 'each section explains its baselines');
    }
    const md = readFileSync(path.join(dir, 'BENCHMARKS.md'), 'utf8');
    assert.match(md, /## Decoding a capture/);
    assert.match(md, /## Receiving mirrored frames/);
    assert.match(
      md,
      /\| `flowpin decode`, 2,000 frames, whole process \| [^|]+ \| `tcpdump -nr`: [^|]+ \| [\d.,]+ x \|/,
    );
    assert.match(md, /load average at the start/);
    const readme = readFileSync(path.join(dir, 'README.md'), 'utf8');
    assert.match(readme, /<!-- bench:start -->\nMeasured on .*\[BENCHMARKS\.md\]\(BENCHMARKS\.md\)/);
    assert.match(readme, /\n\nrest\n$/);
    assert.doesNotMatch(readme, /\| `tcpdump -nr` \|/, 'the README table leaves baselines to BENCHMARKS.md');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a benchmark adds its own section without touching the others', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-bench-sections-'));
  try {
    const paths = {
      results: path.join(dir, 'r.json'),
      readme: path.join(dir, 'README.md'),
      benchmarks: path.join(dir, 'B.md'),
    };
    const fig = (id: string, value: number, extra: Partial<Figure> = {}): Figure => ({
      id,
      what: id,
      value,
      unit: 'ms',
      target: '',
      met: true,
      ...extra,
    });
    recordResults(
      {
        figures: [
          fig('a.x', 2, { baseline: 'a.base', runs: [1, 2, 9] }),
          fig('a.base', 4, { isBaseline: true }),
          fig('a.gone', 1),
        ],
        section: { key: 'a', title: 'A', about: 'about a', figures: ['a.x', 'a.gone'] },
      },
      paths,
    );
    recordResults(
      { figures: [fig('b.y', 5)], section: { key: 'b', title: 'B', about: 'about b', figures: ['b.y'] } },
      paths,
    );
    recordResults(
      {
        figures: [fig('a.x', 3, { baseline: 'a.base' }), fig('a.base', 4, { isBaseline: true })],
        section: { key: 'a', title: 'A again', about: 'about a', figures: ['a.x'] },
      },
      paths,
    );
    const md = readFileSync(paths.benchmarks, 'utf8');
    assert.deepEqual(
      [...md.matchAll(/^## (.*)$/gm)].map((m) => m[1]),
      ['A again', 'B'],
    );
    assert.match(md, /\| a\.x \| 3 ms \| a\.base: 4 ms \| 0\.75 x \|/);
    const file = JSON.parse(readFileSync(paths.results, 'utf8')) as Parameters<typeof renderBenchmarks>[0];
    assert.equal(renderBenchmarks(file), md);
    // The section run again did not report a.gone: the earlier run's figure is gone, b's stays.
    assert.deepEqual(file.figures.map((f) => f.id).sort(), ['a.base', 'a.x', 'b.y']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'tiny connection-safety, realistic-traffic and persistence benchmarks run and record their sections',
  { timeout: 300_000 },
  () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-bench-scenario-'));
    try {
      writeFileSync(path.join(dir, 'README.md'), '# x\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n');
      const res = spawnSync(
        process.execPath,
        [
          '--expose-gc',
          path.join(repoRoot, 'dist/bench/run.js'),
          '--tiny',
          '--out',
          dir,
          'scenario',
          'realistic',
          'persist',
        ],
        { encoding: 'utf8', timeout: 290_000 },
      );
      assert.equal(res.status, 0, res.stderr + res.stdout);
      const results = JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')) as {
        figures: Figure[];
        sections: Section[];
      };
      const byId = new Map(results.figures.map((f) => [f.id, f]));
      assert.deepEqual(
        results.sections.map((s) => s.key),
        ['scenario', 'realistic', 'persist'],
      );
      // Realistic traffic at a hundredth of 100 k: both mirrors, the promise kept, pins per moved connection
      // measured.
      for (const mirror of ['both-ways', 'syn-only']) {
        assert.equal(byId.get(`realistic.1000.${mirror}.broken_protected`)?.value, 0, mirror);
        assert.equal(byId.get(`realistic.1000.${mirror}.uncounted`)?.value, 0, mirror);
        assert.ok(
          (byId.get(`realistic.1000.${mirror}.drain_pins_per_moved_live`)?.value ?? 0) > 0.5,
          `${mirror}: a pin per moved connection where the table holds them`,
        );
        assert.equal(
          byId.get(`realistic.1000.${mirror}.resets_counted`)?.baseline,
          'realistic.1000.resilient.broken',
        );
      }
      // Three sizes (a thousandth of 10 k, 100 k and 1 M), every configuration at each.
      for (const live of [10, 100, 1000]) {
        for (const config of ['mod-n', 'resilient', 'prototype', 'always', 'on-change']) {
          assert.ok(
            Number.isFinite(byId.get(`scenario.${live}.${config}.broken`)?.value),
            `${live} ${config}`,
          );
          assert.ok(
            (byId.get(`scenario.${live}.${config}.rss_mib`)?.value ?? 0) > 0,
            `${live} ${config}: memory`,
          );
        }
        for (const config of ['always', 'on-change']) {
          assert.equal(
            byId.get(`scenario.${live}.${config}.broken_protected`)?.value,
            0,
            `${live} ${config}`,
          );
          assert.ok(
            (byId.get(`scenario.${live}.${config}.drain_wall_ms`)?.value ?? -1) > 0,
            `${live} ${config}: the drain's wall time`,
          );
          assert.equal(
            byId.get(`scenario.${live}.${config}.broken`)?.baseline,
            `scenario.${live}.resilient.broken`,
          );
        }
      }
      assert.ok(
        (byId.get('scenario.1000.resilient.broken')?.value ?? 0) >
          (byId.get('scenario.1000.on-change.broken')?.value ?? Infinity),
        'the switch alone breaks more than flowpin',
      );
      assert.ok((byId.get('changes.100.dry_run_ms')?.value ?? 0) > 0, 'the dry run is timed');
      assert.ok((byId.get('changes.100.pin_step_ms')?.value ?? -1) >= 0, 'the pinning step is timed');
      assert.ok((byId.get('persist.loop_delay_p99_ms')?.value ?? -1) >= 0);
      assert.match(readFileSync(path.join(dir, 'BENCHMARKS.md'), 'utf8'), /## Connection safety/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('tiny pinning and observation benchmarks run and record their sections', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-bench-pinning-'));
  try {
    writeFileSync(path.join(dir, 'README.md'), '# x\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n');
    const res = spawnSync(
      process.execPath,
      ['--expose-gc', path.join(repoRoot, 'dist/bench/run.js'), '--tiny', '--out', dir, 'pinning', 'observe'],
      { encoding: 'utf8', timeout: 290_000 },
    );
    assert.equal(res.status, 0, res.stderr + res.stdout);
    const results = JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')) as {
      figures: Figure[];
      sections: Section[];
    };
    const byId = new Map(results.figures.map((f) => [f.id, f]));
    assert.deepEqual(results.sections.map((s) => s.key).sort(), ['observe', 'pinning']);
    for (const tag of ['1ms', '10ms']) {
      for (const what of ['flowpin_pins_per_s', 'baseline_pins_per_s', 'flowpin_p50_ms', 'flowpin_p99_ms']) {
        const f = byId.get(`pinning.${tag}.${what}`);
        assert.ok(
          f !== undefined && Number.isFinite(f.value) && f.value > 0,
          `pinning.${tag}.${what}: ${JSON.stringify(f)}`,
        );
      }
      assert.equal(
        byId.get(`pinning.${tag}.flowpin_pins_per_s`)?.baseline,
        `pinning.${tag}.baseline_pins_per_s`,
      );
    }
    assert.ok(
      results.figures.some((f) => f.id.startsWith('observe.')),
      'the observation section has figures',
    );
    assert.match(readFileSync(path.join(dir, 'BENCHMARKS.md'), 'utf8'), /## Pinning against a switch API/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
