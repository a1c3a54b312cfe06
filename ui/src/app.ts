// The page: a header (views, copy link, tenant), the query bar (profile type,
// service, label filters, time range) and the current view. State changes
// go through setState, which writes the URL (so every state is a link)
// and redraws; changes that need no new data (search, display, function)
// redraw without asking the server again.
import { Api, type ProfileType } from "./api";
import { copyLinkControl } from "./copylink";
import { errorBox, h, isAbort } from "./dom";
import { unitOf, type Unit } from "./format";
import { equalValue, formatMatchers, formatQuery, parseMatchers, parseQuery, withEqual, type Query } from "./selector";
import { parseState, serializeState, update, type AppState, type View } from "./state";
import { PRESETS, parseRange } from "./time";
import { renderCompare } from "./views/compare";
import { renderExplore } from "./views/explore";
import { renderProfiles } from "./views/profiles";
import { renderTags } from "./views/tags";

const TENANT_KEY = "hotpath.tenant";

const VIEW_LABELS: [View, string][] = [
  ["explore", "Single view"], ["compare", "Comparison"], ["diff", "Diff"], ["tags", "Tag explorer"], ["profiles", "Profiles"],
];

/** What a view gets: the state, the API, a way to change the state, and
 * where to draw. */
export interface ViewContext {
  app: App;
  state: AppState;
  api: Api;
  unit: Unit;
  signal: AbortSignal;
  /** [from, until] of the main range, in unix ms. */
  range: [number, number];
  out: HTMLElement;
}

/** A drawn view; cosmetic() applies search/display/fn without refetching. */
export interface ViewHandle {
  cosmetic?: (s: AppState) => void;
  destroy?: () => void;
}

/** The fields whose change means new data. */
function dataKey(s: AppState): string {
  return JSON.stringify([s.view, s.query, s.from, s.until, s.leftQuery, s.leftFrom, s.leftUntil, s.rightQuery,
    s.rightFrom, s.rightUntil, s.groupBy, s.maxNodes, s.tenant, s.profile, s.offset]);
}

/** The fields that make a different profile list: a new list starts at
 * its newest page. */
const LIST_FIELDS: (keyof AppState)[] = ["query", "from", "until", "tenant"];

export class App {
  state: AppState;
  readonly api: Api;
  private root: HTMLElement;
  private bar: HTMLElement;
  private main: HTMLElement;
  private tabs: HTMLElement;
  private lastKey = "";
  private abort: AbortController | null = null;
  private view: ViewHandle | null = null;
  private types: ProfileType[] = [];
  private typesKey = "";

  constructor(root: HTMLElement) {
    this.root = root;
    this.state = parseState(location.search);
    if (!this.state.tenant) this.state.tenant = localStorage.getItem(TENANT_KEY) ?? "";
    // relative to the page, so the UI also works under a proxy's path prefix
    this.api = new Api(".", this.state.tenant);
    this.tabs = h("nav", { class: "tabs" });
    this.bar = h("div", { class: "querybar" });
    this.main = h("main", { class: "main" });
    const tenant = h("input", { class: "tenant", placeholder: "tenant (X-Scope-OrgID)", value: this.state.tenant, "aria-label": "tenant", title: "Sent as X-Scope-OrgID; empty for a single-tenant hotpath" });
    tenant.addEventListener("change", () => {
      localStorage.setItem(TENANT_KEY, tenant.value.trim());
      this.setState({ tenant: tenant.value.trim() });
    });
    const header = h("header", { class: "header" },
      h("a", { class: "brand", href: "./" }, logo(), "hotpath"), this.tabs,
      h("span", { class: "spacer" }), copyLinkControl(), h("label", { class: "tenant-label" }, "Tenant ", tenant));
    this.root.replaceChildren(header, this.bar, this.main);
    window.addEventListener("popstate", () => {
      this.state = parseState(location.search);
      this.render();
    });
  }

  /** Changes the state, writes the URL (a new history entry when push),
   * and redraws. */
  setState(changes: Partial<AppState>, push = true): void {
    if (!("offset" in changes) && LIST_FIELDS.some((k) => k in changes && changes[k] !== this.state[k]))
      changes = { ...changes, offset: 0 };
    this.state = update(this.state, changes);
    const url = location.pathname + serializeState(this.state);
    if (url !== location.pathname + location.search) {
      if (push) history.pushState(null, "", url);
      else history.replaceState(null, "", url);
    }
    this.render();
  }

  start(): void {
    this.render();
  }

  private render(): void {
    this.api.tenant = this.state.tenant;
    this.renderTabs();
    const key = dataKey(this.state);
    if (key === this.lastKey) {
      this.view?.cosmetic?.(this.state);
      return;
    }
    this.lastKey = key;
    void this.load();
  }

