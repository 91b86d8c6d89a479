// The flow a flow-table key stands for, and its id as switches name it.

import { flowId, type FlowSpec } from '../switch-adapters/contract.js';
import { parseTuple } from '../mirror-receiver/tuple.js';

export function specOf(key: string): FlowSpec {
  const t = parseTuple(key, 2);
  return { family: t.family, src: t.src, dst: t.dst, sport: t.sport, dport: t.dport };
}

export const idOfKey = (key: string): string => flowId(specOf(key));
