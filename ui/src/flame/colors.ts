// Node colours: a single flame graph colours each package alike (so a
// library's frames read as one band); a diff colours by relative change
// of each side's share of its total: red grew, green shrank.

const PALETTE = [
  [227, 110, 70], [240, 160, 75], [225, 185, 80], [200, 120, 90], [235, 135, 115], [215, 95, 95],
  [190, 150, 70], [245, 185, 120], [210, 140, 60], [230, 120, 140], [200, 165, 110], [220, 100, 60],
];

/** The package part of a function name: Go's "a/b/pkg.(*T).M" → "a/b/pkg",
 * "pkg.F" → "pkg", Java's "java/util/Map.get" → "java/util/Map". */
export function packageOf(name: string): string {
  const sp = name.indexOf(" ");
  const n = sp > 0 ? name.slice(0, sp) : name;
  const slash = n.lastIndexOf("/");
  const dot = n.indexOf(".", slash + 1);
  return dot > 0 ? n.slice(0, dot) : n;
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

const cache = new Map<string, string>();

/** The colour of a function in a single flame graph. */
export function nodeColor(name: string): string {
  let c = cache.get(name);
  if (c === undefined) {
    const [r, g, b] = PALETTE[hash(packageOf(name)) % PALETTE.length];
    c = `rgb(${r},${g},${b})`;
    if (cache.size > 50000) cache.clear();
    cache.set(name, c);
  }
  return c;
}

export const OTHER_COLOR = "rgb(190,190,190)";
export const DIMMED_COLOR = "rgb(228,228,228)";
export const ROOT_COLOR = "rgb(160,160,170)";

/** Relative change of a node between two sides in percent: its share of
 * the right total against its share of the left total. +Infinity when it
 * is new on the right, -100 when it is gone. */
export function relativeChange(lTotal: number, rTotal: number, lTicks: number, rTicks: number): number {
  const lp = lTicks > 0 ? lTotal / lTicks : 0;
  const rp = rTicks > 0 ? rTotal / rTicks : 0;
  if (lp === 0) return rp === 0 ? 0 : Infinity;
  return ((rp - lp) / lp) * 100;
}

const NEUTRAL = [215, 215, 215];
const RED = [226, 52, 46];
const GREEN = [46, 168, 74];

/** The colour of a relative change: grey at 0, full red at +100% or more
 * (and new), full green at -100% (gone). */
export function diffColor(change: number): string {
  const t = Math.min(Math.abs(change), 100) / 100;
  const to = change > 0 ? RED : GREEN;
  // a square root makes small changes visible without saturating large ones
  const k = Math.sqrt(t);
  const ch = (i: number) => Math.round(NEUTRAL[i] + (to[i] - NEUTRAL[i]) * k);
  return `rgb(${ch(0)},${ch(1)},${ch(2)})`;
}

/** The stops of the diff legend, in percent. */
export const DIFF_LEGEND = [-100, -50, -20, -5, 0, 5, 20, 50, 100];
