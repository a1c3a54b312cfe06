// The whole page state lives in the URL, so a link opens what its sender
// saw: /?query=process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="myapp"}&from=now-1h&until=now
// Parameter names follow Pyroscope's (query, from, until, leftQuery, …,
// groupBy, maxNodes); hotpath adds view, search, fn, display, profile,
// offset.

export type View = "explore" | "compare" | "diff" | "tags" | "profiles";
export type Display = "both" | "flame" | "table" | "sandwich";

export interface AppState {
  view: View;
  query: string;
  from: string;
  until: string;
  leftQuery: string;
  leftFrom: string;
  leftUntil: string;
  rightQuery: string;
  rightFrom: string;
  rightUntil: string;
  /** Tag explorer: the label the selection is broken down by. */
  groupBy: string;
  /** Highlighted functions (substring, case-insensitive). */
  search: string;
  /** The function of the sandwich view. */
  fn: string;
  display: Display;
  /** 0: the server's default (8192). */
  maxNodes: number;
  /** X-Scope-OrgID; "" sends none. */
  tenant: string;
  /** An opened single profile: "<uuid>@<ns timestamp>". */
  profile: string;
  /** The profile list's page: how many of the newest profiles it skips. */
  offset: number;
}

export const VIEWS: View[] = ["explore", "compare", "diff", "tags", "profiles"];
const DISPLAYS: Display[] = ["both", "flame", "table", "sandwich"];

export function defaultState(): AppState {
  return {
    view: "explore",
    query: "",
    from: "now-1h",
    until: "now",
    leftQuery: "",
    leftFrom: "",
    leftUntil: "",
    rightQuery: "",
    rightFrom: "",
    rightUntil: "",
    groupBy: "",
    search: "",
    fn: "",
    display: "both",
    maxNodes: 0,
    tenant: "",
    profile: "",
    offset: 0,
  };
}

// The order parameters are written in: the ones a person reads first.
const ORDER: (keyof AppState)[] = [
  "view", "query", "from", "until", "leftQuery", "leftFrom", "leftUntil", "rightQuery", "rightFrom",
  "rightUntil", "groupBy", "search", "fn", "display", "maxNodes", "profile", "offset", "tenant",
];

/** Parses a location.search ("?a=b&…") into a state; unknown or invalid
 * values fall back to the defaults. */
export function parseState(search: string): AppState {
  const s = defaultState();
  const p = new URLSearchParams(search.startsWith("?") ? search.slice(1) : search);
  for (const key of ORDER) {
    const v = p.get(key);
    if (v === null) continue;
    if (key === "view") s.view = (VIEWS as string[]).includes(v) ? (v as View) : s.view;
    else if (key === "display") s.display = (DISPLAYS as string[]).includes(v) ? (v as Display) : s.display;
    else if (key === "maxNodes") s.maxNodes = /^\d{1,7}$/.test(v) ? Number(v) : 0;
    else if (key === "offset") s.offset = /^\d{1,5}$/.test(v) ? Number(v) : 0;
    else (s as unknown as Record<string, string>)[key] = v;
  }
  // Pyroscope's comparison links name the sides only
  if (!p.get("view") && p.get("leftQuery") && p.get("rightQuery")) s.view = "compare";
  return s;
}

/** Keeps the characters a selector is made of readable in the URL. */
function encode(v: string): string {
  return encodeURIComponent(v).replace(/%(3A|3D|7B|7D|2C|22|2F|40)/g, (m) => decodeURIComponent(m));
}

/** The state as a query string ("?…"), only what differs from the defaults. */
export function serializeState(s: AppState): string {
  const d = defaultState();
  const parts: string[] = [];
  for (const key of ORDER) {
    const v = s[key];
    // a view's time range is always written, so a link keeps its meaning
    const always = key === "from" || key === "until";
    if (!always && v === d[key]) continue;
    if (key === "view" && v === "explore") continue;
    parts.push(`${key}=${encode(String(v))}`);
  }
  return parts.length ? "?" + parts.join("&") : "";
}

/** A state with some fields changed (the input is not modified). */
export function update(s: AppState, changes: Partial<AppState>): AppState {
  return { ...s, ...changes };
}

/** The opened single profile's ID and timestamp, or null. */
export function parseProfileRef(v: string): { id: string; timestampNs: string } | null {
  const m = /^([0-9a-fA-F-]{32,36})@(\d{1,20})$/.exec(v);
  return m ? { id: m[1], timestampNs: m[2] } : null;
}
