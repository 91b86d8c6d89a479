// The gNMI target's configuration datastore: a tree of data nodes (one per path element,
// list entries by their keys), so that a Get, a Subscribe sample or a Set touches only the
// subtrees it names, whatever else the device holds. A leaf's path is not stored with it: it
// is the path of its node, built while walking. Changes inside `transaction` are logged and
// undone when it throws (a SetRequest is applied whole or not at all, gNMI 3.4.3); the paths
// a transaction changed are handed to its caller, which checks only what they affect.

import type { PathElem } from '../../proto/gnmi.js';
import type { Scalar, SchemaNode } from './schema.js';

export interface StoredLeaf {
  value: Scalar;
  node: SchemaNode;
}

export interface Leaf extends StoredLeaf {
  elems: PathElem[];
}

class DataNode {
  leaf: StoredLeaf | undefined;
  kids: Map<string, DataNode> | undefined;
  constructor(readonly elem: PathElem) {}
}

/** An element as a child's name in its parent: name and keys, keys in name order. */
export function elemText(e: PathElem): string {
  const key = e.key;
  if (key === undefined || key === null) return e.name;
  const names = Object.keys(key);
  if (names.length === 0) return e.name;
  if (names.length > 1) names.sort();
  let s = e.name;
  for (const k of names) s += `[${k}=${key[k] ?? ''}]`;
  return s;
}

/** Whether element `e` of the data is matched by query element `q` ('*' or an absent key matches any). */
function matchesElem(e: PathElem, q: PathElem): boolean {
  if (q.name !== e.name) return false;
  const qk = q.key;
  if (qk === undefined || qk === null) return true;
  for (const k in qk) {
    const v = qk[k];
    if (v !== '*' && e.key?.[k] !== v) return false;
  }
  return true;
}

/** A change made inside a transaction: the node that was replaced or removed, to put back. */
interface Undo {
  parent: DataNode;
  text: string;
  before: DataNode | undefined;
  leafBefore?: StoredLeaf | undefined;
  leafOnly?: boolean;
}

export class ConfigStore {
  private readonly root = new DataNode({ name: '' });
  private log: Undo[] | undefined;
  private changed: (readonly PathElem[])[] | undefined;

  /** The leaf at `elems`, if any. */
  get(elems: readonly PathElem[]): StoredLeaf | undefined {
    return this.find(elems)?.leaf;
  }

  /** Whether anything (a leaf, or a node with leaves under it) is stored at `elems`. */
  has(elems: readonly PathElem[]): boolean {
    const n = this.find(elems);
    return n !== undefined && (n.leaf !== undefined || hasLeaves(n));
  }

  /** Stores a leaf (creating the nodes on its path). */
  put(elems: readonly PathElem[], leaf: StoredLeaf): void {
    let node = this.root;
    for (const e of elems) {
      const text = elemText(e);
      let kid = node.kids?.get(text);
      if (kid === undefined) {
        kid = new DataNode(e);
        node.kids ??= new Map();
        node.kids.set(text, kid);
        this.log?.push({ parent: node, text, before: undefined });
      }
      node = kid;
    }
    if (this.log !== undefined) this.log.push({ parent: node, text: '', before: undefined, leafBefore: node.leaf, leafOnly: true });
    node.leaf = leaf;
    this.changed?.push(elems);
  }

  /** Removes what is stored at and under `elems` (concrete keys). */
  remove(elems: readonly PathElem[]): void {
    if (elems.length === 0) return;
    const parent = this.find(elems.slice(0, -1));
    const text = elemText(elems[elems.length - 1] as PathElem);
    const before = parent?.kids?.get(text);
    if (parent === undefined || before === undefined) return;
    parent.kids?.delete(text);
    this.log?.push({ parent, text, before });
    this.changed?.push(elems);
  }

