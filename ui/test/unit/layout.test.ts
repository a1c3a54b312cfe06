import { describe, expect, it } from "vitest";
import { decodeLayout, fromProtoJSON, nodeAt, pathTo } from "../../src/flame/layout";
import { DIFF_LEGEND, OTHER_COLOR, diffColor, relativeChange } from "../../src/flame/colors";
import { functionStats } from "../../src/flame/tree";

// total=10: main (10) → {a (6, self 1) → c (5, self 5), b (4, self 4)};
// c starts 0 after a's start, b right after a.
const single = {
  names: ["total", "main", "a", "b", "c"],
  levels: [
    [0, 10, 0, 0],
    [0, 10, 0, 1],
    [0, 6, 1, 2, 0, 4, 4, 3],
    [0, 5, 5, 4],
  ],
  total: 10,
  maxSelf: 5,
};

describe("decodeLayout: x-delta decoding", () => {
  it("turns deltas into absolute offsets and links parents", () => {
    const L = decodeLayout(single);
    expect(L.diff).toBe(false);
    expect(L.total).toBe(10);
    expect(L.nodeCount).toBe(5);
    expect([...L.levels[2].x]).toEqual([0, 6]);
    expect([...L.levels[2].total]).toEqual([6, 4]);
    expect([...L.levels[3].parent]).toEqual([0]);
    expect([...L.levels[2].parent]).toEqual([0, 0]);
  });

  it("adds each delta to the end of the previous node on the level", () => {
    // two nodes with gaps: the first starts 2 in, the second 3 after the first ends
    const L = decodeLayout({ names: ["total", "x", "y"], levels: [[0, 20, 0, 0], [2, 5, 5, 1, 3, 4, 4, 2]], total: 20, maxSelf: 5 });
    expect([...L.levels[1].x]).toEqual([2, 10]);
    expect(nodeAt(L, 1, 9.5)).toBeNull();
    expect(nodeAt(L, 1, 10)).toEqual({ level: 1, index: 1 });
    expect(nodeAt(L, 1, 6.9)).toEqual({ level: 1, index: 0 });
  });

  it("finds a node's path to the root", () => {
    const L = decodeLayout(single);
    expect(pathTo(L, { level: 3, index: 0 }).map((r) => L.names[L.levels[r.level].name[r.index]])).toEqual(["total", "main", "a", "c"]);
  });

  it("assigns children to the right parent among many siblings", () => {
    // level 1: p0 [0,3) p1 [3,7) p2 [7,10); level 2: children at 0, 3, 4, 8
    const L = decodeLayout({
      names: ["total", "p", "q"],
      levels: [[0, 10, 0, 0], [0, 3, 2, 1, 0, 4, 1, 1, 0, 3, 2, 1], [0, 1, 1, 2, 2, 1, 1, 2, 0, 2, 2, 2, 2, 1, 1, 2]],
      total: 10,
      maxSelf: 2,
    });
    expect([...L.levels[2].x]).toEqual([0, 3, 4, 8]);
    expect([...L.levels[2].parent]).toEqual([0, 1, 1, 2]);
  });

  it("reads the API's proto3 JSON with int64 strings", () => {
    const fg = fromProtoJSON({ names: ["total", "f"], levels: [{ values: ["0", "7", "0", "0"] }, { values: ["0", "7", "7", "1"] }], total: "7", maxSelf: "7" });
    expect(fg.levels).toEqual([[0, 7, 0, 0], [0, 7, 7, 1]]);
    expect(fg.total).toBe(7);
  });
});

describe("other nodes", () => {
  it("marks the folded node and counts it as its own row", () => {
    const L = decodeLayout({
      names: ["total", "big", "other"],
      levels: [[0, 100, 0, 0], [0, 90, 90, 1, 0, 10, 10, 2]],
      total: 100,
      maxSelf: 90,
    });
    expect(L.otherName).toBe(2);
    const stats = functionStats(L);
    expect(stats.map((s) => [s.name, s.self, s.total])).toEqual([["big", 90, 90], ["other", 10, 10]]);
    expect(OTHER_COLOR).toMatch(/^rgb/);
  });
});

describe("diff layout and colouring", () => {
  // left: total 10 = f 10; right: total 30 = f 10 + g 20
  const diff = {
    names: ["total", "f", "g"],
    levels: [
      [0, 10, 0, 0, 30, 0, 0],
      [0, 10, 10, 0, 10, 10, 1, 0, 0, 0, 0, 20, 20, 2],
    ],
    total: 40,
    maxSelf: 20,
    leftTicks: 10,
    rightTicks: 30,
  };

  it("decodes each side's deltas and places nodes by both", () => {
    const L = decodeLayout(diff);
    expect(L.diff).toBe(true);
    expect(L.total).toBe(40);
    const lv = L.levels[1];
    expect([...lv.lTotal!]).toEqual([10, 0]);
    expect([...lv.rTotal!]).toEqual([10, 20]);
    expect([...lv.x]).toEqual([0, 20]); // g: left end 10 + right end 10
    expect([...lv.total]).toEqual([20, 20]);
  });

  it("computes the relative change of each side's share", () => {
    // f: 100% of left, 33% of right → -66.7%
    expect(relativeChange(10, 10, 10, 30)).toBeCloseTo(-66.67, 1);
    expect(relativeChange(0, 20, 10, 30)).toBe(Infinity);
    expect(relativeChange(5, 15, 10, 30)).toBeCloseTo(0, 6);
    expect(relativeChange(5, 0, 10, 30)).toBe(-100);
  });

  it("colours growth red, shrinkage green, no change grey", () => {
    const rgb = (s: string) => s.match(/\d+/g)!.map(Number);
    const [r1, g1] = rgb(diffColor(100));
    expect(r1).toBeGreaterThan(200);
    expect(g1).toBeLessThan(100);
    const [r2, g2] = rgb(diffColor(-100));
    expect(g2).toBeGreaterThan(r2);
    expect(rgb(diffColor(0))).toEqual([215, 215, 215]);
    expect(diffColor(Infinity)).toBe(diffColor(100));
    // more change, stronger colour
    expect(rgb(diffColor(50))[1]).toBeLessThan(rgb(diffColor(5))[1]);
    expect(DIFF_LEGEND[0]).toBe(-100);
  });

  it("gives both sides' values per function", () => {
    const stats = functionStats(decodeLayout(diff));
    const f = stats.find((s) => s.name === "f")!;
    expect([f.lSelf, f.rSelf, f.lTotal, f.rTotal]).toEqual([10, 10, 10, 10]);
  });
});
