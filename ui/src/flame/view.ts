// The flame graph on a canvas: one row per depth, widths by total, click
// to zoom (the ancestors stay above, full width), search to highlight,
// hover for self / total / share, right-click for the sandwich view of a
// function. Drawing touches only the nodes inside the zoomed span (binary
// search per level) and skips those under half a pixel, so a redraw costs
// the same whether the graph holds 8,192 nodes or 100,000.
import { DIMMED_COLOR, OTHER_COLOR, ROOT_COLOR, diffColor, nodeColor, relativeChange } from "./colors";
import { nodeAt, pathTo, type Layout, type NodeRef } from "./layout";
import { formatChange, formatExact, formatPercent, formatValue, type Unit } from "../format";

export const ROW = 18;
const FONT = "12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
const MIN_PX = 0.5;

export interface FlameOptions {
  unit: Unit;
  /** Root at the bottom (the callers half of the sandwich view). */
  inverted?: boolean;
  /** Right-click on a node. */
  onContext?: (name: string) => void;
  /** Called after each draw with what it cost. */
  onDraw?: (ms: number, drawn: number) => void;
}

/** One bar to draw, in CSS pixels. */
interface Bar {
  x: number;
  y: number;
  w: number;
  color: string;
  label: string;
}

export class FlameGraphView {
  readonly el: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  private tip: HTMLDivElement;
  private layout: Layout | null = null;
  private zoom: NodeRef | null = null;
  private search = "";
  private charW = 7.2;
  private width = 800;
  private lastBars: Bar[] = [];
  private ro: ResizeObserver | null = null;

