// The tag explorer: the selection broken down by one label — each value's
// timeline and share of the total (SelectSeries grouped by the label);
// a click on a value filters the single view on it.
import type { ViewContext, ViewHandle } from "../app";
import { errorBox, h } from "../dom";
import { formatPercent, formatValue } from "../format";
import { parseQuery, formatSelector } from "../selector";
import { stepFor } from "../time";
import { rangeOf } from "./explore";
import { Timeline } from "./timeline";

const COLORS = ["#e8743b", "#19a979", "#ed4a7b", "#945ecf", "#13a4b4", "#525df4", "#bf399e", "#6c8893", "#ee6868", "#2f6497"];

export async function renderTags(ctx: ViewContext): Promise<ViewHandle> {
  const { state, api, range, out, signal, unit, app } = ctx;
  const q = parseQuery(state.query);
  const matcher = formatSelector([{ name: "__profile_type__", op: "=", value: q.typeId }, ...q.matchers]);
  const names = (await api.labelNames([matcher], range[0], range[1], signal)).filter((n) => !n.startsWith("__"));
  const preferred = names.filter((n) => n !== "service_name");
  const groupBy = state.groupBy && names.includes(state.groupBy) ? state.groupBy : (preferred[0] ?? names[0] ?? "");
  const select = h("select", { class: "groupby-select", "aria-label": "label" });
  for (const n of names) select.append(h("option", { value: n, selected: n === groupBy }, n));
  select.addEventListener("change", () => app.setState({ groupBy: select.value }));
  out.append(h("div", { class: "card" }, h("label", {}, "Break down by label ", select),
    h("span", { class: "muted" }, " — each value's share of the selection; click a value to filter on it")));
  if (!groupBy) {
    out.append(h("div", { class: "empty" }, "The selection's series carry no labels to break down by."));
    return {};
  }
  const step = stepFor(range[0], range[1]);
  const timeline = new Timeline({ unit, height: 160, onSelect: (f, u) => app.setState(rangeOf(f, u)) });
  const tableBox = h("div", { class: "tag-table" });
  out.append(h("section", { class: "card timeline-card" }, timeline.el), h("section", { class: "card" }, tableBox));
  timeline.render();
  let series;
  try {
    series = await api.series({ query: state.query, fromMs: range[0], untilMs: range[1] }, step, [groupBy], signal);
  } catch (e) {
    if (signal.aborted) throw e;
    tableBox.replaceChildren(errorBox(e));
    return {};
  }
  const rows = series.map((s) => ({
    value: s.labels[groupBy] ?? "",
    total: s.points.reduce((a, [, v]) => a + v, 0),
    points: s.points,
  })).sort((a, b) => b.total - a.total || (a.value < b.value ? -1 : 1));
  const all = rows.reduce((a, r) => a + r.total, 0);
  timeline.set(range, rows.slice(0, COLORS.length).map((r, i) => ({ label: r.value, color: COLORS[i], points: r.points })), [], step * 1000);
  const body = h("tbody", {});
  rows.forEach((r, i) => {
    body.append(h("tr", { class: "tag-row", "data-value": r.value, "data-total": String(r.total), onclick: () => app.filterOn(groupBy, r.value) },
      h("td", {}, h("i", { class: "swatch", style: `background:${COLORS[i] ?? "#bbb"}` }), r.value === "" ? h("em", {}, "(no value)") : r.value),
      h("td", { class: "num" }, formatValue(r.total, unit)),
      h("td", { class: "num share" }, h("span", { class: "bar", style: `width:${all > 0 ? ((r.total / all) * 100).toFixed(1) : 0}%` }), formatPercent(r.total, all))));
  });
  tableBox.replaceChildren(h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, groupBy), h("th", {}, "Total"), h("th", {}, "Share"))), body));
  return {};
}
