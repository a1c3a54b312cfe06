#!/usr/bin/env python3
"""A Connect client nobody here wrote: @connectrpc/connect-node with code
that @bufbuild/protoc-gen-es generates (through buf, both from npm) from
hotpath's own .proto files, calling what Grafana's Pyroscope data source
calls (ProfileTypes, LabelNames, LabelValues, SelectSeries,
SelectMergeStacktraces, SelectMergeSpanProfile) over the Connect protocol
on HTTP/1.1, once in application/proto and once in application/json. The
answers must decode without complaint, be canonical proto3 (no unknown
fields; in JSON lowerCamel names, int64 as strings, enums by name) and
carry go tool pprof's reference figures for the pushed corpus. npm must
reach its registry: without it this test fails."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse

from harness import CORPUS, SRC, UNSYMBOLIZED, Checks, Cluster, http, multipart, ref_top, retime

TOOL = os.path.join(SRC, "tests", "tools", "connectclient")
PROTO = os.path.join(SRC, "proto")
CPU = os.path.join(CORPUS, "go", "compile_ssa.cpu.pb.gz")
HEAP = os.path.join(CORPUS, "go", "go_mix.heap.pb.gz")
CPU_ID = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
HEAP_ID = "memory:inuse_space:bytes:space:bytes"
# The span ids client.mjs span-pprof writes, and what each sample holds:
# work←handler←main 30 ms (A), idle←main 50 ms (B), handler←main 70 ms (no
# span), work←handler←main 20 ms (C).
SPAN_A, SPAN_B, SPAN_C = "9a3f5c1e7b2d4086", "0b1c2d3e4f5a6b7c", "77e1d2c3b4a59687"
MS = 1000000

c = Checks()
tmp = tempfile.mkdtemp(prefix="hp-connect-")
env = dict(os.environ, PATH=os.path.join(tmp, "node_modules", ".bin") + os.pathsep + os.environ["PATH"],
           BUF_CACHE_DIR=os.path.join(tmp, "buf-cache"))


def run(args, what, timeout=120):
    """Runs args in tmp; a check that it exited 0. Returns its stdout or None."""
    r = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
    ok = c.check(r.returncode == 0, f"{what}: exit {r.returncode}: {r.stdout[-500:]} {r.stderr[-1500:]}")
    return r.stdout if ok else None


def set_up_client():
    """Installs the pinned packages and generates the client into tmp/gen."""
    for f in ("package.json", "buf.gen.yaml", "client.mjs"):
        shutil.copy(os.path.join(TOOL, f), tmp)
    if run(["npm", "install", "--no-audit", "--no-fund"], "npm install (tests/tools/connectclient/package.json)",
           timeout=600) is None:
        return False
    paths = [a for d in ("querier/v1", "types/v1", "google/v1") for a in ("--path", os.path.join(PROTO, d))]
    if run(["buf", "generate", PROTO, "--template", "buf.gen.yaml"] + paths, "buf generate with protoc-gen-es") is None:
        return False
    return c.check(os.path.exists(os.path.join(tmp, "gen", "querier", "v1", "querier_pb.js")),
                   "protoc-gen-es wrote gen/querier/v1/querier_pb.js")


def push(cl, data, name, ts_ns):
    mp, ct = multipart([("profile", "profile.pprof", retime(data, ts_ns))])
    status, body, _ = http("POST", f"{cl.dist}/ingest?" + urllib.parse.urlencode({"name": name}), mp,
                           {"Content-Type": ct})
    c.check(status == 200, f"push {name} -> {status} {body[:200]!r}")


def flame(fg):
    """(total, {name: self}, node count, max self, root total) of a FlameGraph in proto3 JSON."""
    names, selfs, nodes, max_self, root = fg.get("names", []), {}, 0, 0, None
    for level in fg.get("levels", []):
        v = [int(x) for x in level.get("values", [])]
        for i in range(0, len(v), 4):
            n = names[v[i + 3]]
            selfs[n] = selfs.get(n, 0) + v[i + 2]
            max_self = max(max_self, v[i + 2])
            nodes += 1
            root = v[i + 1] if root is None else root
    return int(fg.get("total", "0")), selfs, nodes, max_self, root or 0


def plan(start, end):
    """The calls, in proto3 JSON, with the shapes Grafana's data source sends."""
    rng = {"start": str(start), "end": str(end)}
    cpu = dict(rng, profileTypeID=CPU_ID, labelSelector='{service_name="connect.cpu"}')
    span = dict(rng, profileTypeID=CPU_ID, labelSelector='{service_name="connect.span"}')
    return [
        ("types", "ProfileTypes", rng),
        ("names", "LabelNames", dict(rng, matchers=[])),
        ("names_cpu", "LabelNames", dict(rng, matchers=['{service_name="connect.cpu"}'])),
        ("services", "LabelValues", dict(rng, name="service_name")),
        ("envs_heap", "LabelValues", dict(rng, name="env", matchers=['{service_name="connect.heap"}'])),
        ("series_env", "SelectSeries", dict(cpu, step=60, groupBy=["env"],
                                            aggregation="TIME_SERIES_AGGREGATION_TYPE_SUM")),
        ("series_all", "SelectSeries", dict(cpu, step=15)),
        ("flame_all", "SelectMergeStacktraces", dict(cpu, maxNodes="1048576")),
        ("flame_prod", "SelectMergeStacktraces", dict(cpu, labelSelector='{service_name="connect.cpu", env="prod"}',
                                                      maxNodes="16384")),
        ("flame_16", "SelectMergeStacktraces", dict(cpu, maxNodes="16")),
        ("flame_heap", "SelectMergeStacktraces", dict(rng, profileTypeID=HEAP_ID, maxNodes="1048576",
                                                      labelSelector='{service_name="connect.heap"}')),
        ("flame_span_all", "SelectMergeStacktraces", dict(span, maxNodes="1024")),
        ("span_a", "SelectMergeSpanProfile", dict(span, spanSelector=[SPAN_A], maxNodes="1024")),
        ("span_ab", "SelectMergeSpanProfile", dict(span, spanSelector=[SPAN_A, SPAN_B], maxNodes="1024")),
        ("span_ac", "SelectMergeSpanProfile", dict(span, spanSelector=[SPAN_A, SPAN_C], maxNodes="1024")),
        ("span_none", "SelectMergeSpanProfile", dict(span, spanSelector=["00000000000000ff"], maxNodes="1024")),
        # What Grafana shows when a query is wrong: a Connect error the client decodes.
        ("bad_selector", "SelectMergeStacktraces", dict(cpu, labelSelector='{service_name="connect.cpu"')),
    ]


