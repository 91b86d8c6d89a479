// The gNMI target's configuration datastore: a tree of data nodes (one per path element,
// list entries by their keys), so that a Get, a Subscribe sample or a Set touches only the
// subtrees it names, whatever else the device holds. A leaf's path is not stored with it: it
// is the path of its node, built while walking. Changes inside `transaction` are logged and
// undone when it throws (a SetRequest is applied whole or not at all, gNMI 3.4.3); the paths
// a transaction changed are handed to its caller, which checks only what they affect.
// Memory per rule is kept small (a device holds 100,000 of them): a node is its value and its
// children, a few children are kept in an array (a map only for many, as a list's entries),
// and the elements of unkeyed names are shared.

import type { PathElem } from '../../proto/gnmi.js';
import type { Scalar, SchemaNode } from './schema.js';

export interface StoredLeaf {
  value: Scalar;
  node: SchemaNode;
}

export interface Leaf extends StoredLeaf {
  elems: PathElem[];
}

/** Children kept in an array up to this many; beyond, in a map by element text. */
const ARRAY_KIDS = 8;

class DataNode {
  value: Scalar | undefined = undefined;
  /** The leaf's schema node; undefined where no value is stored here. */
  node: SchemaNode | undefined = undefined;
  kids: DataNode[] | Map<string, DataNode> | undefined = undefined;
  constructor(
    readonly elem: PathElem,
    readonly text: string,
  ) {}

  kid(text: string): DataNode | undefined {
    const kids = this.kids;
    if (kids === undefined) return undefined;
    if (Array.isArray(kids)) {
      for (const k of kids) if (k.text === text) return k;
      return undefined;
    }
    return kids.get(text);
  }

  /** Sets (or with `kid` undefined, removes) the child of this text. */
  setKid(text: string, kid: DataNode | undefined): void {
    let kids = this.kids;
    if (Array.isArray(kids)) {
      const i = kids.findIndex((k) => k.text === text);
      if (kid === undefined) {
        if (i >= 0) kids.splice(i, 1);
        return;
      }
      if (i >= 0) kids[i] = kid;
      else if (kids.length < ARRAY_KIDS) kids.push(kid);
      else {
        this.kids = kids = new Map(kids.map((k) => [k.text, k]));
        kids.set(text, kid);
      }
      return;
    }
    if (kid === undefined) kids?.delete(text);
    else if (kids === undefined) this.kids = [kid];
    else kids.set(text, kid);
  }

