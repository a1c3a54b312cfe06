// Flame graph layout from the `levels` encoding the API answers
// (SelectMergeStacktraces' FlameGraph, Diff's FlameGraphDiff, flamebearer
// JSON): one array per depth, 4 values per node [x delta, total, self,
// name index] — or 7 for a diff [left x delta, left total, left self,
// right x delta, right total, right self, name index] — where each x is
// the distance from the end of the previous node on the same level.
// decodeLayout turns that into absolute positions, parents and per-node
// arrays the renderer and the tables read without allocating.

/** A flame graph as the API sends it, with int64 strings made numbers. */
export interface FlameGraphData {
  names: string[];
  levels: number[][];
  total: number;
  maxSelf: number;
  /** Diff only: each side's total. */
  leftTicks?: number;
  rightTicks?: number;
}

export interface LevelLayout {
  n: number;
  /** Absolute start in ticks (diff: left start + right start). */
  x: Float64Array;
  /** Width in ticks (diff: left total + right total). */
  total: Float64Array;
  self: Float64Array;
  name: Int32Array;
  /** Index of the parent in the level above; -1 on level 0. */
  parent: Int32Array;
  /** Diff only: each side's values. */
  lTotal?: Float64Array;
  lSelf?: Float64Array;
  rTotal?: Float64Array;
  rSelf?: Float64Array;
}

export interface Layout {
  names: string[];
  diff: boolean;
  /** Ticks across the whole width (diff: left + right). */
  total: number;
  leftTicks: number;
  rightTicks: number;
  maxSelf: number;
  levels: LevelLayout[];
  nodeCount: number;
  /** Index of "other" (nodes the server folded) in names, or -1. */
  otherName: number;
}

/** A node's address: its level and index within the level. */
export interface NodeRef {
  level: number;
  index: number;
}

/** Decodes the x-delta encoding into absolute positions (4 values per
 * node, or 7 when the data is a diff) and links each node to its parent. */
export function decodeLayout(fg: FlameGraphData, diff = fg.leftTicks !== undefined): Layout {
  const step = diff ? 7 : 4;
  const levels: LevelLayout[] = [];
  let count = 0;
  for (const raw of fg.levels) {
    const n = Math.floor(raw.length / step);
    const lv = newLevel(n, diff);
    if (diff) decodeDiffLevel(raw, lv);
    else decodeSingleLevel(raw, lv);
    levels.push(lv);
    count += n;
  }
  for (let l = 1; l < levels.length; l++) linkParents(levels[l - 1], levels[l]);
  const leftTicks = diff ? (fg.leftTicks ?? 0) : fg.total;
  const rightTicks = diff ? (fg.rightTicks ?? 0) : 0;
  const rootTotal = levels.length > 0 && levels[0].n > 0 ? levels[0].total[0] : 0;
  return {
    names: fg.names,
    diff,
    total: diff ? Math.max(leftTicks + rightTicks, rootTotal) : Math.max(fg.total, rootTotal),
    leftTicks,
    rightTicks,
    maxSelf: fg.maxSelf,
    levels,
    nodeCount: count,
    otherName: fg.names.indexOf("other"),
  };
}

function newLevel(n: number, diff: boolean): LevelLayout {
  const lv: LevelLayout = {
    n,
    x: new Float64Array(n),
    total: new Float64Array(n),
    self: new Float64Array(n),
    name: new Int32Array(n),
    parent: new Int32Array(n).fill(-1),
  };
  if (diff) {
    lv.lTotal = new Float64Array(n);
    lv.lSelf = new Float64Array(n);
    lv.rTotal = new Float64Array(n);
    lv.rSelf = new Float64Array(n);
  }
  return lv;
}

function decodeSingleLevel(raw: number[], lv: LevelLayout): void {
  let end = 0;
  for (let i = 0; i < lv.n; i++) {
    const o = i * 4;
    const x = end + raw[o];
    lv.x[i] = x;
    lv.total[i] = raw[o + 1];
    lv.self[i] = raw[o + 2];
    lv.name[i] = raw[o + 3];
    end = x + raw[o + 1];
  }
}

function decodeDiffLevel(raw: number[], lv: LevelLayout): void {
  let lend = 0;
  let rend = 0;
  for (let i = 0; i < lv.n; i++) {
    const o = i * 7;
    const lx = lend + raw[o];
    const rx = rend + raw[o + 3];
    lv.lTotal![i] = raw[o + 1];
    lv.lSelf![i] = raw[o + 2];
    lv.rTotal![i] = raw[o + 4];
    lv.rSelf![i] = raw[o + 5];
    lv.name[i] = raw[o + 6];
    lv.x[i] = lx + rx;
    lv.total[i] = raw[o + 1] + raw[o + 4];
    lv.self[i] = raw[o + 2] + raw[o + 5];
    lend = lx + raw[o + 1];
    rend = rx + raw[o + 4];
  }
}

/** Children lie inside their parent's span, both levels left to right:
 * one pass with two cursors finds every child's parent. */
function linkParents(up: LevelLayout, down: LevelLayout): void {
  let p = 0;
  for (let c = 0; c < down.n; c++) {
    const x = down.x[c];
    while (p < up.n - 1 && x >= up.x[p] + up.total[p]) p++;
    down.parent[c] = p < up.n ? p : -1;
  }
}

/** The node's ancestors, root first, then the node itself. */
export function pathTo(layout: Layout, ref: NodeRef): NodeRef[] {
  const out: NodeRef[] = [];
  let { level, index } = ref;
  while (level >= 0 && index >= 0) {
    out.push({ level, index });
    index = layout.levels[level].parent[index];
    level--;
  }
  return out.reverse();
}

/** The node under (x in ticks, level), or null. */
export function nodeAt(layout: Layout, level: number, x: number): NodeRef | null {
  const lv = layout.levels[level];
  if (!lv) return null;
  let lo = 0;
  let hi = lv.n - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (lv.x[mid] > x) hi = mid - 1;
    else if (lv.x[mid] + lv.total[mid] <= x) lo = mid + 1;
    else return { level, index: mid };
  }
  return null;
}

/** Makes the API's proto3 JSON (int64 as strings) a FlameGraphData. */
export function fromProtoJSON(fg: {
  names?: string[];
  levels?: { values?: (string | number)[] }[];
  total?: string | number;
  maxSelf?: string | number;
  leftTicks?: string | number;
  rightTicks?: string | number;
}, diff = false): FlameGraphData {
  const out: FlameGraphData = {
    names: fg.names ?? [],
    levels: (fg.levels ?? []).map((l) => (l.values ?? []).map(Number)),
    total: Number(fg.total ?? 0),
    maxSelf: Number(fg.maxSelf ?? 0),
  };
  if (diff) {
    out.leftTicks = Number(fg.leftTicks ?? 0);
    out.rightTicks = Number(fg.rightTicks ?? 0);
  }
  return out;
}
