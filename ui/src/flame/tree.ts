// What the tables and the sandwich view derive from a flame graph: per
// function self and total (recursion counted once), the callers and
// callees of one function, and a call tree turned back into the levels
// encoding so every view draws with the same renderer.
import { relativeChange } from "./colors";
import type { FlameGraphData, Layout, NodeRef } from "./layout";

export interface FnStat {
  name: string;
  self: number;
  total: number;
  /** Diff only. */
  lSelf: number;
  lTotal: number;
  rSelf: number;
  rTotal: number;
}

/** Whether the node has an ancestor with the same name (a recursive
 * call whose total its outermost call already counts). */
export function hasSameNameAncestor(layout: Layout, ref: NodeRef): boolean {
  const name = layout.levels[ref.level].name[ref.index];
  let index = layout.levels[ref.level].parent[ref.index];
  for (let l = ref.level - 1; l >= 1 && index >= 0; l--) {
    if (layout.levels[l].name[index] === name) return true;
    index = layout.levels[l].parent[index];
  }
  return false;
}

/** Self and total per function name over every node but the root,
 * largest self first. A function's total counts only its outermost calls. */
export function functionStats(layout: Layout): FnStat[] {
  const byName = new Map<number, FnStat>();
  for (let l = 1; l < layout.levels.length; l++) {
    const lv = layout.levels[l];
    for (let i = 0; i < lv.n; i++) {
      const id = lv.name[i];
      let s = byName.get(id);
      if (!s) {
        s = { name: layout.names[id], self: 0, total: 0, lSelf: 0, lTotal: 0, rSelf: 0, rTotal: 0 };
        byName.set(id, s);
      }
      s.self += lv.self[i];
      if (lv.lSelf) {
        s.lSelf += lv.lSelf[i];
        s.rSelf += lv.rSelf![i];
      }
      if (hasSameNameAncestor(layout, { level: l, index: i })) continue;
      s.total += lv.total[i];
      if (lv.lTotal) {
        s.lTotal += lv.lTotal[i];
        s.rTotal += lv.rTotal![i];
      }
    }
  }
  return [...byName.values()].sort((a, b) => b.self - a.self || b.total - a.total || cmp(a.name, b.name));
}

/** A row of the diff's table: a function's self on each side, and the
 * change of its self and of its total between the sides. Each side's
 * figures are taken as shares of that side's total (the two totals can
 * differ, e.g. a longer range on one side), in percent; a change is the
 * relative change of the share, as the diff colours it. */
export interface DiffRow {
  name: string;
  lSelf: number;
  rSelf: number;
  lSelfShare: number;
  rSelfShare: number;
  lTotalShare: number;
  rTotalShare: number;
  /** Percent; +Infinity when the function is new on the right. */
  selfChange: number;
  totalChange: number;
}