def check_flame(mode, name, fg, total, flat=None, mult=1):
    got, selfs, nodes, max_self, root = flame(fg)
    c.check(got == total * mult, f"{mode} {name}: flamegraph total {got} != {total * mult}")
    c.check(root == got and sum(selfs.values()) == got and int(fg.get("maxSelf", "0")) == max_self,
            f"{mode} {name}: root {root}, self sum {sum(selfs.values())}, maxSelf {fg.get('maxSelf')} "
            f"(max {max_self}) against total {got}")
    if flat is not None:
        bad = [f"{fn}: {selfs.get(fn, 0)} != {v * mult}" for fn, v in flat.items()
               if not UNSYMBOLIZED.match(fn) and selfs.get(fn, 0) != v * mult]
        c.check(not bad, f"{mode} {name}: self values differ from go tool pprof's flat: {bad[:5]}")
    return selfs, nodes


def check_answers(mode, res, t_prod_ms, t_now_ms):
    """Checks one mode's answers against the reference figures."""
    cpu_total, cpu_flat = ref_top(CPU + ".ref/top.1.cpu.txt")
    heap_total, heap_flat = ref_top(HEAP + ".ref/top.3.inuse_space.txt")
    ok = {}
    for r in res:
        if r["name"].startswith("bad_"):
            e = r.get("error") or {}
            c.check(e.get("code") == "InvalidArgument" and "selector" in e.get("message", ""),
                    f"{mode} {r['name']}: want a Connect invalid_argument error naming the selector, got {r}")
            continue
        ok[r["name"]] = c.check(r["ok"], f"{mode} {r['name']} ({r['method']}): {r.get('error')}")
        c.check(not r.get("strict"), f"{mode} {r['name']} ({r['method']}): not canonical proto3 "
                f"{'binary' if mode == 'binary' else 'JSON'}: {r.get('strict', [])[:6]}")
    a = {r["name"]: r.get("response", {}) for r in res}

    if ok["types"]:
        types = {t.get("ID"): t for t in a["types"].get("profileTypes", [])}
        c.check(types.get(CPU_ID) == {"ID": CPU_ID, "name": "process_cpu", "sampleType": "cpu",
                                      "sampleUnit": "nanoseconds", "periodType": "cpu", "periodUnit": "nanoseconds"},
                f"{mode} ProfileTypes: {CPU_ID} -> {types.get(CPU_ID)}")
        c.check(HEAP_ID in types and types[HEAP_ID].get("name") == "memory", f"{mode} ProfileTypes: {sorted(types)}")
    if ok["names"]:
        c.check({"service_name", "env", "__profile_type__"} <= set(a["names"].get("names", [])),
                f"{mode} LabelNames: {a['names']}")
    if ok["names_cpu"]:
        n = a["names_cpu"].get("names", [])
        c.check("env" in n and n == sorted(set(n)), f"{mode} LabelNames with matcher: {n}")
    if ok["services"]:
        c.check(a["services"].get("names") == ["connect.cpu", "connect.heap", "connect.span"],
                f"{mode} LabelValues(service_name): {a['services']}")
    if ok["envs_heap"]:
        c.check(a["envs_heap"].get("names") == ["prod"], f"{mode} LabelValues(env, heap): {a['envs_heap']}")

    if ok["series_env"]:
        got = {}
        for s in a["series_env"].get("series", []):
            key = tuple((l["name"], l["value"]) for l in s.get("labels", []))
            got[key] = [(int(p.get("timestamp", "0")), p.get("value", 0)) for p in s.get("points", [])]
        want = {(("env", "dev"),): t_now_ms, (("env", "prod"),): t_prod_ms}
        c.check(set(got) == set(want), f"{mode} SelectSeries group_by env: series {sorted(got)}")
        for key, t in want.items():
            pts = got.get(key, [])
            c.check(len(pts) == 1 and pts[0][1] == cpu_total and 0 <= pts[0][0] - t < 60000,
                    f"{mode} SelectSeries {key}: points {pts}, want one of {cpu_total} at [{t}, {t + 60000})")
    if ok["series_all"]:
        s = a["series_all"].get("series", [])
        c.check(len(s) == 1 and not s[0].get("labels") and len(s[0].get("points", [])) == 2
                and sum(p.get("value", 0) for p in s[0]["points"]) == 2 * cpu_total,
                f"{mode} SelectSeries without group_by: {str(s)[:300]}")

    if ok["flame_all"]:
        check_flame(mode, "flame_all", a["flame_all"].get("flamegraph", {}), cpu_total, cpu_flat, mult=2)
    if ok["flame_prod"]:
        check_flame(mode, "flame_prod", a["flame_prod"].get("flamegraph", {}), cpu_total)
    if ok["flame_16"]:
        selfs, nodes = check_flame(mode, "flame_16", a["flame_16"].get("flamegraph", {}), cpu_total, mult=2)
        c.check("other" in selfs and 0 < nodes <= 16 * 3,
                f"{mode} max_nodes 16: {nodes} nodes, 'other' {'present' if 'other' in selfs else 'missing'}")
    if ok["flame_heap"]:
        check_flame(mode, "flame_heap", a["flame_heap"].get("flamegraph", {}), heap_total, heap_flat)

    # Span profiles: span ids neither split nor filter the ordinary merge;
    # SelectMergeSpanProfile merges exactly the samples of the given spans.
    if ok["flame_span_all"]:
        check_flame(mode, "flame_span_all", a["flame_span_all"].get("flamegraph", {}), 170 * MS,
                    {"work": 50 * MS, "idle": 50 * MS, "handler": 70 * MS, "main": 0})
    if ok["span_a"]:
        selfs, _ = check_flame(mode, "span_a", a["span_a"].get("flamegraph", {}), 30 * MS, {"work": 30 * MS})
        c.check(set(selfs) == {"total", "main", "handler", "work"}, f"{mode} span A: nodes {sorted(selfs)}")
    if ok["span_ab"]:
        check_flame(mode, "span_ab", a["span_ab"].get("flamegraph", {}), 80 * MS,
                    {"work": 30 * MS, "idle": 50 * MS, "handler": 0, "main": 0})
    if ok["span_ac"]:
        check_flame(mode, "span_ac", a["span_ac"].get("flamegraph", {}), 50 * MS, {"work": 50 * MS, "idle": 0})
    if ok["span_none"]:
        check_flame(mode, "span_none", a["span_none"].get("flamegraph", {}), 0)