  /**
   * Runs `fn` as one transaction: what it changed is undone if it (or `check`, given the paths
   * changed) throws.
   */
  transaction<T>(fn: () => void, check: (changed: readonly (readonly PathElem[])[]) => T): T {
    if (this.log !== undefined) throw new Error('nested transaction');
    this.log = [];
    this.changed = [];
    try {
      fn();
      const changed = this.changed;
      this.changed = undefined;
      return check(changed);
    } catch (err) {
      const log = this.log;
      this.log = undefined;
      for (let i = log.length - 1; i >= 0; i--) {
        const u = log[i] as Undo;
        if (u.leafOnly === true) u.parent.leaf = u.leafBefore;
        else if (u.before === undefined) u.parent.kids?.delete(u.text);
        else (u.parent.kids ??= new Map()).set(u.text, u.before);
      }
      throw err;
    } finally {
      this.log = undefined;
      this.changed = undefined;
    }
  }

  /** The concrete entries (as paths) matching `query` (wildcard keys allowed), without walking under them. */
  nodes(query: readonly PathElem[]): PathElem[][] {
    const out: PathElem[][] = [];
    const step = (node: DataNode, i: number, path: PathElem[]): void => {
      if (i === query.length) {
        out.push([...path]);
        return;
      }
      eachChild(node, query[i] as PathElem, (kid) => {
        path.push(kid.elem);
        step(kid, i + 1, path);
        path.pop();
      });
    };
    step(this.root, 0, []);
    return out;
  }

  /**
   * Every leaf at or under a node matching `query`. `alias` lets a query element stand for
   * another child too (state -> config: applied state is derived from configuration); a
   * query element may also be skipped over a node of name `through` (a list key leaf stands
   * for config/<key>).
   */
  walk(query: readonly PathElem[], alias: Readonly<Record<string, string>> = {}, through?: string): Leaf[] {
    const out: Leaf[] = [];
    const path: PathElem[] = [];
    const all = (node: DataNode): void => {
      if (node.leaf !== undefined) out.push({ elems: [...path], value: node.leaf.value, node: node.leaf.node });
      if (node.kids === undefined) return;
      for (const kid of node.kids.values()) {
        path.push(kid.elem);
        all(kid);
        path.pop();
      }
    };
    const step = (node: DataNode, i: number): void => {
      if (i === query.length) return all(node);
      const q = query[i] as PathElem;
      eachChild(node, q, (kid) => {
        path.push(kid.elem);
        step(kid, i + 1);
        path.pop();
      });
      const other = alias[q.name];
      const kid = other === undefined ? undefined : node.kids?.get(other);
      if (kid !== undefined) {
        path.push(kid.elem);
        step(kid, i + 1);
        path.pop();
      }
      if (through !== undefined && i === query.length - 1) {
        const via = node.kids?.get(through);
        const leaf = via?.kids?.get(q.name);
        if (via !== undefined && leaf?.leaf !== undefined) out.push({ elems: [...path, via.elem, leaf.elem], value: leaf.leaf.value, node: leaf.leaf.node });
      }
    };
    step(this.root, 0);
    return out;
  }

  private find(elems: readonly PathElem[]): DataNode | undefined {
    let node: DataNode | undefined = this.root;
    for (const e of elems) {
      node = node.kids?.get(elemText(e));
      if (node === undefined) return undefined;
    }
    return node;
  }
}

/**
 * Calls `fn` with each child of `node` matching query element `q`: by name where it has no
 * keys (a container or leaf), at once where every key is given, else by scanning the list's
 * entries (the caller gives a list's absent keys as '*').
 */
function eachChild(node: DataNode, q: PathElem, fn: (kid: DataNode) => void): void {
  const kids = node.kids;
  if (kids === undefined) return;
  const qk = q.key;
  let wild = false;
  if (qk !== undefined && qk !== null) for (const k in qk) if (qk[k] === '*') wild = true;
  if (!wild) {
    const kid = kids.get(elemText(q));
    if (kid !== undefined) fn(kid);
    return;
  }
  for (const kid of kids.values()) if (matchesElem(kid.elem, q)) fn(kid);
}

function hasLeaves(n: DataNode): boolean {
  if (n.leaf !== undefined) return true;
  for (const k of n.kids?.values() ?? []) if (hasLeaves(k)) return true;
  return false;
}
