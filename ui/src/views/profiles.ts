// The profiles in the range (GET /api/v1/profiles, newest first), a page
// at a time (the URL's offset), and one opened: GET /api/v1/profile gives
// it as pprof, which is read here and shown with the same flame graph and
// table as any selection.
import type { App, ViewContext, ViewHandle } from "../app";
import { errorBox, h } from "../dom";
import { decodePprof, gunzip, pprofToTree, sampleIndex } from "../pprof";
import { treeToFlamegraph } from "../flame/tree";
import { formatTime, formatValue } from "../format";
import { parseProfileRef } from "../state";
import { parseQuery } from "../selector";
import { FlamePanel } from "./panel";

/** Profiles per page. */
export const PAGE = 200;
/** The server lists at most the newest 10000 (offset + limit). */
export const LIST_MAX = 10000;

/** What to ask for the page at offset: one profile more than a page, which
 * tells whether an older page exists (none past LIST_MAX). */
export function pageRequest(offset: number): { offset: number; limit: number } {
  const o = Math.max(0, Math.min(offset, LIST_MAX - PAGE));
  return { offset: o, limit: Math.min(PAGE + 1, LIST_MAX - o) };
}

/** The offsets of the newer and older pages (null: none), given how many
 * profiles the page's request returned. */
export function pagerOf(offset: number, got: number): { newer: number | null; older: number | null } {
  return { newer: offset > 0 ? Math.max(0, offset - PAGE) : null, older: got > PAGE ? offset + PAGE : null };
}

export async function renderProfiles(ctx: ViewContext): Promise<ViewHandle> {
  const { state, api, range, out, signal, unit, app } = ctx;
  const listBox = h("section", { class: "card profile-list" }, h("div", { class: "loading" }, "Loading the profiles…"));
  const openBox = h("section", { class: "card profile-open" });
  out.append(listBox, openBox);
  let panel: FlamePanel | null = null;
  const page = pageRequest(state.offset);
  const list = api.profiles({ query: state.query, fromMs: range[0], untilMs: range[1] }, page.limit, signal, page.offset).then((got) => {
    const ps = got.slice(0, PAGE);
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
      listTitle(app, page.offset, ps.length, pagerOf(page.offset, got.length)),
      h("div", { class: "rows" }, ps.length
        ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Time"), h("th", {}, "Labels"), h("th", {}, "Total"), h("th", {}, "Profile ID"))), body)
        : h("div", { class: "empty" }, page.offset > 0 ? "No profiles on this page: go back to newer ones." : "No profiles match this query in this time range.")));
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

/** The list's title, with Newer / Older buttons when there is more than
 * one page. */
function listTitle(app: App, offset: number, n: number, pager: { newer: number | null; older: number | null }): HTMLElement {
  const { newer, older } = pager;
  const paged = newer !== null || older !== null;
  const shown = !paged ? `${n} profile${n === 1 ? "" : "s"}` : n === 1 ? `Profile ${offset + 1}` : `Profiles ${offset + 1}–${offset + n}`;
  const buttons = paged ? h("span", { class: "pager" },
    h("button", { class: "page-newer", disabled: newer === null, onclick: () => app.setState({ offset: newer ?? 0 }) }, "← Newer"),
    h("button", {
      class: "page-older", disabled: older === null, onclick: () => app.setState({ offset: older ?? offset }),
      title: offset + PAGE >= LIST_MAX ? `The list reaches the newest ${LIST_MAX} profiles: narrow the range for older ones` : undefined,
    }, "Older →")) : null;
  return h("div", { class: "card-title list-title" }, h("span", {}, `${shown} in the range, newest first — click one to open it`), buttons);
}
