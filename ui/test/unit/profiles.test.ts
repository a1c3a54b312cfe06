import { describe, expect, it } from "vitest";
import { LIST_MAX, PAGE, pageRequest, pagerOf } from "../../src/views/profiles";

describe("profile list pages", () => {
  it("asks for one more than a page, to know whether older profiles exist", () => {
    expect(pageRequest(0)).toEqual({ offset: 0, limit: PAGE + 1 });
    expect(pageRequest(PAGE)).toEqual({ offset: PAGE, limit: PAGE + 1 });
  });

  it("stays within the newest LIST_MAX profiles the server lists", () => {
    const last = pageRequest(LIST_MAX - PAGE);
    expect(last.offset + last.limit).toBe(LIST_MAX);
    expect(pageRequest(LIST_MAX * 3)).toEqual(last);
    expect(pageRequest(-5).offset).toBe(0);
  });

  it("offers newer and older pages only where they exist", () => {
    expect(pagerOf(0, 12)).toEqual({ newer: null, older: null });
    expect(pagerOf(0, PAGE + 1)).toEqual({ newer: null, older: PAGE });
    expect(pagerOf(PAGE, PAGE + 1)).toEqual({ newer: 0, older: 2 * PAGE });
    expect(pagerOf(2 * PAGE, 3)).toEqual({ newer: PAGE, older: null });
    expect(pagerOf(50, 0)).toEqual({ newer: 0, older: null });
  });
});
