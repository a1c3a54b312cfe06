// Values as people read them: the profile type's sample unit decides
// whether a number is a duration, a size or a count.

export type Unit = "nanoseconds" | "bytes" | "count";

/** The unit of a profile type ID (name:sample_type:sample_unit:…). */
export function unitOf(typeId: string): Unit {
  const u = typeId.split(":")[2] ?? "";
  if (u === "nanoseconds") return "nanoseconds";
  if (u === "bytes") return "bytes";
  return "count";
}

function fixed(v: number): string {
  const a = Math.abs(v);
  const s = a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
  return s.replace(/\.0+$|(\.\d*?)0+$/, "$1");
}

const TIME = [
  [3600e9, "h"], [60e9, "min"], [1e9, "s"], [1e6, "ms"], [1e3, "µs"],
] as const;
const SIZE = [
  [2 ** 40, "TiB"], [2 ** 30, "GiB"], [2 ** 20, "MiB"], [2 ** 10, "KiB"],
] as const;
const COUNT = [
  [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"],
] as const;

/** A value with its unit, three significant digits: "1.23 s", "4.5 MiB", "12.3k". */
export function formatValue(v: number, unit: Unit): string {
  const table = unit === "nanoseconds" ? TIME : unit === "bytes" ? SIZE : COUNT;
  const a = Math.abs(v);
  for (const [k, name] of table) {
    if (a >= k) return `${fixed(v / k)}${unit === "count" ? "" : " "}${name}`;
  }
  if (unit === "nanoseconds") return `${fixed(v)} ns`;
  if (unit === "bytes") return `${fixed(v)} B`;
  return fixed(v);
}

/** A share as a percentage, "12.34%". */
export function formatPercent(part: number, whole: number): string {
  if (whole <= 0) return "0%";
  const p = (part / whole) * 100;
  return `${p >= 10 ? p.toFixed(1) : p.toFixed(2)}%`;
}

/** An integer with thousands separators (exact, for tooltips). */
export function formatExact(v: number): string {
  return Math.round(v).toLocaleString("en-US");
}

/** A change in percent, "+12.5%", "-3%", "new". */
export function formatChange(change: number): string {
  if (change === Infinity) return "new";
  if (change === 0) return "±0%";
  const s = Math.abs(change) >= 10 ? change.toFixed(0) : change.toFixed(1);
  return `${change > 0 ? "+" : ""}${s}%`;
}

/** A unix-ms time as local "YYYY-MM-DD HH:MM:SS". */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