cl = None
try:
    if not set_up_client():
        c.done()
    cl = Cluster(ingesters=3)
    now = time.time_ns()
    t_prod = now - 120 * 10**9
    cpu = open(CPU, "rb").read()
    push(cl, cpu, "connect.cpu{env=prod}", t_prod)
    push(cl, cpu, "connect.cpu{env=dev}", now)
    push(cl, open(HEAP, "rb").read(), "connect.heap{env=prod}", now)
    if run(["node", "client.mjs", "span-pprof", "span.pb.gz", str(now)], "client.mjs span-pprof") is not None:
        push(cl, open(os.path.join(tmp, "span.pb.gz"), "rb").read(), "connect.span{env=prod}", now)
    time.sleep(0.5)

    start, end = now // MS - 3600_000, now // MS + 300_000
    plan_file = os.path.join(tmp, "plan.json")
    json.dump([{"name": n, "method": m, "request": r} for n, m, r in plan(start, end)], open(plan_file, "w"))
    for mode in ("binary", "json"):
        out = run(["node", "client.mjs", "call", cl.qry, mode, plan_file], f"node client.mjs call ({mode})")
        if out is None:
            continue
        res = json.loads(out.strip().splitlines()[-1])["calls"]
        check_answers(mode, res, t_prod // MS, now // MS)
finally:
    if cl is not None:
        cl.finish(c)
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
