// The top-functions table: self and total per function, sortable by any
// column, filtered by the search text; a click selects a function (it is
// highlighted in the flame graph and becomes the sandwich view's). Exact
// values sit in data-self / data-total for scripts and tests.
import { h } from "../dom";
import { relativeChange } from "../flame/colors";
import type { FnStat } from "../flame/tree";
import { formatChange, formatPercent, formatValue, type Unit } from "../format";

type Key = "name" | "self" | "total" | "lSelf" | "rSelf" | "change";

const MAX_ROWS = 500;

export interface TopTableOptions {
  unit: Unit;
  total: number;
  diff?: { leftTicks: number; rightTicks: number };
  onSelect?: (name: string) => void;
}

export class TopTable {
  readonly el: HTMLDivElement;
  private sortKey: Key = "self";
  private desc = true;
  private filter = "";
  private selected = "";

  constructor(private stats: FnStat[], private opts: TopTableOptions) {
    this.el = h("div", { class: "top-table" });
    this.render();
  }

  setFilter(s: string): void {
    this.filter = s.trim().toLowerCase();
    this.render();
  }

  setSelected(name: string): void {
    this.selected = name;
    this.render();
  }

  private change(s: FnStat): number {
    const d = this.opts.diff!;
    return relativeChange(s.lSelf, s.rSelf, d.leftTicks, d.rightTicks);
  }

  private value(s: FnStat, k: Key): number | string {
    return k === "name" ? s.name : k === "change" ? this.change(s) : s[k];
  }

  private sorted(): FnStat[] {
    const rows = this.filter ? this.stats.filter((s) => s.name.toLowerCase().includes(this.filter)) : [...this.stats];
    const k = this.sortKey;
    const dir = this.desc ? -1 : 1;
    rows.sort((a, b) => {
      const x = this.value(a, k);
      const y = this.value(b, k);
      return (x < y ? -1 : x > y ? 1 : 0) * dir || (a.name < b.name ? -1 : 1);
    });
    return rows;
  }

  private header(label: string, k: Key): HTMLElement {
    const arrow = this.sortKey === k ? (this.desc ? " ▼" : " ▲") : "";
    return h("th", {
      class: `sortable col-${k}`,
      "data-key": k,
      onclick: () => {
        if (this.sortKey === k) this.desc = !this.desc;
        else {
          this.sortKey = k;
          this.desc = k !== "name";
        }
        this.render();
      },
    }, label + arrow);
  }

  render(): void {
    const u = this.opts.unit;
    const diff = this.opts.diff;
    const rows = this.sorted();
    const head = diff
      ? h("tr", {}, this.header("Function", "name"), this.header("Baseline self", "lSelf"),
        this.header("Comparison self", "rSelf"), this.header("Change", "change"))
      : h("tr", {}, this.header("Function", "name"), this.header("Self", "self"), this.header("Total", "total"));
    const body = h("tbody", {});
    for (const s of rows.slice(0, MAX_ROWS)) {
      const tr = h("tr", {
        class: s.name === this.selected ? "selected" : "",
        "data-name": s.name,
        "data-self": String(s.self),
        "data-total": String(s.total),
        title: s.name,
        onclick: () => this.opts.onSelect?.(s.name),
      });
      tr.append(h("td", { class: "fn" }, s.name));
      if (diff) {
        const c = this.change(s);
        tr.append(
          h("td", { class: "num" }, `${formatValue(s.lSelf, u)} (${formatPercent(s.lSelf, diff.leftTicks)})`),
          h("td", { class: "num" }, `${formatValue(s.rSelf, u)} (${formatPercent(s.rSelf, diff.rightTicks)})`),
          h("td", { class: `num ${c > 0 ? "worse" : c < 0 ? "better" : ""}` }, formatChange(c)),
        );
      } else {
        tr.append(
          h("td", { class: "num" }, h("span", { class: "bar", style: `width:${pct(s.self, this.opts.total)}%` }),
            `${formatValue(s.self, u)} (${formatPercent(s.self, this.opts.total)})`),
          h("td", { class: "num" }, h("span", { class: "bar", style: `width:${pct(s.total, this.opts.total)}%` }),
            `${formatValue(s.total, u)} (${formatPercent(s.total, this.opts.total)})`),
        );
      }
      body.append(tr);
    }
    const note = rows.length > MAX_ROWS ? h("div", { class: "note" }, `showing ${MAX_ROWS} of ${rows.length} functions; search to narrow`) : null;
    this.el.replaceChildren(h("table", {}, h("thead", {}, head), body), note ?? "");
  }
}

function pct(v: number, total: number): string {
  return total > 0 ? Math.min(100, (v / total) * 100).toFixed(1) : "0";
}
