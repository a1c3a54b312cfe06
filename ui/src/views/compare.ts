// Comparison and diff: two selections (a query and a range each, by
// default the main query's first half-range against its second), shown
// side by side or as one diff flame graph (Diff) coloured by relative
// change, red where the comparison grew, green where it shrank.
import type { ViewContext, ViewHandle } from "../app";
import { errorBox, h } from "../dom";
import { DIFF_LEGEND, diffColor } from "../flame/colors";
import { formatChange, formatValue } from "../format";
import type { AppState } from "../state";
import { parseRange } from "../time";
import { fileBase, rangeOf, timelineFor } from "./explore";
import { FlamePanel } from "./panel";

const LEFT_BAND = "rgba(60,120,220,0.18)";
const RIGHT_BAND = "rgba(235,150,40,0.22)";

type Side = "left" | "right";

export async function renderCompare(ctx: ViewContext): Promise<ViewHandle> {
  const { state, api, out, signal, unit, app } = ctx;
  let dragSide: Side = "left";
  const sides = { left: sideOf(state, "left"), right: sideOf(state, "right") };
  const ranges: Partial<Record<Side, [number, number]>> = {};
  const errors: HTMLElement[] = [];
  for (const s of ["left", "right"] as Side[]) {
    try {
      ranges[s] = parseRange(sides[s].from, sides[s].until, Date.now());
    } catch (e) {
      errors.push(errorBox(e));
    }
  }
  const bands = [
    ...(ranges.left ? [{ from: ranges.left[0], until: ranges.left[1], color: LEFT_BAND }] : []),
    ...(ranges.right ? [{ from: ranges.right[0], until: ranges.right[1], color: RIGHT_BAND }] : []),
  ];
  const { timeline, load } = timelineFor(ctx, state.query, (f, u) => {
    const r = rangeOf(f, u);
    app.setState(dragSide === "left" ? { leftFrom: r.from, leftUntil: r.until } : { rightFrom: r.from, rightUntil: r.until });
  }, bands);
  const radio = (s: Side, label: string) => {
    const i = h("input", { type: "radio", name: "drag-side", value: s, checked: s === dragSide });
    i.addEventListener("change", () => (dragSide = s));
    return h("label", { class: `drag-${s}` }, i, label);
  };
  const tlBox = h("section", { class: "card timeline-card" },
    h("div", { class: "card-title" }, "Timeline — drag to select the ", radio("left", "baseline"), " or the ", radio("right", "comparison"), " range"),
    timeline.el);
  out.append(tlBox, h("div", { class: "sides" }, sideEditor(ctx, "left"), sideEditor(ctx, "right")), ...errors);
  timeline.render();
  load.catch((e) => { if (!signal.aborted) tlBox.append(errorBox(e)); });
  if (!ranges.left || !ranges.right) return {};
  const sel = (s: Side) => ({ query: sides[s].query, fromMs: ranges[s]![0], untilMs: ranges[s]![1] });
  const panelOpts = (s: Side | "diff") => ({
    unit, search: state.search, display: state.display, fn: state.fn,
    onSearch: (v: string) => app.setState({ search: v }, false),
    onDisplay: (d: AppState["display"]) => app.setState({ display: d }),
    onFn: (name: string) => app.setState({ fn: name }),
    pprof: s === "diff" ? undefined : async () => new Blob([await api.mergedPprof(sel(s))]),
    fileBase: `${fileBase(state.query)}-${s}`,
  });
  const panels: FlamePanel[] = [];
  if (state.view === "diff") {
    const box = h("section", { class: "card flame-card diff-card" }, h("div", { class: "loading" }, "Loading the diff…"));
    out.append(box);
    try {
      const fg = await api.diff(sel("left"), sel("right"), state.maxNodes, signal);
      const summary = h("div", { class: "summary diff-summary" },
        h("span", { class: "left-total", "data-total": String(fg.leftTicks) }, h("i", { class: "swatch", style: `background:${LEFT_BAND}` }), `Baseline total: ${formatValue(fg.leftTicks ?? 0, unit)}`),
        h("span", { class: "right-total", "data-total": String(fg.rightTicks) }, h("i", { class: "swatch", style: `background:${RIGHT_BAND}` }), `Comparison total: ${formatValue(fg.rightTicks ?? 0, unit)}`),
        legend());
      const p = new FlamePanel(fg, { ...panelOpts("diff"), summary });
      panels.push(p);
      box.replaceChildren(p.el);
    } catch (e) {
      if (signal.aborted) throw e;
      box.replaceChildren(errorBox(e));
    }
  } else {
    const cols = h("div", { class: "compare-cols" });
    out.append(cols);
    const results = await Promise.allSettled([api.flamegraph(sel("left"), state.maxNodes, signal), api.flamegraph(sel("right"), state.maxNodes, signal)]);
    if (signal.aborted) throw new DOMException("aborted", "AbortError");
    (["left", "right"] as Side[]).forEach((s, i) => {
      const r = results[i];
      const col = h("section", { class: `card flame-card compare-${s}` }, h("div", { class: "card-title" }, s === "left" ? "Baseline" : "Comparison"));
      if (r.status === "rejected") col.append(errorBox(r.reason));
      else {
        const p = new FlamePanel(r.value, panelOpts(s));
        panels.push(p);
        col.append(p.el);
      }
      cols.append(col);
    });
  }
  return {
    cosmetic: (s) => panels.forEach((p) => p.update(s.search, s.display, s.fn)),
    destroy: () => panels.forEach((p) => p.destroy()),
  };
}

function sideOf(s: AppState, side: Side): { query: string; from: string; until: string } {
  return side === "left"
    ? { query: s.leftQuery || s.query, from: s.leftFrom || s.from, until: s.leftUntil || s.until }
    : { query: s.rightQuery || s.query, from: s.rightFrom || s.from, until: s.rightUntil || s.until };
}

/** The query and range of one side, editable. */
function sideEditor(ctx: ViewContext, side: Side): HTMLElement {
  const v = sideOf(ctx.state, side);
  const q = h("input", { class: "side-query", value: v.query, "aria-label": `${side} query` });
  const f = h("input", { class: "side-from", value: v.from, size: 12, "aria-label": `${side} from` });
  const u = h("input", { class: "side-until", value: v.until, size: 12, "aria-label": `${side} until` });
  const apply = () => ctx.app.setState(side === "left"
    ? { leftQuery: q.value.trim(), leftFrom: f.value.trim(), leftUntil: u.value.trim() }
    : { rightQuery: q.value.trim(), rightFrom: f.value.trim(), rightUntil: u.value.trim() });
  for (const i of [q, f, u]) i.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
  return h("div", { class: `side side-${side}` },
    h("div", { class: "side-title" }, side === "left" ? "Baseline" : "Comparison"),
    h("label", { class: "grow" }, "Query ", q), h("label", {}, "From ", f), h("label", {}, "Until ", u),
    h("button", { class: "apply", onclick: apply }, "Apply"));
}

/** The diff colours and what they mean. */
function legend(): HTMLElement {
  return h("span", { class: "legend", title: "change of each function's share of its side's total" },
    ...DIFF_LEGEND.map((p) => h("span", { class: "legend-item", style: `background:${diffColor(p)}` }, formatChange(p))));
}