/** The diff table's rows, the largest self share on either side first. */
export function diffRows(stats: FnStat[], leftTicks: number, rightTicks: number): DiffRow[] {
  const share = (v: number, ticks: number) => (ticks > 0 ? (v / ticks) * 100 : 0);
  const larger = (r: DiffRow) => Math.max(r.lSelfShare, r.rSelfShare);
  const rows = stats.map((s) => ({
    name: s.name,
    lSelf: s.lSelf,
    rSelf: s.rSelf,
    lSelfShare: share(s.lSelf, leftTicks),
    rSelfShare: share(s.rSelf, rightTicks),
    lTotalShare: share(s.lTotal, leftTicks),
    rTotalShare: share(s.rTotal, rightTicks),
    selfChange: relativeChange(s.lSelf, s.rSelf, leftTicks, rightTicks),
    totalChange: relativeChange(s.lTotal, s.rTotal, leftTicks, rightTicks),
  }));
  return rows.sort((a, b) => larger(b) - larger(a) || cmp(a.name, b.name));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A call tree node: children by name. */
export interface TreeNode {
  name: string;
  self: number;
  total: number;
  children: Map<string, TreeNode>;
}

export function newTree(name: string): TreeNode {
  return { name, self: 0, total: 0, children: new Map() };
}

/** Adds a root-first stack with its value to the tree. */
export function addStack(root: TreeNode, frames: string[], value: number): void {
  let n = root;
  n.total += value;
  for (const f of frames) {
    let c = n.children.get(f);
    if (!c) {
      c = newTree(f);
      n.children.set(f, c);
    }
    c.total += value;
    n = c;
  }
  n.self += value;
}

/** The levels encoding of a tree (children sorted by name, as the server
 * sorts them), with the root as level 0. */
export function treeToFlamegraph(root: TreeNode): FlameGraphData {
  const names: string[] = [];
  const ids = new Map<string, number>();
  const levels: number[][] = [];
  const ends: number[] = [];
  let maxSelf = 0;
  const stack: { n: TreeNode; depth: number; x: number }[] = [{ n: root, depth: 0, x: 0 }];
  while (stack.length > 0) {
    const { n, depth, x } = stack.pop()!;
    let id = ids.get(n.name);
    if (id === undefined) {
      id = names.length;
      names.push(n.name);
      ids.set(n.name, id);
    }
    if (!levels[depth]) {
      levels[depth] = [];
      ends[depth] = 0;
    }
    levels[depth].push(x - ends[depth], n.total, n.self, id);
    ends[depth] = x + n.total;
    if (depth > 0) maxSelf = Math.max(maxSelf, n.self);
    const kids = [...n.children.values()].sort((a, b) => cmp(a.name, b.name));
    // children start at the parent's left edge, self is what is left on the right
    const xs: number[] = [];
    let cx = x;
    for (const k of kids) {
      xs.push(cx);
      cx += k.total;
    }
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ n: kids[i], depth: depth + 1, x: xs[i] });
  }
  return { names, levels, total: root.total, maxSelf };
}

/** The subtree below a node as a TreeNode (copied). */
function addSubtree(layout: Layout, ref: NodeRef, into: TreeNode): void {
  const lv = layout.levels[ref.level];
  into.total += lv.total[ref.index];
  into.self += lv.self[ref.index];
  const below = layout.levels[ref.level + 1];
  if (!below) return;
  // children are contiguous in the level below, inside the node's span
  const x0 = lv.x[ref.index];
  const x1 = x0 + lv.total[ref.index];
  let c = lowerBound(below.x, x0, below.n);
  for (; c < below.n && below.x[c] < x1; c++) {
    if (below.parent[c] !== ref.index) continue;
    const name = layout.names[below.name[c]];
    let child = into.children.get(name);
    if (!child) {
      child = newTree(name);
      into.children.set(name, child);
    }
    addSubtree(layout, { level: ref.level + 1, index: c }, child);
  }
}

function lowerBound(a: Float64Array, v: number, n: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The outermost calls of a function: nodes with its name and no
 * ancestor of that name. */
function outermostCalls(layout: Layout, fn: string): NodeRef[] {
  const id = layout.names.indexOf(fn);
  const out: NodeRef[] = [];
  if (id < 0) return out;
  for (let l = 1; l < layout.levels.length; l++) {
    const lv = layout.levels[l];
    for (let i = 0; i < lv.n; i++)
      if (lv.name[i] === id && !hasSameNameAncestor(layout, { level: l, index: i })) out.push({ level: l, index: i });
  }
  return out;
}

/** The sandwich view of fn: what it calls (its outermost calls' subtrees
 * merged, fn at the root) and who calls it (each outermost call's path
 * to the root, reversed: fn at the root, its callers below, weighted by
 * the call's total). */
export function sandwich(layout: Layout, fn: string): { callees: FlameGraphData; callers: FlameGraphData } {
  const callees = newTree(fn);
  const callers = newTree(fn);
  for (const ref of outermostCalls(layout, fn)) {
    addSubtree(layout, ref, callees);
    const value = layout.levels[ref.level].total[ref.index];
    const frames: string[] = [];
    let index = layout.levels[ref.level].parent[ref.index];
    for (let l = ref.level - 1; l >= 1 && index >= 0; l--) {
      frames.push(layout.names[layout.levels[l].name[index]]);
      index = layout.levels[l].parent[index];
    }
    addStack(callers, frames, value);
  }
  return { callees: treeToFlamegraph(callees), callers: treeToFlamegraph(callers) };
}
