// The sim kind: the built-in simulator's switch driven in-process. It has no configuration
// section; its switch is the simulated one of the same name, which only `flowpin start` runs.

import type { AdapterKind } from '../kind.js';
import { SimAdapter } from './adapter.js';

export const KIND = 'sim';

export const simKind: AdapterKind<undefined> = {
  kind: KIND,
  read: () => undefined,
  create(setup, _settings, env) {
    const sw = env.sims?.get(setup.name);
    if (sw === undefined) throw new Error(`switch ${setup.name}: adapter 'sim' needs the built-in simulator (flowpin start)`);
    return new SimAdapter(sw);
  },
};
