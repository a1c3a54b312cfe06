// The single view: the selection's timeline (SelectSeries; drag to pick a
// range) above its flame graph and top table (SelectMergeStacktraces).
import type { ViewContext, ViewHandle } from "../app";
import { errorBox, h } from "../dom";
import { stepFor, toUnixSeconds } from "../time";
import { FlamePanel } from "./panel";
import { Timeline, type Band } from "./timeline";

export const SERIES_COLOR = "rgb(235,130,60)";

/** The timeline of a query over the main range; a drag selects a range. */
export function timelineFor(ctx: ViewContext, query: string, onSelect: (f: number, u: number) => void, bands: Band[] = []): {
  timeline: Timeline; step: number; load: Promise<void>;
} {
  const step = stepFor(ctx.range[0], ctx.range[1]);
  const timeline = new Timeline({ unit: ctx.unit, onSelect });
  const load = ctx.api
    .series({ query, fromMs: ctx.range[0], untilMs: ctx.range[1] }, step, [], ctx.signal)
    .then((series) => {
      const points = series.flatMap((s) => s.points);
      timeline.set(ctx.range, [{ label: "total", color: SERIES_COLOR, points }], bands, step * 1000);
    });
  return { timeline, step, load };
}

/** The range a drag selected, as the URL keeps it (unix seconds). */
export function rangeOf(f: number, u: number): { from: string; until: string } {
  return { from: toUnixSeconds(f), until: toUnixSeconds(u + 999) };
}

export async function renderExplore(ctx: ViewContext): Promise<ViewHandle> {
  const { state, api, range, out, signal, unit, app } = ctx;
  const { timeline, load } = timelineFor(ctx, state.query, (f, u) => app.setState(rangeOf(f, u)));
  const tlBox = h("section", { class: "card timeline-card" }, h("div", { class: "card-title" }, "Timeline ", h("span", { class: "muted" }, "— drag to select a range")), timeline.el);
  const flameBox = h("section", { class: "card flame-card" }, h("div", { class: "loading" }, "Loading the flame graph…"));
  out.append(tlBox, flameBox);
  timeline.render();
  const sel = { query: state.query, fromMs: range[0], untilMs: range[1] };
  load.catch((e) => { if (!signal.aborted) tlBox.append(errorBox(e)); });
  let panel: FlamePanel | null = null;
  try {
    const fg = await api.flamegraph(sel, state.maxNodes, signal);
    if (fg.total === 0) {
      flameBox.replaceChildren(h("div", { class: "empty" }, "No samples match this query in this time range."));
    } else {
      panel = new FlamePanel(fg, {
        unit, search: state.search, display: state.display, fn: state.fn,
        onSearch: (s) => app.setState({ search: s }, false),
        onDisplay: (d) => app.setState({ display: d }),
        onFn: (name) => app.setState({ fn: name }),
        pprof: async () => new Blob([await api.mergedPprof(sel)], { type: "application/octet-stream" }),
        fileBase: fileBase(state.query),
      });
      flameBox.replaceChildren(panel.el);
    }
  } catch (e) {
    if (signal.aborted) throw e;
    flameBox.replaceChildren(errorBox(e));
  }
  return {
    cosmetic: (s) => panel?.update(s.search, s.display, s.fn),
    destroy: () => panel?.destroy(),
  };
}

/** A file name for downloads: the service (or the type) and the time. */
export function fileBase(query: string): string {
  const svc = /service_name="([^"]*)"/.exec(query)?.[1];
  const type = query.split(":")[0];
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
  return `${(svc || type || "profile").replace(/[^a-zA-Z0-9_.-]/g, "_")}-${stamp}`;
}
