#!/usr/bin/env python3
"""The query API: Connect methods in application/proto and application/json,
SelectMergeProfile opened by `go tool pprof` with the reference figures,
label and profile-type listings, max_nodes with an "other" node, SelectSeries
limit keeping the largest series, the StackTraceSelector (call site, Go PGO), render's flame graph covering exactly
[from, until], render's DOT call graph against pprof's figures and the flame
graph, time range and step validation, the querier's body limit, and
the legacy label endpoints."""
import gzip
import json
import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.parse

from harness import (CORPUS, Checks, Cluster, connect_json, enc_varint, go_env, http, multipart, ref_top,
                     ref_types, retime, type_id)

c = Checks()
cl = Cluster(ingesters=3)
tmp = tempfile.mkdtemp(prefix="hp-qa-")
CPU = os.path.join(CORPUS, "go", "compile_ssa.cpu.pb.gz")
HEAP = os.path.join(CORPUS, "go", "go_mix.heap.pb.gz")


def push(f, name, ts, copies=1):
    for k in range(copies):
        data = retime(open(f, "rb").read(), ts + k)
        mp, ct = multipart([("profile", "profile.pprof", data)])
        status, body, _ = http("POST", f"{cl.dist}/ingest?" + urllib.parse.urlencode({"name": name}), mp,
                               {"Content-Type": ct})
        c.check(status == 200, f"push {f} -> {status} {body[:200]!r}")


def proto_select(tid, sel, start, end, max_nodes=0):
    """A SelectMergeProfile/SelectMergeStacktraces request, hand-encoded."""
    def s(f, x):
        x = x.encode()
        return enc_varint(f << 3 | 2) + enc_varint(len(x)) + x

    def i(f, x):
        return enc_varint(f << 3) + enc_varint(x)
    return s(1, tid) + s(2, sel) + i(3, start) + i(4, end) + (i(5, max_nodes) if max_nodes else b"")


DOT_STR = r'"((?:[^"\\]|\\.)*)"'
DOT_NODE = re.compile(r'N(\d+) \[label=' + DOT_STR + r' id="node\1" fontsize=\d+ shape=box tooltip=' + DOT_STR
                      + r' color="#[0-9a-f]{6}" fillcolor="#[0-9a-f]{6}"\]$')
DOT_EDGE = re.compile(r'N(\d+) -> N(\d+) \[label=" ([^"]*)"(?: weight=\d+)?(?: penwidth=\d+)? color="#[0-9a-f]{6}" '
                      r'tooltip=' + DOT_STR + r' labeltooltip=' + DOT_STR + r'( style="dotted")?\]$')
DOT_VALUES = re.compile(r'\\n(?:0|(\d+) \([\d.e+-]+%\))(?:(?:\\n| )of (\d+) \([\d.e+-]+%\))?$')


def dot_unescape(x):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "l" else m.group(1), x)


def parse_dot(text):
    """A render?format=dot answer taken apart by pprof's grammar (count units):
    (legend, {node id: (function, flat, cum)}, [(src, dst, weight, dotted)], lines that fit no form)."""
    lines = text.split("\n")
    bad = [] if lines[:2] == ['digraph "unnamed" {', 'node [style=filled fillcolor="#f8f8f8"]'] and lines[-2:] == ["}", ""] \
        else ["header/footer"]
    legend, nodes, edges = "", {}, []
    for ln in lines[2:-2]:
        m = re.match(r'subgraph cluster_L \{ ' + DOT_STR + r' \[shape=box fontsize=16 label=' + DOT_STR + r'\] \}$', ln)
        if m and not legend:
            legend = dot_unescape(m.group(2))
            continue
        m = DOT_NODE.match(ln)
        v = DOT_VALUES.search(m.group(2)) if m else None
        if m and v:
            name = dot_unescape(re.sub(r" \([^()]*\)$", "", m.group(3)))
            flat = int(v.group(1) or 0)
            nodes[int(m.group(1))] = (name, flat, int(v.group(2) or flat))
            continue
        m = DOT_EDGE.match(ln)
        if m and m.group(4) == m.group(5) and m.group(3).isdigit():
            edges.append((int(m.group(1)), int(m.group(2)), int(m.group(3)), bool(m.group(6))))
            continue
        bad.append(ln)
    return legend, nodes, edges, bad


def flame_paths(fb):
    """(function path root first, self) for every node of a flamebearer with a self value."""
    names, levels, parents, out = fb["names"], fb["levels"], [], []
    for l, level in enumerate(levels):
        nodes, x = [], 0
        for i in range(0, len(level), 4):
            x += level[i]
            up = None
            if l > 0:  # the node above whose span holds x
                above = parents[l - 1]
                lo, hi = 0, len(above) - 1
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    lo, hi = (mid, hi) if above[mid][0] <= x else (lo, mid - 1)
                up = above[lo]
            node = (x, names[level[i + 3]], up)
            nodes.append(node)
            if l > 0 and level[i + 2] > 0:
                path, n = [], node
                while n and n[2] is not None:
                    path.append(n[1])
                    n = n[2]
                out.append((path[::-1], level[i + 2]))
            x += level[i + 1]
        parents.append(nodes)
    return out


