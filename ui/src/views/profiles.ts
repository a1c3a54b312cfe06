// The profiles in the range (GET /api/v1/profiles, newest first) and one
// opened: GET /api/v1/profile gives it as pprof, which is read here and
// shown with the same flame graph and table as any selection.
import type { ViewContext, ViewHandle } from "../app";
import { errorBox, h } from "../dom";
import { decodePprof, gunzip, pprofToTree, sampleIndex } from "../pprof";
import { treeToFlamegraph } from "../flame/tree";
import { formatTime, formatValue } from "../format";
import { parseProfileRef } from "../state";
import { parseQuery } from "../selector";
import { FlamePanel } from "./panel";

const LIMIT = 200;

export async function renderProfiles(ctx: ViewContext): Promise<ViewHandle> {
  const { state, api, range, out, signal, unit, app } = ctx;
  const listBox = h("section", { class: "card profile-list" }, h("div", { class: "loading" }, "Loading the profiles…"));
  const openBox = h("section", { class: "card profile-open" });
  out.append(listBox, openBox);
  let panel: FlamePanel | null = null;
  const list = api.profiles({ query: state.query, fromMs: range[0], untilMs: range[1] }, LIMIT, signal).then((ps) => {
    const body = h("tbody", {});
    for (const p of ps) {
      const ref = `${p.profileId}@${p.timestampNs}`;
      const labels = Object.entries(p.labels).filter(([k]) => !k.startsWith("__")).map(([k, v]) => `${k}=${v}`).join(", ");
      body.append(h("tr", { class: `profile-row${ref === state.profile ? " selected" : ""}`, "data-id": p.profileId, "data-total": String(p.total), onclick: () => app.setState({ profile: ref }) },
        h("td", {}, formatTime(Number(BigInt(p.timestampNs) / 1000000n))),
        h("td", { class: "labels" }, labels),
        h("td", { class: "num" }, formatValue(p.total, unit)),
        h("td", { class: "id" }, h("code", {}, p.profileId))));
    }
    listBox.replaceChildren(
      h("div", { class: "card-title" }, `${ps.length}${ps.length === LIMIT ? "+" : ""} profiles in the range, newest first — click one to open it`),
      ps.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Time"), h("th", {}, "Labels"), h("th", {}, "Total"), h("th", {}, "Profile ID"))), body)
        : h("div", { class: "empty" }, "No profiles match this query in this time range."));
  }).catch((e) => { if (!signal.aborted) listBox.replaceChildren(errorBox(e)); });
  const ref = parseProfileRef(state.profile);
  if (ref) {
    openBox.append(h("div", { class: "loading" }, "Loading the profile…"));
    try {
      const raw = await api.profile(state.query, ref.id, ref.timestampNs, signal);
      const p = decodePprof(await gunzip(raw));
      const fg = treeToFlamegraph(pprofToTree(p, sampleIndex(p, parseQuery(state.query).typeId)));
      panel = new FlamePanel(fg, {
        unit, search: state.search, display: state.display, fn: state.fn,
        onSearch: (s) => app.setState({ search: s }, false),
        onDisplay: (d) => app.setState({ display: d }),
        onFn: (name) => app.setState({ fn: name }),
        pprof: async () => new Blob([raw]),
        fileBase: `profile-${ref.id}`,
      });
      openBox.replaceChildren(h("div", { class: "card-title" }, "Profile ", h("code", {}, ref.id), ` at ${formatTime(Number(BigInt(ref.timestampNs) / 1000000n))}`), panel.el);
    } catch (e) {
      if (signal.aborted) throw e;
      openBox.replaceChildren(errorBox(e));
    }
  } else {
    openBox.append(h("div", { class: "hint" }, "Open a profile from the list to see its flame graph."));
  }
  await list;
  return {
    cosmetic: (s) => panel?.update(s.search, s.display, s.fn),
    destroy: () => panel?.destroy(),
  };
}
