import { describe, expect, it } from "vitest";
import { decodeLayout } from "../../src/flame/layout";
import { addStack, diffRows, functionStats, newTree, sandwich, treeToFlamegraph } from "../../src/flame/tree";
import { fit } from "../../src/flame/view";

function tree(stacks: [string, number][]) {
  const root = newTree("total");
  for (const [s, v] of stacks) addStack(root, s.split(";"), v);
  return root;
}

describe("treeToFlamegraph", () => {
  it("encodes levels with x deltas and children sorted by name", () => {
    const fg = treeToFlamegraph(tree([["main;b", 3], ["main;a", 2], ["main", 1]]));
    expect(fg.total).toBe(6);
    expect(fg.names).toEqual(["total", "main", "a", "b"]);
    expect(fg.levels).toEqual([
      [0, 6, 0, 0],
      [0, 6, 1, 1],
      [0, 2, 2, 2, 0, 3, 3, 3],
    ]);
    expect(fg.maxSelf).toBe(3);
  });

  it("round-trips through the layout", () => {
    const L = decodeLayout(treeToFlamegraph(tree([["m;x;y", 4], ["m;z", 6], ["n", 1]])));
    expect(L.total).toBe(11);
    const byName = Object.fromEntries(functionStats(L).map((s) => [s.name, [s.self, s.total]]));
    expect(byName).toEqual({ m: [0, 10], x: [0, 4], y: [4, 4], z: [6, 6], n: [1, 1] });
  });
});

describe("functionStats", () => {
  it("counts a recursive function's total once", () => {
    const L = decodeLayout(treeToFlamegraph(tree([["f;f;f;g", 5], ["f", 2]])));
    const f = functionStats(L).find((s) => s.name === "f")!;
    expect(f.total).toBe(7);
    expect(f.self).toBe(2);
  });

  it("sorts by self, largest first", () => {
    const L = decodeLayout(treeToFlamegraph(tree([["a;b", 1], ["a;c", 9], ["d", 4]])));
    expect(functionStats(L).map((s) => s.name)).toEqual(["c", "d", "b", "a"]);
  });
});

describe("sandwich", () => {
  const L = decodeLayout(treeToFlamegraph(tree([["main;handle;parse;alloc", 4], ["main;load;parse;read", 6], ["main;idle", 5]])));

  it("merges what a function calls", () => {
    const { callees } = sandwich(L, "parse");
    const C = decodeLayout(callees);
    expect(callees.total).toBe(10);
    expect(C.names[C.levels[0].name[0]]).toBe("parse");
    expect(Object.fromEntries(functionStats(C).map((s) => [s.name, s.total]))).toEqual({ alloc: 4, read: 6 });
  });

  it("lists who calls it, nearest caller first", () => {
    const { callers } = sandwich(L, "parse");
    const C = decodeLayout(callers);
    expect(callers.total).toBe(10);
    const level1 = [...Array(C.levels[1].n).keys()].map((i) => [C.names[C.levels[1].name[i]], C.levels[1].total[i]]);
    expect(level1).toEqual([["handle", 4], ["load", 6]]);
    expect(C.names[C.levels[2].name[0]]).toBe("main");
  });

  it("is empty for an unknown function", () => {
    expect(sandwich(L, "nope").callees.total).toBe(0);
  });
});

describe("diffRows", () => {
  // baseline (total 100): main → a 60, b 40; comparison (total 200):
  // main self 20 → a 60, c 120. Levels: [l x, l total, l self, r x, r total, r self, name]
  const diff = {
    names: ["total", "main", "a", "b", "c"],
    levels: [
      [0, 100, 0, 0, 200, 0, 0],
      [0, 100, 0, 0, 200, 20, 1],
      [0, 60, 60, 0, 60, 60, 2, 0, 40, 40, 0, 0, 0, 3, 0, 0, 0, 0, 120, 120, 4],
    ],
    total: 300,
    maxSelf: 120,
    leftTicks: 100,
    rightTicks: 200,
  };
  const rows = diffRows(functionStats(decodeLayout(diff)), 100, 200);
  const row = (name: string) => rows.find((r) => r.name === name)!;

  it("gives each side's self and its share of that side's total", () => {
    expect(row("a")).toMatchObject({ lSelf: 60, rSelf: 60, lSelfShare: 60, rSelfShare: 30 });
    expect(row("main")).toMatchObject({ lSelf: 0, rSelf: 20, lSelfShare: 0, rSelfShare: 10, lTotalShare: 100, rTotalShare: 100 });
  });

  it("compares shares, not values, since the totals differ", () => {
    // a: the same 60 on both sides, but 60% of one and 30% of the other
    expect(row("a").selfChange).toBeCloseTo(-50, 9);
    expect(row("a").totalChange).toBeCloseTo(-50, 9);
    // main: all of both totals; its self is new in the comparison
    expect(row("main").totalChange).toBe(0);
    expect(row("main").selfChange).toBe(Infinity);
    expect([row("b").selfChange, row("b").totalChange]).toEqual([-100, -100]);
    expect([row("c").selfChange, row("c").rTotalShare]).toEqual([Infinity, 60]);
  });

  it("lists the largest self share on either side first", () => {
    expect(rows.map((r) => r.name)).toEqual(["a", "c", "b", "main"]);
  });

  it("has no shares (and no NaN) for an empty side", () => {
    const r = diffRows(functionStats(decodeLayout(diff)), 0, 200).find((x) => x.name === "a")!;
    expect([r.lSelfShare, r.lTotalShare, r.selfChange]).toEqual([0, 0, Infinity]);
  });
});

describe("labels", () => {
  it("cut to the width with an ellipsis", () => {
    expect(fit("runtime.mallocgc", 70, 7)).toBe("runtime.m…");
    expect(fit("abc", 100, 7)).toBe("abc");
    expect(fit("abc", 10, 7)).toBe("");
  });
});