  private renderTabs(): void {
    this.tabs.replaceChildren(...VIEW_LABELS.map(([v, label]) =>
      h("button", { class: `tab${this.state.view === v ? " active" : ""}`, "data-view": v, onclick: () => this.switchView(v) }, label)));
  }

  /** Opens a view; the comparison views start from the main query, the
   * first half of the range against the second. */
  switchView(v: View): void {
    const s = this.state;
    const changes: Partial<AppState> = { view: v, offset: 0 };
    if ((v === "compare" || v === "diff") && !s.leftQuery) {
      changes.leftQuery = s.query;
      changes.rightQuery = s.query;
      try {
        const [f, u] = parseRange(s.from, s.until, Date.now());
        const mid = String(Math.floor((f + u) / 2000));
        Object.assign(changes, { leftFrom: s.from, leftUntil: mid, rightFrom: mid, rightUntil: s.until });
      } catch {
        Object.assign(changes, { leftFrom: s.from, leftUntil: s.until, rightFrom: s.from, rightUntil: s.until });
      }
    }
    this.setState(changes);
  }

  private async load(): Promise<void> {
    this.abort?.abort();
    const ac = new AbortController();
    this.abort = ac;
    this.view?.destroy?.();
    this.view = null;
    const s = this.state;
    let range: [number, number];
    try {
      range = parseRange(s.from, s.until, Date.now());
    } catch (e) {
      this.renderBar([], [0, 0]);
      this.main.replaceChildren(errorBox(e));
      return;
    }
    try {
      await this.loadTypes(range, ac.signal);
    } catch (e) {
      if (isAbort(e)) return;
      this.renderBar([], range);
      this.main.replaceChildren(errorBox(e));
      return;
    }
    if (ac.signal.aborted) return;
    if (!s.query && this.types.length > 0) {
      // nothing asked for yet: the first CPU type (else the first) and its first service
      const t = this.types.find((x) => x.ID.startsWith("process_cpu:cpu:")) ?? this.types[0];
      const services = await this.api.labelValues("service_name", [`{__profile_type__="${t.ID}"}`], range[0], range[1], ac.signal).catch(() => []);
      if (ac.signal.aborted) return;
      this.state = update(this.state, { query: formatQuery({ typeId: t.ID, matchers: services.length ? [{ name: "service_name", op: "=", value: services[0] }] : [] }) });
      history.replaceState(null, "", location.pathname + serializeState(this.state));
      this.lastKey = dataKey(this.state);
    }
    const services = await this.loadServices(range, ac.signal);
    if (ac.signal.aborted) return;
    this.renderBar(services, range);
    if (!this.state.query) {
      this.main.replaceChildren(h("div", { class: "empty" },
        h("h2", {}, "No profiles in this time range yet"),
        h("p", {}, "Push one to the distributor, e.g. ", h("code", {}, "curl --data-binary @cpu.pb.gz 'http://127.0.0.1:4040/ingest?name=myapp&format=pprof'"),
          ", then pick a longer range or reload.")));
      return;
    }
    const out = h("div", { class: "view" });
    this.main.replaceChildren(out);
    const ctx: ViewContext = { app: this, state: this.state, api: this.api, unit: unitOf(this.queryType()), signal: ac.signal, range, out };
    const views = { explore: renderExplore, compare: renderCompare, diff: renderCompare, tags: renderTags, profiles: renderProfiles };
    try {
      this.view = await views[this.state.view](ctx);
    } catch (e) {
      if (!isAbort(e)) out.replaceChildren(errorBox(e));
    }
  }

  private queryType(): string {
    try {
      return parseQuery(this.state.query).typeId;
    } catch {
      return "";
    }
  }

  private async loadTypes(range: [number, number], signal: AbortSignal): Promise<void> {
    // profile types change rarely: ask again when the range moves by more than a minute
    const key = `${this.state.tenant}|${Math.floor(range[0] / 60000)}|${Math.floor(range[1] / 60000)}`;
    if (key === this.typesKey) return;
    this.types = await this.api.profileTypes(range[0], range[1], signal);
    this.typesKey = key;
  }

  private async loadServices(range: [number, number], signal: AbortSignal): Promise<string[]> {
    const t = this.queryType();
    if (!t) return [];
    try {
      return await this.api.labelValues("service_name", [`{__profile_type__="${t}"}`], range[0], range[1], signal);
    } catch {
      return [];
    }
  }

