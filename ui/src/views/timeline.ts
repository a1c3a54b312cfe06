// The timeline above the flame graph: each series' totals per step
// (SelectSeries) as bars (one series) or lines (several), the selected
// spans as bands, and a drag across it to select a new time range.
import { formatValue, type Unit } from "../format";

export interface TimelineSeries {
  label: string;
  color: string;
  points: [number, number][]; // unix ms, value
}

export interface Band {
  from: number;
  until: number;
  color: string;
}

export interface TimelineOptions {
  unit: Unit;
  height?: number;
  onSelect?: (fromMs: number, untilMs: number) => void;
}

const PAD_L = 64;
const PAD_B = 18;

export class Timeline {
  readonly el: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  private range: [number, number] = [0, 1];
  private series: TimelineSeries[] = [];
  private bands: Band[] = [];
  private stepMs = 10000;
  private drag: { x0: number; x1: number } | null = null;

  constructor(private opts: TimelineOptions) {
    this.el = document.createElement("div");
    this.el.className = "timeline";
    this.canvas = document.createElement("canvas");
    this.canvas.className = "timeline-canvas";
    this.el.append(this.canvas);
    this.canvas.addEventListener("mousedown", (e) => {
      const x = this.localX(e);
      this.drag = { x0: x, x1: x };
      const move = (ev: MouseEvent) => {
        if (this.drag) this.drag.x1 = this.localX(ev);
        this.render();
      };
      const up = () => {
        window.removeEventListener("mousemove", move);
        window.removeEventListener("mouseup", up);
        const d = this.drag;
        this.drag = null;
        this.render();
        if (d && Math.abs(d.x1 - d.x0) >= 3 && this.opts.onSelect) {
          const a = this.timeAt(Math.min(d.x0, d.x1));
          const b = this.timeAt(Math.max(d.x0, d.x1));
          this.opts.onSelect(Math.floor(a), Math.ceil(b));
        }
      };
      window.addEventListener("mousemove", move);
      window.addEventListener("mouseup", up);
    });
    if (typeof ResizeObserver !== "undefined") new ResizeObserver(() => this.render()).observe(this.el);
  }

  set(range: [number, number], series: TimelineSeries[], bands: Band[], stepMs: number): void {
    this.range = range;
    this.series = series;
    this.bands = bands;
    this.stepMs = stepMs;
    this.render();
  }

  private localX(e: MouseEvent): number {
    const r = this.canvas.getBoundingClientRect();
    return Math.min(Math.max(e.clientX - r.left, PAD_L), r.width);
  }

  private timeAt(x: number): number {
    const w = this.canvas.clientWidth - PAD_L;
    const [f, u] = this.range;
    return f + ((x - PAD_L) / Math.max(w, 1)) * (u - f);
  }

  render(): void {
    const dpr = window.devicePixelRatio || 1;
    const width = Math.max(this.el.clientWidth, 200);
    const height = this.opts.height ?? 110;
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(height * dpr);
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const [f, u] = this.range;
    const plotW = width - PAD_L;
    const plotH = height - PAD_B - 4;
    const xOf = (t: number) => PAD_L + ((t - f) / Math.max(u - f, 1)) * plotW;
    let max = 0;
    let points = 0;
    for (const s of this.series)
      for (const [t, v] of s.points) {
        if (t >= f - this.stepMs && t <= u) max = Math.max(max, v);
        points++;
      }
    this.canvas.dataset.points = String(points);
    this.canvas.dataset.max = String(max);
    for (const b of this.bands) {
      ctx.fillStyle = b.color;
      ctx.fillRect(xOf(b.from), 0, Math.max(xOf(b.until) - xOf(b.from), 2), plotH + 4);
    }
    ctx.strokeStyle = "#ccc";
    ctx.beginPath();
    ctx.moveTo(PAD_L, plotH + 4.5);
    ctx.lineTo(width, plotH + 4.5);
    ctx.stroke();
    const yOf = (v: number) => 4 + plotH - (max > 0 ? (v / max) * plotH : 0);
    const stepPx = Math.max((this.stepMs / Math.max(u - f, 1)) * plotW, 2);
    for (const s of this.series) {
      const pts = s.points.filter(([t]) => t >= f - this.stepMs && t <= u);
      if (this.series.length === 1) {
        ctx.fillStyle = s.color;
        for (const [t, v] of pts) ctx.fillRect(xOf(t), yOf(v), Math.max(stepPx - 1, 2), plotH + 4 - yOf(v));
      } else {
        ctx.strokeStyle = s.color;
        ctx.fillStyle = s.color;
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        pts.forEach(([t, v], i) => (i ? ctx.lineTo(xOf(t), yOf(v)) : ctx.moveTo(xOf(t), yOf(v))));
        ctx.stroke();
        for (const [t, v] of pts) ctx.fillRect(xOf(t) - 2.5, yOf(v) - 2.5, 5, 5);
      }
    }
    ctx.fillStyle = "#555";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "top";
    ctx.fillText(formatValue(max, this.opts.unit), 4, 2);
    ctx.fillText("0", 4, plotH - 8);
    for (const [t, label] of timeTicks(f, u, Math.floor(plotW / 110))) {
      ctx.fillText(label, xOf(t) - 16, plotH + 6);
      ctx.fillStyle = "#e4e4e4";
      ctx.fillRect(xOf(t), 4, 1, plotH);
      ctx.fillStyle = "#555";
    }
    if (this.drag) {
      ctx.fillStyle = "rgba(60,120,220,0.25)";
      const a = Math.min(this.drag.x0, this.drag.x1);
      ctx.fillRect(a, 0, Math.abs(this.drag.x1 - this.drag.x0), plotH + 4);
    }
  }
}

/** Evenly spaced round times between f and u with short labels. */
function timeTicks(f: number, u: number, n: number): [number, string][] {
  const span = u - f;
  if (span <= 0 || n <= 0) return [];
  const steps = [1e3, 5e3, 15e3, 30e3, 60e3, 300e3, 900e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 7 * 86400e3];
  const step = steps.find((s) => span / s <= n) ?? steps[steps.length - 1];
  const out: [number, string][] = [];
  const p = (x: number) => String(x).padStart(2, "0");
  for (let t = Math.ceil(f / step) * step; t <= u; t += step) {
    const d = new Date(t);
    const label = step >= 86400e3 ? `${d.getMonth() + 1}/${d.getDate()}` : `${p(d.getHours())}:${p(d.getMinutes())}${step < 60e3 ? ":" + p(d.getSeconds()) : ""}`;
    out.push([t, label]);
  }
  return out;
}
