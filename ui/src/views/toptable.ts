// The top-functions table: self and total per function (a diff: self on
// each side, and the change of self and of total), sortable by any
// column, filtered by the search text; a click selects a function (it is
// highlighted in the flame graph and becomes the sandwich view's). Exact
// values sit in data-self / data-total (a diff: data-l-self, data-r-self,
// data-self-change, data-total-change) for scripts and tests.
import { h } from "../dom";
import { diffRows, type DiffRow, type FnStat } from "../flame/tree";
import { formatChange, formatPercent, formatValue, type Unit } from "../format";

type Row = FnStat | DiffRow;
type Key = "name" | "self" | "total" | "lSelf" | "rSelf" | "selfChange" | "totalChange";

const MAX_ROWS = 500;

export interface TopTableOptions {
  unit: Unit;
  total: number;
  diff?: { leftTicks: number; rightTicks: number };
  onSelect?: (name: string) => void;
}

export class TopTable {
  readonly el: HTMLDivElement;
  private rows: Row[];
  /** null: the rows' own order (a diff's: the largest share on either side first). */
  private sortKey: Key | null;
  private desc = true;
  private filter = "";
  private selected = "";

  constructor(stats: FnStat[], private opts: TopTableOptions) {
    const d = opts.diff;
    this.rows = d ? diffRows(stats, d.leftTicks, d.rightTicks) : stats;
    this.sortKey = d ? null : "self";
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

  private sorted(): Row[] {
    const rows = this.filter ? this.rows.filter((s) => s.name.toLowerCase().includes(this.filter)) : [...this.rows];
    const k = this.sortKey;
    if (k === null) return rows;
    const dir = this.desc ? -1 : 1;
    rows.sort((a, b) => {
      const x = valueOf(a, k);
      const y = valueOf(b, k);
      return (x < y ? -1 : x > y ? 1 : 0) * dir || (a.name < b.name ? -1 : 1);
    });
    return rows;
  }

  private header(label: string, k: Key, title?: string): HTMLElement {
    const arrow = this.sortKey === k ? (this.desc ? " ▼" : " ▲") : "";
    return h("th", {
      class: `sortable col-${k}`,
      "data-key": k,
      title,
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
    const diff = this.opts.diff;
    const rows = this.sorted();
    const share = "the change of the function's share of each side's total";
    const head = diff
      ? h("tr", {}, this.header("Function", "name"), this.header("Baseline self", "lSelf"),
        this.header("Comparison self", "rSelf"), this.header("Self change", "selfChange", `Self: ${share}`),
        this.header("Total change", "totalChange", `Total: ${share}`))
      : h("tr", {}, this.header("Function", "name"), this.header("Self", "self"), this.header("Total", "total"));
    const body = h("tbody", {});
    for (const s of rows.slice(0, MAX_ROWS)) {
      const tr = h("tr", {
        class: s.name === this.selected ? "selected" : "",
        "data-name": s.name,
        title: s.name,
        onclick: () => this.opts.onSelect?.(s.name),
      });
      tr.append(h("td", { class: "fn" }, s.name));
      if (isDiffRow(s)) this.diffCells(tr, s);
      else this.singleCells(tr, s);
      body.append(tr);
    }
    const note = rows.length > MAX_ROWS ? h("div", { class: "note" }, `showing ${MAX_ROWS} of ${rows.length} functions; search to narrow`) : null;
    this.el.replaceChildren(h("table", {}, h("thead", {}, head), body), note ?? "");
  }

  private singleCells(tr: HTMLElement, s: FnStat): void {
    const { unit: u, total } = this.opts;
    Object.assign(tr.dataset, { self: String(s.self), total: String(s.total) });
    tr.append(
      h("td", { class: "num" }, h("span", { class: "bar", style: `width:${pct(s.self, total)}%` }),
        `${formatValue(s.self, u)} (${formatPercent(s.self, total)})`),
      h("td", { class: "num" }, h("span", { class: "bar", style: `width:${pct(s.total, total)}%` }),
        `${formatValue(s.total, u)} (${formatPercent(s.total, total)})`),
    );
  }

  private diffCells(tr: HTMLElement, r: DiffRow): void {
    const u = this.opts.unit;
    Object.assign(tr.dataset, {
      lSelf: String(r.lSelf), rSelf: String(r.rSelf), selfChange: String(r.selfChange), totalChange: String(r.totalChange),
    });
    tr.append(
      h("td", { class: "num" }, `${formatValue(r.lSelf, u)} (${formatShare(r.lSelfShare)})`),
      h("td", { class: "num" }, `${formatValue(r.rSelf, u)} (${formatShare(r.rSelfShare)})`),
      changeCell(r.selfChange, r.lSelfShare, r.rSelfShare),
      changeCell(r.totalChange, r.lTotalShare, r.rTotalShare),
    );
  }
}

function isDiffRow(r: Row): r is DiffRow {
  return "selfChange" in r;
}

/** A row's value for sorting. */
function valueOf(r: Row, k: Key): number | string {
  return (r as unknown as Record<Key, number | string>)[k];
}

/** A share already in percent, as formatPercent writes one. */
function formatShare(p: number): string {
  return formatPercent(p, 100);
}

/** A change of share: red when the comparison's share is larger, green
 * when smaller, a dash when the function has none on either side; the
 * title gives both shares. */
function changeCell(change: number, lShare: number, rShare: number): HTMLElement {
  const none = lShare === 0 && rShare === 0;
  return h("td", {
    class: `num ${change > 0 ? "worse" : change < 0 ? "better" : ""}`,
    title: `${formatShare(lShare)} of the baseline → ${formatShare(rShare)} of the comparison`,
  }, none ? "–" : formatChange(change));
}

function pct(v: number, total: number): string {
  return total > 0 ? Math.min(100, (v / total) * 100).toFixed(1) : "0";
}