  /** The query bar: profile type, service, label filters, time range. */
  private renderBar(services: string[], range: [number, number]): void {
    const s = this.state;
    let q: Query = { typeId: "", matchers: [] };
    let parseErr: unknown = null;
    try {
      q = parseQuery(s.query);
    } catch (e) {
      parseErr = e;
    }
    const service = equalValue(q.matchers, "service_name");
    const typeSel = h("select", { class: "type-select", "aria-label": "profile type" });
    const typeIds = this.types.map((t) => t.ID);
    if (q.typeId && !typeIds.includes(q.typeId)) typeIds.unshift(q.typeId);
    for (const id of typeIds) typeSel.append(h("option", { value: id, selected: id === q.typeId }, typeLabel(id)));
    typeSel.addEventListener("change", () => this.setQuery({ ...q, typeId: typeSel.value }));
    const svcSel = h("select", { class: "service-select", "aria-label": "service" });
    const svcs = [...services];
    if (service && !svcs.includes(service)) svcs.unshift(service);
    svcSel.append(h("option", { value: "" }, "all services"));
    for (const v of svcs) svcSel.append(h("option", { value: v, selected: v === service }, v));
    svcSel.addEventListener("change", () => this.setQuery(withEqual(q, "service_name", svcSel.value)));
    const others = q.matchers.filter((m) => !(m.name === "service_name" && m.op === "="));
    const filter = h("input", { class: "filter", placeholder: 'label filters, e.g. env="prod", region=~"eu-.*"', value: formatMatchers(others), "aria-label": "label filters" });
    const filterErr = h("span", { class: "field-error" });
    // Apply (or Enter in a field) reads every field and always asks again
    const apply = () => {
      let ms;
      try {
        ms = parseMatchers(filter.value);
      } catch (e) {
        filterErr.textContent = e instanceof Error ? e.message : String(e);
        return;
      }
      const svc = q.matchers.filter((m) => m.name === "service_name" && m.op === "=");
      this.lastKey = "";
      this.setState({ ...this.queryChanges({ typeId: q.typeId, matchers: [...svc, ...ms] }), from: from.value.trim(), until: until.value.trim() });
    };
    filter.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
    const preset = h("select", { class: "preset", "aria-label": "time range" });
    preset.append(h("option", { value: "" }, "Custom range"));
    for (const p of PRESETS) preset.append(h("option", { value: p.from, selected: s.until === "now" && s.from === p.from }, p.label));
    preset.addEventListener("change", () => { if (preset.value) this.setState({ from: preset.value, until: "now" }); });
    const from = h("input", { class: "from", value: s.from, size: 12, "aria-label": "from", title: "now-1h, unix seconds, or a date" });
    const until = h("input", { class: "until", value: s.until, size: 12, "aria-label": "until" });
    const go = h("button", { class: "apply primary", onclick: apply }, "Apply");
    for (const i of [from, until]) i.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
    const rangeText = range[1] > 0 ? h("span", { class: "muted range-text" }, `${new Date(range[0]).toLocaleString()} – ${new Date(range[1]).toLocaleString()}`) : null;
    const parts: (HTMLElement | null)[] = [
      h("label", {}, "Profile type ", typeSel), h("label", {}, "Service ", svcSel),
      h("label", { class: "grow" }, "Filters ", filter), filterErr,
      h("label", {}, preset), h("label", {}, "From ", from), h("label", {}, "Until ", until), go, rangeText,
      parseErr ? errorBox(parseErr) : null,
    ];
    this.bar.replaceChildren(...parts.filter((p): p is HTMLElement => p !== null));
  }

  private setQuery(q: Query): void {
    this.setState(this.queryChanges(q));
  }

  /** The changes a new main query makes: the comparison sides follow it
   * when they were the same query. */
  private queryChanges(q: Query): Partial<AppState> {
    const query = formatQuery(q);
    const changes: Partial<AppState> = { query };
    if (query === this.state.query) return changes;
    changes.fn = "";
    changes.profile = "";
    if (this.state.leftQuery === this.state.query) changes.leftQuery = query;
    if (this.state.rightQuery === this.state.query) changes.rightQuery = query;
    return changes;
  }

  /** Filters the main query on label=value and opens the single view
   * (the tag explorer's click). */
  filterOn(label: string, value: string): void {
    let q: Query;
    try {
      q = parseQuery(this.state.query);
    } catch {
      return;
    }
    this.setState({ ...this.queryChanges(withEqual(q, label, value)), view: "explore" });
  }
}

/** "process_cpu:cpu:nanoseconds:cpu:nanoseconds" → "process_cpu · cpu (nanoseconds)". */
function typeLabel(id: string): string {
  const [name, type, unit] = id.split(":");
  return type ? `${name} · ${type}${unit ? ` (${unit})` : ""}` : id;
}

/** The mark in the header: three flame-graph bars. */
function logo(): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "16");
  svg.setAttribute("viewBox", "0 0 18 16");
  for (const [x, y, w, c] of [[0, 11, 18, "#e8743b"], [2, 6, 11, "#f0a04b"], [4, 1, 5, "#f6c85f"]] as const) {
    const r = document.createElementNS(ns, "rect");
    Object.entries({ x, y, width: w, height: 4, rx: 1, fill: c }).forEach(([k, v]) => r.setAttribute(k, String(v)));
    svg.append(r);
  }
  return svg;
}
