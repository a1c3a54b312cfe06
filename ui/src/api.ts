// The public API the UI reads, the same Grafana's Pyroscope data source
// uses: Connect unary calls with JSON (proto3 JSON: int64 as strings) at
// /querier.v1.QuerierService/<Method>, and the legacy GETs for pprof
// downloads and the profile list. Every error comes back as an ApiError
// carrying the server's own message.
import { fromProtoJSON, type FlameGraphData } from "./flame/layout";

export class ApiError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

export interface ProfileType {
  ID: string;
  name: string;
  sampleType: string;
  sampleUnit: string;
  periodType: string;
  periodUnit: string;
}

export interface Series {
  labels: Record<string, string>;
  points: [number, number][]; // [unix ms, value]
}

export interface ProfileEntry {
  labels: Record<string, string>;
  timestamp: number; // ns (may lose precision past 2^53; the string is kept too)
  timestampNs: string;
  profileId: string;
  total: number;
}

export interface Selection {
  query: string; // type{selector}
  fromMs: number;
  untilMs: number;
}

function splitQuery(query: string): { profileTypeID: string; labelSelector: string } {
  const brace = query.indexOf("{");
  return brace < 0
    ? { profileTypeID: query.trim(), labelSelector: "{}" }
    : { profileTypeID: query.slice(0, brace).trim(), labelSelector: query.slice(brace) };
}

export class Api {
  constructor(private base = "", public tenant = "") {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (this.tenant) h["X-Scope-OrgID"] = this.tenant;
    return h;
  }

  private async fail(r: Response): Promise<never> {
    const body = await r.text();
    let msg = body.trim();
    try {
      const j = JSON.parse(body);
      if (j && typeof j.message === "string") msg = j.message;
    } catch {
      /* a plain-text error */
    }
    throw new ApiError(`${r.status} ${r.statusText || ""}: ${msg || "no message"}`.replace(/ +:/, ":"), r.status);
  }

  /** One Connect unary call in JSON. */
  async call<T>(method: string, body: unknown, signal?: AbortSignal): Promise<T> {
    const r = await fetch(`${this.base}/querier.v1.QuerierService/${method}`, {
      method: "POST",
      headers: this.headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
      signal,
    });
    if (!r.ok) await this.fail(r);
    return (await r.json()) as T;
  }

  async get(path: string, params: Record<string, string>, signal?: AbortSignal): Promise<Response> {
    const q = new URLSearchParams(params).toString();
    const r = await fetch(`${this.base}${path}?${q}`, { headers: this.headers(), signal });
    if (!r.ok) await this.fail(r);
    return r;
  }

  async profileTypes(fromMs: number, untilMs: number, signal?: AbortSignal): Promise<ProfileType[]> {
    const r = await this.call<{ profileTypes?: ProfileType[] }>(
      "ProfileTypes", { start: String(fromMs), end: String(untilMs) }, signal);
    return r.profileTypes ?? [];
  }

  async labelNames(matchers: string[], fromMs: number, untilMs: number, signal?: AbortSignal): Promise<string[]> {
    const r = await this.call<{ names?: string[] }>(
      "LabelNames", { matchers, start: String(fromMs), end: String(untilMs) }, signal);
    return r.names ?? [];
  }

  async labelValues(name: string, matchers: string[], fromMs: number, untilMs: number,
    signal?: AbortSignal): Promise<string[]> {
    const r = await this.call<{ names?: string[] }>(
      "LabelValues", { name, matchers, start: String(fromMs), end: String(untilMs) }, signal);
    return r.names ?? [];
  }

  async flamegraph(sel: Selection, maxNodes: number, signal?: AbortSignal): Promise<FlameGraphData> {
    const body: Record<string, unknown> = {
      ...splitQuery(sel.query), start: String(sel.fromMs), end: String(sel.untilMs),
    };
    if (maxNodes > 0) body.maxNodes = String(maxNodes);
    const r = await this.call<{ flamegraph?: Parameters<typeof fromProtoJSON>[0] }>(
      "SelectMergeStacktraces", body, signal);
    return fromProtoJSON(r.flamegraph ?? {});
  }

  async diff(left: Selection, right: Selection, maxNodes: number, signal?: AbortSignal): Promise<FlameGraphData> {
    const side = (s: Selection) => {
      const b: Record<string, unknown> = { ...splitQuery(s.query), start: String(s.fromMs), end: String(s.untilMs) };
      if (maxNodes > 0) b.maxNodes = String(maxNodes);
      return b;
    };
    const r = await this.call<{ flamegraph?: Parameters<typeof fromProtoJSON>[0] }>(
      "Diff", { left: side(left), right: side(right) }, signal);
    return fromProtoJSON(r.flamegraph ?? {}, true);
  }

  async series(sel: Selection, stepSeconds: number, groupBy: string[], signal?: AbortSignal,
    limit = 0): Promise<Series[]> {
    const body: Record<string, unknown> = {
      ...splitQuery(sel.query), start: String(sel.fromMs), end: String(sel.untilMs),
      step: stepSeconds, groupBy,
    };
    if (limit > 0) body.limit = String(limit);
    const r = await this.call<{
      series?: { labels?: { name: string; value: string }[]; points?: { value?: number; timestamp?: string }[] }[];
    }>("SelectSeries", body, signal);
    return (r.series ?? []).map((s) => ({
      labels: Object.fromEntries((s.labels ?? []).map((l) => [l.name, l.value])),
      points: (s.points ?? []).map((p) => [Number(p.timestamp ?? 0), Number(p.value ?? 0)] as [number, number]),
    }));
  }

  /** The newest profiles of a selection after skipping `offset` of them
   * (offset + limit at most 10000). */
  async profiles(sel: Selection, limit: number, signal?: AbortSignal, offset = 0): Promise<ProfileEntry[]> {
    const r = await this.get("/api/v1/profiles", {
      query: sel.query, from: String(sel.fromMs), until: String(sel.untilMs), limit: String(limit),
      offset: String(offset),
    }, signal);
    const text = await r.text();
    // keep each timestamp's exact digits: ns values exceed 2^53
    const exact = [...text.matchAll(/"timestamp":(\d+)/g)].map((m) => m[1]);
    const j = JSON.parse(text) as { profiles?: Omit<ProfileEntry, "timestampNs">[] };
    return (j.profiles ?? []).map((p, i) => ({ ...p, timestampNs: exact[i] ?? String(p.timestamp) }));
  }

  /** One profile as (gzipped) pprof bytes. */
  async profile(query: string, id: string, timestampNs: string, signal?: AbortSignal): Promise<ArrayBuffer> {
    const r = await this.get("/api/v1/profile", { query, id, timestamp: timestampNs }, signal);
    return r.arrayBuffer();
  }

  /** The merged profile of a selection as gzipped pprof (what `go tool
   * pprof` opens), from /pyroscope/render?format=pprof. */
  async mergedPprof(sel: Selection, signal?: AbortSignal): Promise<ArrayBuffer> {
    const r = await this.get("/pyroscope/render", {
      query: sel.query, from: String(sel.fromMs), until: String(sel.untilMs), format: "pprof",
    }, signal);
    return r.arrayBuffer();
  }

  /** The URL of the merged pprof (for a link a person can copy; without
   * a tenant header it answers for the default tenant only). */
  pprofUrl(sel: Selection): string {
    const q = new URLSearchParams({
      query: sel.query, from: String(sel.fromMs), until: String(sel.untilMs), format: "pprof",
    });
    return `${this.base}/pyroscope/render?${q}`;
  }
}
