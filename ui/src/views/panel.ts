// A flame graph with its toolbar and top table, as the single view, the
// diff view and an opened profile show it: search, display mode (table
// and flame graph, either alone, or the sandwich of one function), reset
// zoom, and downloads (pprof, SVG, PNG).
import { download, h } from "../dom";
import { decodeLayout, type FlameGraphData, type Layout } from "../flame/layout";
import { functionStats, sandwich } from "../flame/tree";
import { FlameGraphView } from "../flame/view";
import { formatValue, type Unit } from "../format";
import type { Display } from "../state";
import { TopTable } from "./toptable";

export interface PanelOptions {
  unit: Unit;
  search: string;
  display: Display;
  fn: string;
  onSearch: (s: string) => void;
  onDisplay: (d: Display) => void;
  onFn: (name: string) => void;
  /** The pprof of what is shown, for the download button. */
  pprof?: () => Promise<Blob>;
  /** File names start with this. */
  fileBase: string;
  /** Extra summary text (diff: both totals). */
  summary?: HTMLElement;
}

const DISPLAYS: [Display, string][] = [["both", "Table & flame graph"], ["flame", "Flame graph"], ["table", "Table"], ["sandwich", "Sandwich"]];

export class FlamePanel {
  readonly el: HTMLDivElement;
  readonly layout: Layout;
  readonly flame: FlameGraphView;
  private table: TopTable;
  private body: HTMLDivElement;
  private searchInput: HTMLInputElement;
  private modeButtons: HTMLButtonElement[] = [];
  private sandwichViews: FlameGraphView[] = [];
  private opts: PanelOptions;

  constructor(data: FlameGraphData, opts: PanelOptions) {
    this.opts = opts;
    const t0 = performance.now();
    this.layout = decodeLayout(data);
    const layoutMs = performance.now() - t0;
    const L = this.layout;
    this.flame = new FlameGraphView({ unit: opts.unit, onContext: (name) => { opts.onFn(name); opts.onDisplay("sandwich"); } });
    this.flame.canvas.dataset.layoutMs = layoutMs.toFixed(2);
    this.flame.canvas.dataset.nodes = String(L.nodeCount);
    this.flame.setLayout(L);
    const t1 = performance.now();
    const stats = functionStats(L);
    this.flame.canvas.dataset.statsMs = (performance.now() - t1).toFixed(2);
    this.table = new TopTable(stats, {
      unit: opts.unit,
      total: L.total,
      diff: L.diff ? { leftTicks: L.leftTicks, rightTicks: L.rightTicks } : undefined,
      onSelect: (name) => opts.onFn(name),
    });
    this.searchInput = h("input", {
      class: "search", type: "search", placeholder: "Search functions…", value: opts.search, "aria-label": "search",
    });
    let timer = 0;
    this.searchInput.addEventListener("input", () => {
      clearTimeout(timer);
      timer = window.setTimeout(() => opts.onSearch(this.searchInput.value), 120);
    });
    const modes = h("div", { class: "segmented" });
    for (const [d, label] of DISPLAYS) {
      const b = h("button", { class: "mode", "data-display": d, onclick: () => opts.onDisplay(d) }, label);
      this.modeButtons.push(b);
      modes.append(b);
    }
    const toolbar = h("div", { class: "toolbar" },
      this.searchInput,
      modes,
      h("button", { class: "reset", onclick: () => { this.flame.reset(); } }, "Reset zoom"),
      h("span", { class: "spacer" }),
      h("span", { class: "downloads" }, "Download: ",
        opts.pprof ? h("button", { class: "dl-pprof", onclick: () => this.savePprof() }, "pprof") : null,
        h("button", { class: "dl-svg", onclick: () => this.saveSVG() }, "SVG"),
        h("button", { class: "dl-png", onclick: () => this.savePNG() }, "PNG")),
    );
    const total = L.diff ? null : h("div", { class: "summary" },
      h("span", { class: "total", "data-total": String(L.total) }, `Total: ${formatValue(L.total, opts.unit)}`),
      h("span", { class: "muted" }, ` · ${L.nodeCount.toLocaleString("en-US")} nodes · click a frame to zoom, right-click for its callers and callees`));
    this.body = h("div", { class: "panes" });
    this.el = h("div", { class: "panel" }, toolbar, opts.summary ?? total, this.body);
    this.update(opts.search, opts.display, opts.fn);
  }

  /** Applies the cosmetic state (nothing is fetched again). */
  update(search: string, display: Display, fn: string): void {
    const o = this.opts;
    const rebuild = display !== o.display || fn !== o.fn || this.body.childElementCount === 0;
    o.search = search;
    o.display = display;
    o.fn = fn;
    if (this.searchInput.value !== search && document.activeElement !== this.searchInput) this.searchInput.value = search;
    for (const b of this.modeButtons) b.classList.toggle("active", b.dataset.display === display);
    this.table.setFilter(search);
    this.table.setSelected(fn);
    const highlight = search || (display !== "sandwich" ? fn : "");
    if (rebuild) this.layoutBody();
    this.flame.setSearch(highlight);
    for (const v of this.sandwichViews) v.setSearch(search);
  }

  private layoutBody(): void {
    for (const v of this.sandwichViews) v.destroy();
    this.sandwichViews = [];
    const d = this.opts.display;
    const tablePane = h("div", { class: "table-pane" }, this.table.el);
    const flamePane = h("div", { class: "flame-pane" });
    if (d === "sandwich") flamePane.append(this.sandwichPane());
    else flamePane.append(this.flame.el);
    if (d === "table") this.body.replaceChildren(tablePane);
    else if (d === "flame") this.body.replaceChildren(flamePane);
    else this.body.replaceChildren(tablePane, flamePane);
    this.body.dataset.display = d;
    requestAnimationFrame(() => {
      this.flame.render();
      for (const v of this.sandwichViews) v.render();
    });
  }

  private sandwichPane(): HTMLElement {
    const fn = this.opts.fn;
    if (!fn || this.layout.names.indexOf(fn) < 0)
      return h("div", { class: "hint" }, "Pick a function for the sandwich view: click a row of the table, or right-click a frame.");
    const { callers, callees } = sandwich(this.layout, fn);
    const up = new FlameGraphView({ unit: this.opts.unit, inverted: true });
    const down = new FlameGraphView({ unit: this.opts.unit, onContext: (name) => this.opts.onFn(name) });
    up.canvas.classList.add("sandwich-callers");
    down.canvas.classList.add("sandwich-callees");
    this.sandwichViews = [up, down];
    const el = h("div", { class: "sandwich" },
      h("div", { class: "sandwich-title" }, "Callers of ", h("code", {}, fn)), up.el,
      h("div", { class: "sandwich-title" }, "Callees of ", h("code", {}, fn)), down.el);
    up.setLayout(decodeLayout(callers));
    down.setLayout(decodeLayout(callees));
    return el;
  }

  private async savePprof(): Promise<void> {
    try {
      download(await this.opts.pprof!(), `${this.opts.fileBase}.pb.gz`);
    } catch (e) {
      this.el.prepend(h("div", { class: "error" }, `pprof download failed: ${e instanceof Error ? e.message : e}`));
    }
  }

  private saveSVG(): void {
    download(new Blob([this.flame.toSVG()], { type: "image/svg+xml" }), `${this.opts.fileBase}.svg`);
  }

  private async savePNG(): Promise<void> {
    download(await this.flame.toPNG(), `${this.opts.fileBase}.png`);
  }

  destroy(): void {
    this.flame.destroy();
    for (const v of this.sandwichViews) v.destroy();
  }
}
