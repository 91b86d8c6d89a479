// The reliability report's own logic: which test files it runs (patterns with `*`, e.g. the
// property tests), and that a failed file and a missing one show in the report.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { markdown, PATTERNS, selectFiles } from '../reliability/run.js';

test(
  "files by pattern, in the patterns' order, each once; the report shows failures and what is missing",
  { timeout: 10_000 },
  () => {
    const names = [
      'a.test.js',
      'receive-overflow.test.js',
      'api-property.test.js',
      'config-property.test.js',
      'readiness.test.js',
      'readiness-extra.test.js',
      'overflow.test.ts',
    ];
    assert.deepEqual(selectFiles(names, ['readiness', '*overflow*', '*property*', 'readiness']), [
      'readiness.test.js',
      'receive-overflow.test.js',
      'api-property.test.js',
      'config-property.test.js',
    ]);
    assert.ok(
      PATTERNS.includes('mirror-drops') && PATTERNS.includes('sigterm-load'),
      'the receive-buffer overflow and SIGTERM tests are in the report',
    );
    const md = markdown(
      [
        {
          fault: 'f1',
          test: 'test/x.test.ts',
          outcome: 'held',
          inputs: 10,
          broken: 2,
          brokenPromised: 0,
          dropsCounted: 3,
          figures: { 'a | b': 1500 },
        },
      ],
      [
        { file: 'test/x.test.ts', pass: 1, fail: 0, seconds: 1, failed: [] },
        { file: 'test/y.test.ts', pass: 0, fail: 1, seconds: 2, failed: ['it broke'] },
      ],
      ['*overflow*'],
      'now',
    );
    assert.match(
      md,
      /\*\*1 faults survived\*\*.*1 tests passed, 1 failed; inputs tried 10; connections broken where flowpin promised to keep them: 0; drops counted 3\./,
    );
    assert.match(md, /\| f1 \| held \| 10 \| 2 \| 0 \| 3 \| `test\/x\.test\.ts` \|/);
    assert.match(md, /\| a \\\| b \| 1,500 \|/);
    assert.match(md, /- `test\/y\.test\.ts`: it broke/);
    assert.match(md, /Not yet in the tree \(looked for\): `test\/\*overflow\*\.test\.ts`/);
  },
);
