// The sim kind: the simulator's switch driven in-process (SimAdapter over the SimulatedSwitch
// shape, model.ts). It has no configuration section, and a configuration file cannot reach an
// in-process switch: the scenario runner and the tests hand the controller its adapter
// themselves (`flowpin start` runs the simulator in a child process, behind its eAPI).

import type { AdapterKind } from '../kind.js';

export const KIND = 'sim';

export const simKind: AdapterKind<undefined> = {
  kind: KIND,
  read: () => undefined,
  create(setup) {
    throw new Error(
      `switch ${setup.name}: adapter 'sim' is the simulator's switch in-process; it is given to the controller by the scenario runner or a test, not built from a configuration file`,
    );
  },
};
