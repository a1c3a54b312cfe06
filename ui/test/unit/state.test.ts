import { describe, expect, it } from "vitest";
import { defaultState, parseProfileRef, parseState, serializeState, update } from "../../src/state";
import { formatQuery, parseMatchers, parseQuery, withEqual } from "../../src/selector";
import { parseRange, parseTime, stepFor } from "../../src/time";
import { formatValue, unitOf } from "../../src/format";

describe("URL state", () => {
  it("opens the issue's example link", () => {
    const s = parseState('?query=process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="myapp"}&from=now-1h&until=now');
    expect(s.view).toBe("explore");
    expect(s.query).toBe('process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="myapp"}');
    expect(s.from).toBe("now-1h");
    expect(s.until).toBe("now");
  });

  it("reads percent-encoded links too", () => {
    const s = parseState("?query=" + encodeURIComponent('memory:alloc_space:bytes:space:bytes{service_name="a b",env=~"p.+"}') + "&from=1700000000&until=1700003600");
    expect(s.query).toBe('memory:alloc_space:bytes:space:bytes{service_name="a b",env=~"p.+"}');
    expect(s.from).toBe("1700000000");
  });

  it("round-trips every field", () => {
    const s = update(defaultState(), {
      view: "diff", query: 't:a:b:c:d{x="1&2",y="a+b #c"}', from: "now-6h", until: "now",
      leftQuery: 't:a:b:c:d{x="1"}', leftFrom: "1700000000", leftUntil: "1700001800",
      rightQuery: 't:a:b:c:d{x="2"}', rightFrom: "1700001800", rightUntil: "1700003600",
      groupBy: "env", search: "runtime.", fn: "main.main", display: "sandwich", maxNodes: 65536,
      tenant: "team-a", profile: "8f0e5a1c-0000-4000-8000-000000000001@1700000000123456789", offset: 400,
    });
    expect(parseState(serializeState(s))).toEqual(s);
  });

  it("writes only what differs from the defaults, readable", () => {
    const s = update(defaultState(), { query: 'process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="myapp"}' });
    expect(serializeState(s)).toBe('?query=process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="myapp"}&from=now-1h&until=now');
  });

  it("falls back to defaults on bad values", () => {
    const s = parseState("?view=nope&display=odd&maxNodes=-5&offset=-200");
    expect([s.view, s.display, s.maxNodes, s.offset]).toEqual(["explore", "both", 0, 0]);
    expect(parseState("?offset=abc").offset).toBe(0);
  });

  it("opens Pyroscope's comparison links as a comparison", () => {
    expect(parseState("?leftQuery=a{}&rightQuery=b{}").view).toBe("compare");
  });

  it("parses an opened profile reference", () => {
    expect(parseProfileRef("8f0e5a1c-0000-4000-8000-000000000001@1700000000123456789")).toEqual({
      id: "8f0e5a1c-0000-4000-8000-000000000001", timestampNs: "1700000000123456789",
    });
    expect(parseProfileRef("x@1")).toBeNull();
  });
});

describe("selectors", () => {
  it("parses and formats a query", () => {
    const q = parseQuery('process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="my\\"app", env=~"prod|staging"}');
    expect(q.typeId).toBe("process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    expect(q.matchers).toEqual([{ name: "service_name", op: "=", value: 'my"app' }, { name: "env", op: "=~", value: "prod|staging" }]);
    expect(parseQuery(formatQuery(q))).toEqual(q);
  });

  it("accepts unquoted values and every operator", () => {
    expect(parseMatchers("env=prod, region!=us, x!~a.*")).toEqual([
      { name: "env", op: "=", value: "prod" }, { name: "region", op: "!=", value: "us" }, { name: "x", op: "!~", value: "a.*" },
    ]);
  });

  it("says where a selector is wrong", () => {
    expect(() => parseMatchers('env="prod" region="x"')).toThrow(/position/);
    expect(() => parseMatchers('env="prod')).toThrow(/unterminated/);
  });

  it("filters on a label value", () => {
    expect(formatQuery(withEqual(parseQuery('t{service_name="a",env="x"}'), "env", "y"))).toBe('t{env="y",service_name="a"}');
  });
});

describe("time", () => {
  const now = 1_700_000_000_000;
  it("reads relative and absolute times", () => {
    expect(parseTime("now", now)).toBe(now);
    expect(parseTime("now-1h", now)).toBe(now - 3600_000);
    expect(parseTime("now-30m", now)).toBe(now - 1800_000);
    expect(parseTime("now+5m", now)).toBe(now + 300_000);
    expect(parseTime("1700000000", now)).toBe(1_700_000_000_000);
    expect(parseTime("1700000000123", now)).toBe(1_700_000_000_123);
    expect(parseTime("1700000000123456789", now)).toBe(1_700_000_000_123);
    expect(parseTime("yesterday-ish", now)).toBeNaN();
  });
  it("refuses a range that ends before it starts", () => {
    expect(() => parseRange("now", "now-1h", now)).toThrow(/after/);
  });
  it("picks a readable step", () => {
    expect(stepFor(now - 3600_000, now)).toBe(15);
    expect(stepFor(now - 86400_000, now)).toBe(600);
  });
});

describe("formatting", () => {
  it("reads the unit from the profile type", () => {
    expect(unitOf("process_cpu:cpu:nanoseconds:cpu:nanoseconds")).toBe("nanoseconds");
    expect(unitOf("memory:inuse_space:bytes:space:bytes")).toBe("bytes");
    expect(unitOf("goroutine:goroutine:count:goroutine:count")).toBe("count");
  });
  it("formats values", () => {
    expect(formatValue(1_500_000_000, "nanoseconds")).toBe("1.5 s");
    expect(formatValue(2048, "bytes")).toBe("2 KiB");
    expect(formatValue(1234, "count")).toBe("1.23k");
    expect(formatValue(0, "nanoseconds")).toBe("0 ns");
  });
});