try:
    now = time.time_ns()
    push(CPU, "qa.cpu{env=prod,region=eu}", now, copies=2)
    push(HEAP, "qa.heap{env=dev}", now)
    start, end = now // 10**6 - 3600_000, now // 10**6 + 300_000

    # ProfileTypes in both codecs.
    status, pt = connect_json(cl.qry, "ProfileTypes", {"start": str(start), "end": str(end)})
    ids = sorted(t["ID"] for t in pt.get("profileTypes", []))
    c.check(status == 200 and "process_cpu:cpu:nanoseconds:cpu:nanoseconds" in ids
            and "memory:inuse_space:bytes:space:bytes" in ids, f"ProfileTypes json -> {status} {pt}")
    status, body, hdrs = http("POST", f"{cl.qry}/querier.v1.QuerierService/ProfileTypes",
                              enc_varint(1 << 3) + enc_varint(start) + enc_varint(2 << 3) + enc_varint(end),
                              {"Content-Type": "application/proto"})
    ctype = {k.lower(): v for k, v in hdrs.items()}.get("content-type", "")
    c.check(status == 200 and ctype.startswith("application/proto")
            and b"process_cpu:samples:count:cpu:nanoseconds" in body, f"ProfileTypes proto -> {status}")

    # LabelNames / LabelValues, with and without matchers.
    status, ln = connect_json(cl.qry, "LabelNames", {"start": str(start), "end": str(end)})
    c.check(status == 200 and {"service_name", "env", "region", "__profile_type__"} <= set(ln.get("names", [])),
            f"LabelNames -> {status} {ln}")
    status, lv = connect_json(cl.qry, "LabelValues", {"name": "env", "start": str(start), "end": str(end)})
    c.check(status == 200 and lv.get("names") == ["dev", "prod"], f"LabelValues(env) -> {status} {lv}")
    status, lv = connect_json(cl.qry, "LabelValues", {"name": "service_name", "matchers": ['{env="prod"}'],
                                                      "start": str(start), "end": str(end)})
    c.check(status == 200 and lv.get("names") == ["qa.cpu"], f"LabelValues with matcher -> {status} {lv}")
    status, lv = connect_json(cl.qry, "LabelValues", {"name": "env", "matchers": ['{env="prod"'],
                                                      "start": str(start), "end": str(end)})
    c.check(status == 400 and lv.get("code") == "invalid_argument", f"bad matcher -> {status} {lv}")

    # hotpath's extensions: cardinality with the names (exact across the
    # 3 replicas: it must equal the number of values LabelValues lists),
    # and LabelValues with a limit and a prefix.
    status, lc = connect_json(cl.qry, "LabelNames", {"start": str(start), "end": str(end),
                                                     "includeCardinality": True})
    card = dict(zip(lc.get("names", []), lc.get("estimatedCardinality", [])))
    c.check(status == 200 and card.get("env") == "2" and card.get("region") == "1"
            and card.get("service_name") == "2" and "valueHashes" not in lc,
            f"LabelNames with cardinality -> {status} {lc}")
    agree = []
    for name, n in card.items():
        st, vals = connect_json(cl.qry, "LabelValues", {"name": name, "start": str(start), "end": str(end)})
        agree.append((name, int(n), len(vals.get("names", [])) if st == 200 else None))
    c.check(agree and all(n == m for _, n, m in agree), f"every cardinality equals its LabelValues count: {agree}")
    status, all_types = connect_json(cl.qry, "LabelValues", {"name": "__profile_type__", "start": str(start),
                                                             "end": str(end)})
    all_types = all_types.get("names", [])
    status, lv = connect_json(cl.qry, "LabelValues", {"name": "__profile_type__", "start": str(start),
                                                      "end": str(end), "limit": "2"})
    c.check(status == 200 and len(all_types) > 2 and lv.get("names") == all_types[:2] and lv.get("truncated") is True,
            f"LabelValues limit 2 -> the first 2 of {all_types}, truncated: {status} {lv}")
    status, lv = connect_json(cl.qry, "LabelValues", {"name": "__profile_type__", "start": str(start),
                                                      "end": str(end), "prefix": "memory:"})
    mem = [t for t in all_types if t.startswith("memory:")]
    c.check(status == 200 and mem and lv.get("names") == mem and not lv.get("truncated"),
            f"LabelValues prefix memory: -> {status} {lv}")
    status, lv = connect_json(cl.qry, "LabelValues", {"name": "__profile_type__", "start": str(start),
                                                      "end": str(end), "prefix": "memory:", "limit": str(len(mem))})
    c.check(status == 200 and lv.get("names") == mem and not lv.get("truncated"),
            f"a limit the values fit in is not a truncation: {status} {lv}")
    status, lv = connect_json(cl.qry, "LabelValues", {"name": "env", "limit": "-1"})
    c.check(status == 400 and "limit" in lv.get("message", ""), f"a negative limit -> {status} {lv}")

    status, sr = connect_json(cl.qry, "Series", {"matchers": ['{service_name="qa.heap"}'], "labelNames": ["env", "__profile_type__"],
                                                 "start": str(start), "end": str(end)})
    c.check(status == 200 and len(sr.get("labelsSet", [])) == 4, f"Series -> {status} {sr}")

    # SelectMergeStacktraces: totals, max_nodes with an "other" node, JSON.
    tid = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
    total, flat = ref_top(CPU + ".ref/top.1.cpu.txt")
    status, fg = connect_json(cl.qry, "SelectMergeStacktraces", {"profileTypeID": tid, "labelSelector": '{service_name="qa.cpu"}',
                                                                 "start": str(start), "end": str(end), "maxNodes": "16"})
    fgr = fg.get("flamegraph", {})
    c.check(status == 200 and int(fgr.get("total", 0)) == 2 * total, f"SelectMergeStacktraces total {fgr.get('total')} != {2 * total}")
    names = fgr.get("names", [])
    c.check("other" in names, "max_nodes=16 yields an 'other' node")
    nodes = sum(len(l.get("values", [])) // 4 for l in fgr.get("levels", []))
    c.check(0 < nodes <= 16 * 3, f"max_nodes bounds the graph: {nodes} nodes")
    selfs = sum(int(v) for l in fgr.get("levels", []) for v in l.get("values", [])[2::4])
    c.check(selfs == 2 * total, f"self values add up to the total: {selfs} != {2 * total}")

    # Regex matchers: anchored RE2, the same answer as the equality.
    for sel in (r'{service_name=~"qa\\.c.u"}', '{service_name=~"qa.cpu|nothing", env!~"x.*"}'):
        status, fg = connect_json(cl.qry, "SelectMergeStacktraces", {"profileTypeID": tid, "labelSelector": sel,
                                                                     "start": str(start), "end": str(end)})
        got = int(fg.get("flamegraph", {}).get("total", 0)) if status == 200 else status
        c.check(got == 2 * total, f"regex selector {sel}: total {got}, want {2 * total}")
    status, fg = connect_json(cl.qry, "SelectMergeStacktraces", {"profileTypeID": tid, "labelSelector": '{service_name=~"qa"}',
                                                                 "start": str(start), "end": str(end)})
    c.check(status == 200 and int(fg.get("flamegraph", {}).get("total", 0)) == 0, "regexes are anchored: qa matches nothing")
    status, r = connect_json(cl.qry, "SelectMergeStacktraces", {"profileTypeID": tid, "labelSelector": '{service_name=~"qa("}',
                                                                "start": str(start), "end": str(end)})
    c.check(status == 400 and "invalid regex for label 'service_name'" in r.get("message", ""),
            f"a bad regex is 400 with its reason: {status} {r}")

    # SelectMergeProfile (proto): go tool pprof opens it and agrees.
    status, body, _ = http("POST", f"{cl.qry}/querier.v1.QuerierService/SelectMergeProfile",
                           proto_select(tid, '{service_name="qa.cpu"}', start, end), {"Content-Type": "application/proto"})
    out = os.path.join(tmp, "merged.pb")
    open(out, "wb").write(body)
    c.check(status == 200, f"SelectMergeProfile -> {status} {body[:200]!r}")
    top = subprocess.run(["go", "tool", "pprof", "-top", "-nodecount=1000000", "-nodefraction=0", "-edgefraction=0",
                          "-symbolize=none", "-unit=ns", out],
                         capture_output=True, text=True, env=go_env(tmp), timeout=120)
    m = re.search(r"of (\d+)ns total", top.stdout)
    c.check(m is not None and int(m.group(1)) == 2 * total, f"go tool pprof total: {top.stdout[:300]} {top.stderr[:300]}")
    open(os.path.join(tmp, "top.txt"), "w").write(top.stdout)
    gtotal, gflat = ref_top(os.path.join(tmp, "top.txt"))
    worst = [fn for fn, v in flat.items() if gflat.get(fn, 0) != 2 * v and not fn.startswith("0x")]
    c.check(not worst, f"per-function flat values differ for {worst[:5]}")

    # StackTraceSelector: a call site (function names from the root) narrows the flame graph, the
    # series and the pprof to the stacks under it; Go PGO trims pprof stacks to their leaf-most
    # locations. Expected figures come from the whole flame graph's paths.
    base = {"profileTypeID": tid, "labelSelector": '{service_name="qa.cpu"}', "start": str(start), "end": str(end)}
    status, fg = connect_json(cl.qry, "SelectMergeStacktraces", dict(base, maxNodes="1000000"))
    fgr = fg.get("flamegraph", {})
    paths = flame_paths({"names": fgr.get("names", []),
                         "levels": [[int(v) for v in lv.get("values", [])] for lv in fgr.get("levels", [])]})
    under = {}
    for path, v in paths:
        if len(path) >= 2:
            under[tuple(path[:2])] = under.get(tuple(path[:2]), 0) + v
    site, want = max(under.items(), key=lambda kv: kv[1]) if under else (("?", "?"), -1)
    sts = {"callSite": [{"name": n} for n in site]}
    c.check(0 < want < 2 * total, f"a call site two frames deep holds part of the profile: {site} {want}")
    status, fg = connect_json(cl.qry, "SelectMergeStacktraces", dict(base, stackTraceSelector=sts))
    got = fg.get("flamegraph", {})
    c.check(status == 200 and int(got.get("total", 0)) == want and got.get("names", [None, None])[1:2] == [site[0]],
            f"SelectMergeStacktraces under {site}: {status} total {got.get('total')} want {want}")
    status, ss = connect_json(cl.qry, "SelectSeries", dict(base, step=3600, stackTraceSelector=sts))
    got = sum(p.get("value", 0) for s in ss.get("series", []) for p in s.get("points", []))
    c.check(status == 200 and got == want, f"SelectSeries under {site}: {status} {got} want {want}")
    status, pp = connect_json(cl.qry, "SelectMergeProfile", dict(base, stackTraceSelector=sts))
    got = sum(int(v) for smp in pp.get("sample", []) for v in smp.get("value", []))
    c.check(status == 200 and got == want, f"SelectMergeProfile under {site}: {status} {got} want {want}")
    status, pp = connect_json(cl.qry, "SelectMergeProfile",
                              dict(base, stackTraceSelector={"goPgo": {"keepLocations": 3, "aggregateCallees": True}}))
    smp = pp.get("sample", [])
    got = sum(int(v) for x in smp for v in x.get("value", []))
    c.check(status == 200 and got == 2 * total and smp and all(len(x.get("locationId", [])) <= 3 for x in smp),
            f"SelectMergeProfile with Go PGO keep_locations 3: {status} total {got}, "
            f"deepest {max((len(x.get('locationId', [])) for x in smp), default=None)}")
    # SelectMergeProfile with max_nodes: the call tree cut to its largest nodes, the rest under
    # "other", the total unchanged; without max_nodes the profile is whole.
    status, whole = connect_json(cl.qry, "SelectMergeProfile", base)
    status2, cut = connect_json(cl.qry, "SelectMergeProfile", dict(base, maxNodes="50"))
    names = lambda pp: {pp.get("stringTable", [])[int(f.get("name", 0))] for f in pp.get("function", [])}
    tot = lambda pp: sum(int(v) for x in pp.get("sample", []) for v in x.get("value", []))
    c.check(status == 200 and status2 == 200 and tot(whole) == tot(cut) == 2 * total
            and "other" in names(cut) and "other" not in names(whole)
            and len(cut.get("sample", [])) < len(whole.get("sample", [])),
            f"SelectMergeProfile maxNodes 50: {status2} total {tot(cut)} vs {tot(whole)}, "
            f"samples {len(cut.get('sample', []))} vs {len(whole.get('sample', []))}")
    status, r = connect_json(cl.qry, "SelectMergeStacktraces",
                             dict(base, stackTraceSelector={"callSite": [{"name": "f"}] * 1025}))
    c.check(status == 400 and "call_site" in r.get("message", ""), f"a call site too deep: {status} {r}")

    # AnalyzeQuery: what a query would read before it runs: 3 ingesters asked, RF 1 so one of them holds
    # qa.cpu's CPU series with its 2 profiles, and no replicas to deduplicate.
    status, aq = connect_json(cl.qry, "AnalyzeQuery", {"start": str(start), "end": str(end),
                                                       "query": tid + '{service_name="qa.cpu"}'})
    sc = {x.get("componentType"): x for x in aq.get("queryScopes", [])}
    short = sc.get("Short term storage", {})
    imp = aq.get("queryImpact", {})
    c.check(status == 200 and short.get("componentCount") == "3" and short.get("seriesCount") == "1"
            and short.get("profileCount") == "2" and int(short.get("sampleCount", 0)) > 0
            and int(imp.get("totalBytesInTimeRange", 0)) >= int(short.get("profileBytes", 0)) > 0
            and imp.get("totalQueriedSeries") == "1" and not imp.get("deduplicationNeeded")
            and "Long term storage" in sc,
            f"AnalyzeQuery of qa.cpu's CPU series: {status} {aq}")
    status, aq2 = connect_json(cl.qry, "AnalyzeQuery", {"start": str(start), "end": str(end),
                                                        "query": '{service_name=~"qa.*"} '})
    c.check(status == 200 and int(aq2.get("queryImpact", {}).get("totalQueriedSeries", 0)) > 1,
            f"AnalyzeQuery of a selector alone counts every type's series: {status} {aq2}")
    status, bad = connect_json(cl.qry, "AnalyzeQuery", {"start": str(start), "end": str(end), "query": "{a=~\"(\"}"})
    c.check(status == 400, f"AnalyzeQuery with a bad selector: {status} {bad}")

    # GetProfileStats: data, and the oldest and newest profile times (ms).
    status, ps = connect_json(cl.qry, "GetProfileStats", {})
    oldest, newest = int(ps.get("oldestProfileTime", 0)), int(ps.get("newestProfileTime", 0))
    c.check(status == 200 and ps.get("dataIngested") is True and start <= oldest <= newest <= end,
            f"GetProfileStats: {status} {ps} within [{start}, {end}]")

    # Diff: the two selections side by side, 7 values per node.
    left = {"profileTypeID": tid, "labelSelector": '{service_name="qa.cpu"}', "start": str(start), "end": str(end)}
    right = dict(left, labelSelector='{service_name="nothing-here"}')
    status, d = connect_json(cl.qry, "Diff", {"left": left, "right": right})
    f = d.get("flamegraph", {})
    lv = f.get("levels", [])
    c.check(status == 200 and int(f.get("leftTicks", 0)) == 2 * total and int(f.get("rightTicks", 0)) == 0
            and int(f.get("total", 0)) == 2 * total, f"Diff ticks: {status} {str(d)[:200]}")
    c.check(lv and all(len(l.get("values", [])) % 7 == 0 for l in lv)
            and sum(int(v) for l in lv for v in l["values"][2::7]) == 2 * total,
            "Diff levels: 7 values per node, left self values add up to the left ticks")
    status, d = connect_json(cl.qry, "Diff", {"left": left})
    c.check(status == 400 and "right" in d.get("message", ""), f"Diff without a right side: {status} {d}")

    # /pyroscope/render-diff: the same as flamebearer JSON ("double")
    q = urllib.parse.urlencode({"leftQuery": tid + '{service_name="qa.cpu"}', "leftFrom": str(start // 1000),
                                "leftUntil": str(end // 1000 + 1), "rightQuery": tid + '{service_name="qa.cpu"}',
                                "rightFrom": str(start // 1000), "rightUntil": str(end // 1000 + 1)})
    status, body, _ = http("GET", f"{cl.qry}/pyroscope/render-diff?{q}")
    rd = json.loads(body) if status == 200 else {}
    c.check(status == 200 and rd.get("leftTicks") == 2 * total and rd.get("rightTicks") == 2 * total
            and rd.get("metadata", {}).get("format") == "double"
            and rd.get("flamebearer", {}).get("numTicks") == 4 * total,
            f"render-diff: {status} {body[:200]!r}")
    q = urllib.parse.urlencode({"leftQuery": tid + "{}", "leftFrom": "now-1h", "leftUntil": "now",
                                "rightQuery": "memory:alloc_space:bytes:space:bytes{}", "rightFrom": "now-1h",
                                "rightUntil": "now"})
    status, body, _ = http("GET", f"{cl.qry}/pyroscope/render-diff?{q}")
    c.check(status == 400 and b"same profile type" in body, f"render-diff of two types: {status} {body[:200]!r}")

    # Single profiles: listed (newest first, each once), and one fetched as pprof.
    q = urllib.parse.urlencode({"query": tid + '{service_name="qa.cpu"}', "from": str(start // 1000),
                                "until": str(end // 1000 + 1)})
    status, body, _ = http("GET", f"{cl.qry}/api/v1/profiles?{q}")
    listed = json.loads(body).get("profiles", []) if status == 200 else []
    c.check(status == 200 and len(listed) == 2 and all(p["total"] == total for p in listed)
            and listed[0]["timestamp"] >= listed[1]["timestamp"]
            and all(p["labels"].get("service_name") == "qa.cpu" for p in listed),
            f"/api/v1/profiles lists the 2 pushed profiles: {status} {body[:300]!r}")
    if listed:
        one = listed[0]
        q1 = urllib.parse.urlencode({"query": tid + '{service_name="qa.cpu"}', "id": one["profileId"],
                                     "timestamp": str(one["timestamp"])})
        top = subprocess.run(["go", "tool", "pprof", "-top", "-symbolize=none", "-unit=ns",
                              f"{cl.qry}/api/v1/profile?{q1}"], capture_output=True, text=True, env=go_env(tmp),
                             timeout=120)
        m = re.search(r"of (\d+)ns total", top.stdout)
        c.check(m is not None and int(m.group(1)) == total,
                f"/api/v1/profile fetches that one profile: {top.stdout[:200]} {top.stderr[:200]}")
    q1 = urllib.parse.urlencode({"query": tid + "{}", "id": "00000000-0000-0000-0000-000000000000",
                                 "timestamp": str(start * 1000000)})
    status, body, _ = http("GET", f"{cl.qry}/api/v1/profile?{q1}")
    c.check(status == 404, f"an unknown profile: {status} {body[:100]!r}")
    status, body, _ = http("GET", f"{cl.qry}/api/v1/profile?query={urllib.parse.quote(tid + '{}')}&id=xyz&timestamp=1")
    c.check(status == 400 and b"UUID" in body, f"a bad id: {status} {body[:100]!r}")

    # /pyroscope/render?format=pprof: go tool pprof reads the URL itself.
    q = urllib.parse.urlencode({"query": tid + '{service_name="qa.cpu"}', "from": str(start // 1000),
                                "until": str(end // 1000 + 1), "format": "pprof"})
    top = subprocess.run(["go", "tool", "pprof", "-top", "-symbolize=none", "-unit=ns", f"{cl.qry}/pyroscope/render?{q}"],
                         capture_output=True, text=True, env=go_env(tmp), timeout=120)
    m = re.search(r"of (\d+)ns total", top.stdout)
    c.check(m is not None and int(m.group(1)) == 2 * total,
            f"go tool pprof -top <render URL with format=pprof>: {top.stdout[:300]} {top.stderr[:300]}")

    # /pyroscope/render?format=dot: pprof's DOT call graph as Pyroscope answers it, in text/plain.
    # samples:count values print as exact integers, so the graph is held against pprof's own figures
    # for the pushed profile and against the flame graph of the same query.
    stid = "process_cpu:samples:count:cpu:nanoseconds"
    stotal, sflat = ref_top(CPU + ".ref/top.0.samples.txt")
    scum = {}
    for ln in open(CPU + ".ref/top.0.samples.txt"):
        m = re.match(r"\s*\d+\s+[\d.]+%\s+[\d.]+%\s+(\d+)\s+[\d.]+%\s+(.*)$", ln)
        if m:
            fn = re.sub(r" \((partial-)?inline\)$", "", m.group(2).strip())
            scum[fn] = scum.get(fn, 0) + int(m.group(1))

    def render(fmt, query=stid, **extra):
        q = urllib.parse.urlencode(dict({"query": query + '{service_name="qa.cpu"}', "from": str(start // 1000),
                                         "until": str(end // 1000 + 1), "format": fmt}, **extra))
        status, body, hdrs = http("GET", f"{cl.qry}/pyroscope/render?{q}")
        ctype = {k.lower(): v for k, v in hdrs.items()}.get("content-type", "")
        return status, body.decode(errors="replace"), ctype

    status, dot, ctype = render("dot")
    legend, nodes, edges, bad = parse_dot(dot) if status == 200 else ("", {}, [], ["no answer"])
    c.check(status == 200 and ctype.startswith("text/plain"), f"format=dot -> {status} {ctype} {dot[:200]!r}")
    c.check(not bad and nodes, f"format=dot: every line is pprof's DOT grammar: {bad[:3]}")
    status, body, _ = render("json", maxNodes="512")  # the cut Pyroscope draws its graph from
    fb512 = json.loads(body)["flamebearer"] if status == 200 else {"names": [], "numTicks": -1}
    m = re.search(r"Showing nodes accounting for (\d+), [\d.]+% of (\d+) total\nShowing top (\d+) nodes out of (\d+)\n",
                  legend)
    c.check(m is not None and int(m.group(2)) == 2 * stotal == fb512["numTicks"]
            and int(m.group(1)) == sum(f for _, f, _ in nodes.values()),
            f"format=dot totals agree with the flame graph ({fb512['numTicks']}) and pprof ({2 * stotal}): {legend!r}")
    c.check(m is not None and len(nodes) == int(m.group(3)) == 100 and int(m.group(4)) == len(fb512["names"]) - 1,
            f"format=dot keeps Pyroscope's default 100 of the {len(fb512['names']) - 1} functions: "
            f"{len(nodes)} nodes, {legend!r}")
    c.check(all(s in nodes and d in nodes and w > 0 for s, d, w, _ in edges)
            and all(0 <= f <= cum <= 2 * stotal for _, f, cum in nodes.values()),
            "format=dot: edges join drawn nodes, 0 <= flat <= cum <= total")

    # With room for every function: pprof's flat and cum for each, and each caller -> callee weight
    # as the flame graph's stacks add up (recursion counted once per stack).
    status, dot, _ = render("dot", maxNodes="100000")
    legend, nodes, edges, bad = parse_dot(dot) if status == 200 else ("", {}, [], ["no answer"])
    by_name = {n: (f, cum) for n, f, cum in nodes.values()}
    wrong = [fn for fn in sflat if not fn.startswith("0x")
             and by_name.get(fn) != (2 * sflat[fn], 2 * scum.get(fn, -1))]
    c.check(not bad and "Showing top" not in legend and not wrong,
            f"format=dot maxNodes=100000: flat/cum differ from go tool pprof's for {wrong[:5]} {bad[:2]}")
    status, body, _ = render("json", maxNodes="100000")
    fb = json.loads(body)["flamebearer"] if status == 200 else {"names": [], "levels": []}
    want = {}
    for path, v in flame_paths(fb):
        seen = set()
        for a, b in zip(path, path[1:]):
            if a != b and (a, b) not in seen:
                seen.add((a, b))
                want[(a, b)] = want.get((a, b), 0) + v
    got = {(nodes[s][0], nodes[d][0]): w for s, d, w, _ in edges}
    c.check("other" not in fb["names"] and got == want and not any(r for *_, r in edges),
            f"format=dot maxNodes=100000: {len(got)} edges, {len(want)} from the flame graph, "
            f"differing: {[k for k in set(got) | set(want) if got.get(k) != want.get(k)][:5]}")

    # Nanoseconds print in seconds, as pprof does: the same total as the flame graph's.
    status, dot, _ = render("dot", query=tid)
    legend = parse_dot(dot)[0] if status == 200 else ""
    secs = f"{2 * total / 1e9:.2f}".removesuffix(".00") + "s"
    c.check(f"of {secs} total\n" in legend and legend.startswith("Type: cpu\n"),
            f"format=dot for cpu nanoseconds: total {secs} expected in {legend!r}")

    # SelectMergeProfile (JSON) is a google.v1.Profile in proto3 JSON.
    status, pj = connect_json(cl.qry, "SelectMergeProfile", {"profileTypeID": tid, "labelSelector": '{service_name="qa.cpu"}',
                                                             "start": str(start), "end": str(end)})
    c.check(status == 200 and pj.get("stringTable", [None])[0] == "" and len(pj.get("sample", [])) > 0,
            f"SelectMergeProfile json -> {status} {str(pj)[:200]}")

    # SelectSeries: one point per step, totals add up.
    status, ss = connect_json(cl.qry, "SelectSeries", {"profileTypeID": tid, "labelSelector": '{service_name="qa.cpu"}',
                                                       "start": str(start), "end": str(end), "step": 60, "groupBy": ["env"]})
    series = ss.get("series", [])
    c.check(status == 200 and len(series) == 1 and series[0]["labels"] == [{"name": "env", "value": "prod"}],
            f"SelectSeries group by env -> {status} {str(ss)[:300]}")
    c.check(sum(p.get("value", 0) for s in series for p in s.get("points", [])) == 2 * total, "SelectSeries sums the totals")
    # AVERAGE: the mean of the profile totals in a step (qa.cpu: 2 equal profiles in one step, 3 replicas).
    status, sa = connect_json(cl.qry, "SelectSeries", {"profileTypeID": tid, "labelSelector": '{service_name="qa.cpu"}',
                                                       "start": str(start), "end": str(end), "step": 60, "groupBy": ["env"],
                                                       "aggregation": "TIME_SERIES_AGGREGATION_TYPE_AVERAGE"})
    pts = [p for s in sa.get("series", []) for p in s.get("points", [])]
    c.check(status == 200 and len(pts) == 1 and pts[0].get("value") == total,
            f"SelectSeries AVERAGE -> the mean {total}: {status} {str(sa)[:300]}")
    # Exemplars: each point names its largest profile (ID, time, value, its labels but the group's).
    status, se = connect_json(cl.qry, "SelectSeries", {"profileTypeID": tid, "labelSelector": '{service_name="qa.cpu"}',
                                                       "start": str(start), "end": str(end), "step": 60, "groupBy": ["env"],
                                                       "exemplarType": "EXEMPLAR_TYPE_INDIVIDUAL"})
    pts = [p for s in se.get("series", []) for p in s.get("points", [])]
    ex = pts[0].get("exemplars", []) if pts else []
    exl = {l["name"]: l["value"] for l in ex[0].get("labels", [])} if ex else {}
    c.check(status == 200 and len(ex) == 1 and ex[0].get("value") == str(total)
            and re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", ex[0].get("profileId", ""))
            and int(ex[0].get("timestamp", 0)) // 1000 == now // 10**9
            and exl.get("service_name") == "qa.cpu" and exl.get("region") == "eu" and "env" not in exl
            and not any(k.startswith("__") for k in exl),
            f"SelectSeries exemplars -> {status} {str(se)[:400]}")
    st, one = http("GET", f"{cl.qry}/api/v1/profile?" + urllib.parse.urlencode(
        {"query": tid + '{service_name="qa.cpu"}', "id": ex[0].get("profileId", "") if ex else "",
         "timestamp": str(int(ex[0].get("timestamp", 0)) * 10**6) if ex else "0"}))[:2]
    c.check(st == 200 and len(one) > 0, f"the exemplar's profile opens with /api/v1/profile: {st} {one[:200]!r}")
    status, sx = connect_json(cl.qry, "SelectSeries", {"profileTypeID": tid, "labelSelector": '{}', "start": str(start),
                                                       "end": str(end), "step": 60, "exemplarType": "EXEMPLAR_TYPE_SPAN"})
    c.check(status == 400 and "EXEMPLAR_TYPE_SPAN" in sx.get("message", ""), f"span exemplars -> {status} {sx}")

    # SelectSeries limit keeps the largest series (Pyroscope's TopSeries), largest first.
    for name, copies in (("top.a", 1), ("top.b", 3), ("top.c", 2)):
        push(CPU, name, now + 1000, copies=copies)
    status, ss = connect_json(cl.qry, "SelectSeries", {"profileTypeID": tid, "labelSelector": '{env!="x", service_name!="qa.cpu"}',
                                                       "start": str(start), "end": str(end), "step": 60,
                                                       "groupBy": ["service_name"], "limit": "2"})
    got = [s["labels"][0]["value"] for s in ss.get("series", [])]
    c.check(status == 200 and got == ["top.b", "top.c"], f"SelectSeries limit=2 keeps the top 2 by total: {status} {got}")
    status, ss = connect_json(cl.qry, "SelectSeries", {"profileTypeID": tid, "labelSelector": '{service_name="top.a"}',
                                                       "start": str(start), "end": str(end), "step": 0.0001})
    c.check(status == 400 and "step" in ss.get("message", ""), f"step below 1 ms -> {status} {ss}")

    # Render: the flame graph covers [from, until]; only the timeline starts at the step boundary.
    step_ms = 15000
    t_ms = (now // 10**6 - 1800_000) // step_ms * step_ms + 5000
    push(CPU, "edge.render", t_ms * 10**6)
    q = urllib.parse.urlencode({"query": tid + '{service_name="edge.render"}', "from": str(t_ms + 1000),
                                "until": str(t_ms + 1000 + 3600_000)})
    status, body, _ = http("GET", f"{cl.qry}/pyroscope/render?{q}")
    r = json.loads(body) if status == 200 else {}
    c.check(status == 200 and r["flamebearer"]["numTicks"] == 0,
            f"a profile before from is not in the flame graph: {status} {str(r)[:200]}")
    c.check(status == 200 and r["timeline"]["startTime"] * 1000 == t_ms - 5000 and sum(r["timeline"]["samples"]) == total,
            f"... but the timeline, from the step boundary, holds it: {str(r.get('timeline'))[:200]}")
    q = urllib.parse.urlencode({"query": tid + '{service_name="edge.render"}', "from": str(t_ms),
                                "until": str(t_ms + 3600_000)})
    status, body, _ = http("GET", f"{cl.qry}/pyroscope/render?{q}")
    r = json.loads(body) if status == 200 else {}
    c.check(status == 200 and r["flamebearer"]["numTicks"] == total, f"from = the profile's time: {status} {str(r)[:200]}")
    q = urllib.parse.urlencode({"query": tid + '{service_name="edge.render"}', "from": "now-1h", "until": "tomorrow"})
    status, body, _ = http("GET", f"{cl.qry}/pyroscope/render?{q}")
    c.check(status == 400 and b"until: invalid time 'tomorrow'" in body, f"bad until -> {status} {body[:200]!r}")

    # Time ranges: Select* need an end; times are unix ms within int64 nanoseconds.
    sel = {"profileTypeID": tid, "labelSelector": '{service_name="qa.cpu"}'}
    status, r = connect_json(cl.qry, "SelectMergeStacktraces", dict(sel, start="0", end="0"))
    c.check(status == 400 and "end is required" in r.get("message", ""), f"Select without end -> {status} {r}")
    status, r = connect_json(cl.qry, "SelectMergeProfile", dict(sel, start="-5", end=str(end)))
    c.check(status == 400 and "unix milliseconds" in r.get("message", ""), f"negative start -> {status} {r}")
    status, r = connect_json(cl.qry, "SelectSeries", dict(sel, start=str(start), end="9000000000000000", step=60))
    c.check(status == 400 and "unix milliseconds" in r.get("message", ""), f"end past int64 ns -> {status} {r}")
    status, r = connect_json(cl.qry, "LabelNames", {"start": str(end), "end": str(start)})
    c.check(status == 400 and "after end" in r.get("message", ""), f"LabelNames start > end -> {status} {r}")
    status, r = connect_json(cl.qry, "ProfileTypes", {})
    c.check(status == 200 and r.get("profileTypes"), f"ProfileTypes 0/0 (all time, no limit set) -> {status}")

    # The querier reads small bodies: over 64 MiB is 413 before any handler runs.
    host, port = cl.qry[len("http://"):].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sk:
        sk.sendall(b"POST /querier.v1.QuerierService/ProfileTypes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   b"Content-Type: application/proto\r\nContent-Length: 70000000\r\n\r\n")
        head = sk.recv(200)
    c.check(head.startswith(b"HTTP/1.1 413"), f"70 MB body to the querier -> {head[:40]!r}")

    # Legacy label endpoints.
    status, body, _ = http("GET", f"{cl.qry}/pyroscope/label-values?label=__name__&from=now-1h&until=now%2B5m")
    c.check(status == 200 and tid in json.loads(body), f"label-values __name__ -> {status} {body[:200]!r}")
    status, body, _ = http("GET", f"{cl.qry}/pyroscope/labels?from=now-1h&until=now%2B5m")
    c.check(status == 200 and "env" in json.loads(body), f"labels -> {status} {body[:200]!r}")

    # Bad queries get 400 with a reason.
    status, r = connect_json(cl.qry, "SelectMergeStacktraces", {"profileTypeID": "nope", "labelSelector": "{}",
                                                                "start": str(start), "end": str(end)})
    c.check(status == 400 and "profile type" in r.get("message", ""), f"bad type -> {status} {r}")
    status, body, _ = http("GET", f"{cl.qry}/pyroscope/render?query=" + urllib.parse.quote('{service_name="x"}'))
    c.check(status == 400 and b"profile-type" in body, f"render without type -> {status} {body[:200]!r}")
    status, body, _ = http("POST", f"{cl.qry}/querier.v1.QuerierService/ProfileTypes", b"{}", {"Content-Type": "text/plain"})
    c.check(status == 415, f"unknown content type -> {status}")
finally:
    cl.finish(c)
c.done()