  constructor(private opts: FlameOptions) {
    this.el = document.createElement("div");
    this.el.className = "flame";
    this.canvas = document.createElement("canvas");
    this.canvas.className = "flame-canvas";
    this.tip = document.createElement("div");
    this.tip.className = "tooltip";
    this.tip.hidden = true;
    this.el.append(this.canvas, this.tip);
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => (this.tip.hidden = true));
    this.canvas.addEventListener("click", (e) => this.click(e));
    this.canvas.addEventListener("contextmenu", (e) => this.context(e));
    if (typeof ResizeObserver !== "undefined") {
      this.ro = new ResizeObserver(() => {
        const w = this.el.clientWidth;
        if (w > 0 && Math.abs(w - this.width) >= 1) this.render();
      });
      this.ro.observe(this.el);
    }
  }

  setLayout(layout: Layout | null): void {
    this.layout = layout;
    this.zoom = null;
    this.render();
  }

  getLayout(): Layout | null {
    return this.layout;
  }

  setSearch(s: string): void {
    this.search = s.trim().toLowerCase();
    this.render();
  }

  reset(): void {
    this.zoom = null;
    this.render();
  }

  /** Zooms on the first node called name (outermost, left-most). */
  zoomTo(ref: NodeRef | null): void {
    this.zoom = ref && ref.level > 0 ? ref : null;
    this.render();
  }

  zoomed(): NodeRef | null {
    return this.zoom;
  }

  destroy(): void {
    this.ro?.disconnect();
  }

  private matches(name: string): boolean {
    return this.search !== "" && name.toLowerCase().includes(this.search);
  }

  /** The span [x0, x1) in ticks that fills the width. */
  private span(): [number, number] {
    const L = this.layout!;
    if (!this.zoom) return [0, L.total];
    const lv = L.levels[this.zoom.level];
    return [lv.x[this.zoom.index], lv.x[this.zoom.index] + lv.total[this.zoom.index]];
  }

  private colorOf(level: number, i: number, dimAncestor: boolean): string {
    const L = this.layout!;
    const lv = L.levels[level];
    const id = lv.name[i];
    const name = L.names[id];
    if (this.search && !this.matches(name)) return DIMMED_COLOR;
    if (level === 0) return ROOT_COLOR;
    if (id === L.otherName) return OTHER_COLOR;
    if (L.diff) return diffColor(relativeChange(lv.lTotal![i], lv.rTotal![i], L.leftTicks, L.rightTicks));
    return dimAncestor ? "rgb(215,200,190)" : nodeColor(name);
  }

  private label(level: number, i: number): string {
    const L = this.layout!;
    const lv = L.levels[level];
    const name = L.names[lv.name[i]];
    return level === 0 ? `total (${formatValue(lv.total[i], this.opts.unit)})` : name;
  }

  /** The bars of the current zoom, in CSS pixels. */
  private bars(width: number): Bar[] {
    const L = this.layout!;
    const out: Bar[] = [];
    const [x0, x1] = this.span();
    const k = x1 > x0 ? width / (x1 - x0) : 0;
    const depth = L.levels.length;
    const y = (level: number) => (this.opts.inverted ? (depth - 1 - level) * ROW : level * ROW);
    const zl = this.zoom ? this.zoom.level : 0;
    if (this.zoom) {
      for (const a of pathTo(L, this.zoom).slice(0, -1))
        out.push({ x: 0, y: y(a.level), w: width, color: this.colorOf(a.level, a.index, true), label: this.label(a.level, a.index) });
    }
    for (let l = zl; l < depth; l++) {
      const lv = L.levels[l];
      let i = firstAtOrAfter(lv.x, x0, lv.n);
      // a node may start before x0 only when it is the zoomed node's ancestor; skip those
      for (; i < lv.n && lv.x[i] < x1; i++) {
        const w = lv.total[i] * k;
        if (w < MIN_PX || lv.x[i] + lv.total[i] > x1) continue;
        out.push({ x: (lv.x[i] - x0) * k, y: y(l), w, color: this.colorOf(l, i, false), label: this.label(l, i) });
      }
    }
    return out;
  }

  render(): void {
    // not on the page yet: its width is unknown; attaching it draws it (ResizeObserver)
    if (!this.el.isConnected) return;
    const t0 = performance.now();
    const L = this.layout;
    const dpr = window.devicePixelRatio || 1;
    const width = Math.max(this.el.clientWidth, 100);
    this.width = width;
    const height = L ? Math.max(L.levels.length, 1) * ROW : ROW;
    // resizing a canvas reallocates it: only when the size changed
    if (this.canvas.width !== Math.round(width * dpr) || this.canvas.height !== Math.round(height * dpr)) {
      this.canvas.style.width = `${width}px`;
      this.canvas.style.height = `${height}px`;
      this.canvas.width = Math.round(width * dpr);
      this.canvas.height = Math.round(height * dpr);
    }
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = FONT;
    ctx.textBaseline = "middle";
    this.charW = ctx.measureText("M").width || 7.2;
    if (!L || L.levels.length === 0) {
      this.lastBars = [];
      this.canvas.dataset.drawn = "0";
      return;
    }
    const bars = this.bars(width);
    for (const b of bars) {
      ctx.fillStyle = b.color;
      ctx.fillRect(b.x, b.y, Math.max(b.w - (b.w > 2 ? 1 : 0), 0.5), ROW - 1);
    }
    ctx.fillStyle = "#222";
    for (const b of bars) {
      const text = fit(b.label, b.w - 6, this.charW);
      if (text) ctx.fillText(text, b.x + 3, b.y + ROW / 2);
    }
    this.lastBars = bars;
    const ms = performance.now() - t0;
    this.canvas.dataset.drawn = String(bars.length);
    this.canvas.dataset.renderMs = ms.toFixed(2);
    this.canvas.dataset.matches = String(this.matchCount());
    this.canvas.dataset.zoom = this.zoom ? L.names[L.levels[this.zoom.level].name[this.zoom.index]] : "";
    this.opts.onDraw?.(ms, bars.length);
  }

  /** The number of nodes whose name matches the search. */
  matchCount(): number {
    const L = this.layout;
    if (!L || !this.search) return 0;
    const hit = L.names.map((n) => this.matches(n));
    let c = 0;
    for (let l = 1; l < L.levels.length; l++) {
      const lv = L.levels[l];
      for (let i = 0; i < lv.n; i++) if (hit[lv.name[i]]) c++;
    }
    return c;
  }

  /** The node under a mouse event, or null. */
  private refAt(e: MouseEvent): NodeRef | null {
    const L = this.layout;
    if (!L) return null;
    const r = this.canvas.getBoundingClientRect();
    const px = e.clientX - r.left;
    const row = Math.floor((e.clientY - r.top) / ROW);
    const level = this.opts.inverted ? L.levels.length - 1 - row : row;
    if (level < 0 || level >= L.levels.length) return null;
    if (this.zoom && level < this.zoom.level) return pathTo(L, this.zoom)[level] ?? null;
    const [x0, x1] = this.span();
    const ref = nodeAt(L, level, x0 + (px / this.width) * (x1 - x0));
    if (!ref) return null;
    const lv = L.levels[level];
    return lv.x[ref.index] >= x0 && lv.x[ref.index] + lv.total[ref.index] <= x1 ? ref : null;
  }

  private hover(e: MouseEvent): void {
    const ref = this.refAt(e);
    if (!ref) {
      this.tip.hidden = true;
      return;
    }
    this.tip.replaceChildren(...this.tooltipLines(ref));
    this.tip.hidden = false;
    const r = this.el.getBoundingClientRect();
    const x = e.clientX - r.left + 14;
    const tw = this.tip.offsetWidth;
    this.tip.style.left = `${Math.max(0, x + tw > r.width ? x - tw - 28 : x)}px`;
    this.tip.style.top = `${e.clientY - r.top + 14}px`;
  }

  private tooltipLines(ref: NodeRef): HTMLElement[] {
    const L = this.layout!;
    const lv = L.levels[ref.level];
    const i = ref.index;
    const u = this.opts.unit;
    const line = (k: string, v: string) => {
      const d = document.createElement("div");
      const b = document.createElement("b");
      b.textContent = k;
      d.append(b, " " + v);
      return d;
    };
    const title = document.createElement("div");
    title.className = "tooltip-title";
    title.textContent = L.names[lv.name[i]];
    if (!L.diff) {
      return [
        title,
        line("Self:", `${formatValue(lv.self[i], u)} (${formatPercent(lv.self[i], L.total)}) — ${formatExact(lv.self[i])}`),
        line("Total:", `${formatValue(lv.total[i], u)} (${formatPercent(lv.total[i], L.total)}) — ${formatExact(lv.total[i])}`),
      ];
    }
    const lt = lv.lTotal![i];
    const rt = lv.rTotal![i];
    return [
      title,
      line("Baseline:", `${formatValue(lt, u)} (${formatPercent(lt, L.leftTicks)}), self ${formatValue(lv.lSelf![i], u)}`),
      line("Comparison:", `${formatValue(rt, u)} (${formatPercent(rt, L.rightTicks)}), self ${formatValue(lv.rSelf![i], u)}`),
      line("Change:", formatChange(relativeChange(lt, rt, L.leftTicks, L.rightTicks))),
    ];
  }

  private click(e: MouseEvent): void {
    const ref = this.refAt(e);
    if (!ref) return;
    this.zoom = ref.level === 0 ? null : ref;
    this.render();
  }

  private context(e: MouseEvent): void {
    const ref = this.refAt(e);
    if (!ref || ref.level === 0 || !this.opts.onContext) return;
    e.preventDefault();
    this.opts.onContext(this.layout!.names[this.layout!.levels[ref.level].name[ref.index]]);
  }

  /** The drawing as SVG: the same bars, colours and labels. */
  toSVG(): string {
    const width = this.width;
    const height = this.layout ? this.layout.levels.length * ROW : ROW;
    const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
    const parts = [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="12">`,
    ];
    for (const b of this.lastBars) {
      const text = fit(b.label, b.w - 6, this.charW);
      parts.push(
        `<g><title>${esc(b.label)}</title><rect x="${b.x.toFixed(2)}" y="${b.y}" width="${Math.max(b.w - 1, 0.5).toFixed(2)}" height="${ROW - 1}" fill="${b.color}"/>` +
          (text ? `<text x="${(b.x + 3).toFixed(2)}" y="${b.y + 13}" fill="#222">${esc(text)}</text>` : "") +
          "</g>",
      );
    }
    parts.push("</svg>");
    return parts.join("\n");
  }

  toPNG(): Promise<Blob> {
    return new Promise((resolve, reject) =>
      this.canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("cannot encode the canvas"))), "image/png"));
  }
}

/** The first index whose x is ≥ v (a lower bound); a node starting left
 * of v that spans it is the caller's to consider. */
function firstAtOrAfter(xs: Float64Array, v: number, n: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A label cut to fit w pixels ("" when not even two characters fit). */
export function fit(label: string, w: number, charW: number): string {
  const n = Math.floor(w / charW);
  if (n < 2) return "";
  return label.length <= n ? label : label.slice(0, n - 1) + "…";
}
