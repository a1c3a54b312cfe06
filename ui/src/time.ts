// Time ranges as Pyroscope's URLs write them: "now", "now-1h",
// "now-30m", or an absolute unix time (seconds, or ms/µs/ns by length).

const UNITS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3, y: 365 * 86400e3 };

/** A time expression in unix ms, or NaN when it cannot be read. */
export function parseTime(s: string, nowMs: number): number {
  const t = s.trim();
  if (t === "" || t === "now") return t === "" ? NaN : nowMs;
  const rel = /^now\s*([+-])\s*(\d+)\s*([smhdwy])$/.exec(t);
  if (rel) {
    const d = Number(rel[2]) * UNITS[rel[3]];
    return rel[1] === "-" ? nowMs - d : nowMs + d;
  }
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (t.length <= 10) return n * 1000;
    if (t.length <= 13) return n;
    if (t.length <= 16) return Math.floor(n / 1e3);
    return Math.floor(n / 1e6);
  }
  const d = Date.parse(t);
  return Number.isNaN(d) ? NaN : d;
}

/** A range [from, until] in unix ms; throws with a readable message. */
export function parseRange(from: string, until: string, nowMs: number): [number, number] {
  const f = parseTime(from, nowMs);
  const u = parseTime(until, nowMs);
  if (Number.isNaN(f)) throw new Error(`cannot read the start time "${from}" (try now-1h, or unix seconds)`);
  if (Number.isNaN(u)) throw new Error(`cannot read the end time "${until}" (try now, or unix seconds)`);
  if (f > u) throw new Error(`the start time ${from} is after the end time ${until}`);
  return [f, u];
}

/** An absolute unix time in seconds, as the URL keeps it. */
export function toUnixSeconds(ms: number): string {
  return String(Math.floor(ms / 1000));
}

export const PRESETS: { label: string; from: string }[] = [
  { label: "Last 5 minutes", from: "now-5m" },
  { label: "Last 15 minutes", from: "now-15m" },
  { label: "Last 30 minutes", from: "now-30m" },
  { label: "Last 1 hour", from: "now-1h" },
  { label: "Last 3 hours", from: "now-3h" },
  { label: "Last 6 hours", from: "now-6h" },
  { label: "Last 12 hours", from: "now-12h" },
  { label: "Last 24 hours", from: "now-24h" },
  { label: "Last 2 days", from: "now-2d" },
  { label: "Last 7 days", from: "now-7d" },
  { label: "Last 30 days", from: "now-30d" },
];

const NICE_STEPS = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800];

/** The time series step in seconds for a range: about `points` points,
 * rounded up to a readable step, at least 10 s (profiles usually come
 * every 10–15 s). */
export function stepFor(fromMs: number, untilMs: number, points = 240): number {
  const raw = (untilMs - fromMs) / 1000 / points;
  for (const s of NICE_STEPS) if (s >= raw && s >= 10) return s;
  return NICE_STEPS[NICE_STEPS.length - 1];
}