  each(fn: (kid: DataNode) => void): void {
    const kids = this.kids;
    if (kids === undefined) return;
    if (Array.isArray(kids)) for (const k of kids) fn(k);
    else for (const k of kids.values()) fn(k);
  }
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

/** Elements without keys, one object per name (stored elements are never changed). */
const unkeyed = new Map<string, PathElem>();
function shared(e: PathElem): PathElem {
  if (e.key !== undefined && e.key !== null && Object.keys(e.key).length > 0) return e;
  let s = unkeyed.get(e.name);
  if (s === undefined) unkeyed.set(e.name, (s = { name: e.name }));
  return s;
}

function hasWildcard(q: PathElem): boolean {
  const qk = q.key;
  if (qk === undefined || qk === null) return false;
  for (const k in qk) if (qk[k] === '*') return true;
  return false;
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

/** Whether two concrete elements name the same child: the same name and key values. */
export function sameElem(a: PathElem, b: PathElem): boolean {
  if (a === b) return true;
  if (a.name !== b.name) return false;
  const ak = a.key;
  const bk = b.key;
  const aEmpty = ak === undefined || ak === null;
  const bEmpty = bk === undefined || bk === null;
  if (aEmpty || bEmpty) return elemText(a) === elemText(b);
  let n = 0;
  for (const k in ak) {
    if (ak[k] !== bk[k]) return false;
    n++;
  }
  for (const _ in bk) n--;
  return n === 0;
}

/** A change made inside a transaction, to undo: a child set or removed, or a value overwritten. */
type Undo =
  | { parent: DataNode; text: string; before: DataNode | undefined }
  | { at: DataNode; value: Scalar | undefined; node: SchemaNode | undefined };

export class ConfigStore {
  private readonly root = new DataNode({ name: '' }, '');
  private log: Undo[] | undefined;
  private changed: (readonly PathElem[])[] | undefined;
  /**
   * The path of the last put or lookup and the nodes found along it: a Set's leaves, and the
   * entries of its rules, share their leading elements (equal names and keys, often the same
   * objects), found again without looking them up. A removal keeps it to the removed node's
   * parent; an undone transaction drops it.
   */
  private cursor: { elems: readonly PathElem[]; nodes: DataNode[] } | undefined;
  /** The leading concrete elements of the last walk's query and their nodes; any removal drops it. */
  private walked: { elems: readonly PathElem[]; nodes: DataNode[] } | undefined;

  /** The leaf at `elems`, if any. */
  get(elems: readonly PathElem[]): StoredLeaf | undefined {
    const n = this.find(elems);
    return n?.node === undefined ? undefined : (n as StoredLeaf);
  }

  /**
   * Stores a leaf (creating the nodes on its path). Inside a transaction, the first node it
   * creates is logged and nothing under it: undoing that creation drops the rest with it.
   */
  put(elems: readonly PathElem[], leaf: StoredLeaf): void {
    let node = this.root;
    let c = this.cursor;
    let i = 0;
    if (c === undefined) this.cursor = c = { elems, nodes: [] };
    else {
      const common = Math.min(elems.length - 1, c.nodes.length);
      for (; i < common && sameElem(elems[i] as PathElem, c.elems[i] as PathElem); i++)
        node = c.nodes[i] as DataNode;
      c.nodes.length = i;
      c.elems = elems;
    }
    let created = false;
    for (; i < elems.length; i++) {
      const e = elems[i] as PathElem;
      const text = elemText(e);
      let kid = created ? undefined : node.kid(text);
      if (kid === undefined) {
        kid = new DataNode(shared(e), text);
        node.setKid(text, kid);
        if (!created) this.log?.push({ parent: node, text, before: undefined });
        created = true;
      }
      node = kid;
      c.nodes.push(node);
    }
    if (!created) this.log?.push({ at: node, value: node.value, node: node.node });
    node.value = leaf.value;
    node.node = leaf.node;
    this.changed?.push(elems);
  }

  /** Removes what is stored at and under `elems` (concrete keys). */
  remove(elems: readonly PathElem[]): void {
    if (elems.length === 0) return;
    const parent = this.find(elems.slice(0, -1));
    const text = elemText(elems[elems.length - 1] as PathElem);
    const before = parent?.kid(text);
    if (parent === undefined || before === undefined) return;
    // The cursor holds the parent's path (found above), which stays in the tree.
    this.walked = undefined;
    parent.setKid(text, undefined);
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
      this.cursor = undefined;
      this.walked = undefined;
      for (let i = log.length - 1; i >= 0; i--) {
        const u = log[i] as Undo;
        if ('at' in u) {
          u.at.value = u.value;
          u.at.node = u.node;
        } else u.parent.setKid(u.text, u.before);
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
    const path: PathElem[] = [];
    const step = (node: DataNode, i: number): void => {
      if (i === query.length) {
        out.push([...path]);
        return;
      }
      eachChild(node, query[i] as PathElem, (kid) => {
        path.push(kid.elem);
        step(kid, i + 1);
        path.pop();
      });
    };
    step(this.root, 0);
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
    // The leading elements shared with the previous walk's query (the same objects: a read
    // naming many rules joins one resolved prefix to each) are not looked up again; the
    // concrete ones after them (no wildcard, no alias) are looked up once and remembered.
    let from = this.root;
    let at = 0;
    const c = this.walked;
    if (c !== undefined)
      for (
        ;
        at < c.elems.length &&
        at < query.length - 1 &&
        query[at] === c.elems[at] &&
        alias[(query[at] as PathElem).name] === undefined;
        at++
      ) {
        from = c.nodes[at] as DataNode;
        path.push(from.elem);
      }
    if (c === undefined || at < c.elems.length || at === 0) {
      const elems: PathElem[] = query.slice(0, at);
      const nodes: DataNode[] = c === undefined ? [] : c.nodes.slice(0, at);
      for (; at < query.length - 1; at++) {
        const q = query[at] as PathElem;
        if (alias[q.name] !== undefined || hasWildcard(q)) break;
        const n = from.kid(elemText(q));
        if (n === undefined) {
          this.walked = { elems, nodes };
          return out;
        }
        elems.push(q);
        nodes.push(n);
        path.push(n.elem);
        from = n;
      }
      this.walked = { elems, nodes };
    }
    const all = (node: DataNode): void => {
      if (node.node !== undefined)
        out.push({ elems: [...path], value: node.value as Scalar, node: node.node });
      node.each((kid) => {
        path.push(kid.elem);
        all(kid);
        path.pop();
      });
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
      const kid = other === undefined ? undefined : node.kid(other);
      if (kid !== undefined) {
        path.push(kid.elem);
        step(kid, i + 1);
        path.pop();
      }
      if (through !== undefined && i === query.length - 1) {
        const via = node.kid(through);
        const leaf = via?.kid(q.name);
        if (via !== undefined && leaf?.node !== undefined)
          out.push({ elems: [...path, via.elem, leaf.elem], value: leaf.value as Scalar, node: leaf.node });
      }
    };
    step(from, at);
    return out;
  }

  /**
   * Calls `fn` with each leaf at or under `elems` (concrete keys), named by the element names
   * below `elems` joined with '/' (keys left out); its leading elements are looked up as a
   * walk's are (`walked`). Returns whether `elems` is stored.
   */
  leavesBelow(elems: readonly PathElem[], fn: (rel: string, value: Scalar) => void): boolean {
    const node = this.find(elems);
    if (node === undefined) return false;
    const all = (n: DataNode, rel: string): void => {
      if (n.node !== undefined) fn(rel, n.value as Scalar);
      n.each((kid) => all(kid, rel === '' ? kid.elem.name : `${rel}/${kid.elem.name}`));
    };
    all(node, '');
    return true;
  }

  /**
   * The node at `elems`: its leading elements equal to the cursor's (by name and keys) are
   * not looked up again, and the cursor follows what is found (a Set's removal, key checks,
   * writes and its commit's reads of one entry share its path).
   */
  private find(elems: readonly PathElem[]): DataNode | undefined {
    let node = this.root;
    let c = this.cursor;
    let i = 0;
    if (c === undefined) this.cursor = c = { elems, nodes: [] };
    else {
      const common = Math.min(elems.length, c.nodes.length);
      for (; i < common && sameElem(elems[i] as PathElem, c.elems[i] as PathElem); i++)
        node = c.nodes[i] as DataNode;
      c.nodes.length = i;
      c.elems = elems;
    }
    for (; i < elems.length; i++) {
      const kid = node.kid(elemText(elems[i] as PathElem));
      if (kid === undefined) return undefined;
      c.nodes.push((node = kid));
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
  if (node.kids === undefined) return;
  const qk = q.key;
  let wild = false;
  if (qk !== undefined && qk !== null) for (const k in qk) if (qk[k] === '*') wild = true;
  if (!wild) {
    const kid = node.kid(elemText(q));
    if (kid !== undefined) fn(kid);
    return;
  }
  node.each((kid) => {
    if (matchesElem(kid.elem, q)) fn(kid);
  });
}
