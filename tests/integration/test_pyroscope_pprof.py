#!/usr/bin/env python3
"""Pyroscope's own pprof fixtures (../shared/testdata/pyroscope/pprof): each
valid one pushed the way its runtime's SDK pushes it gets the profile type IDs
Pyroscope's tests expect, and flame-graph totals equal to `go tool pprof`'s
(computed here); the invalid ones get their errors."""
import gzip
import os
import re
import subprocess
import tempfile
import time
import urllib.parse

from harness import PYRO, Checks, Cluster, connect_json, go_env, http, multipart, render, retime

c = Checks()
tmp = tempfile.mkdtemp(prefix="hp-pyro-")
env = go_env(tmp)
D = os.path.join(PYRO, "pprof")

# file, spyName, multipart sample_type_config or None, expected type IDs (Pyroscope's tests)
CASES = [
    ("cpu.pb.gz", "gospy", None, ["process_cpu:samples:count:cpu:nanoseconds", "process_cpu:cpu:nanoseconds:cpu:nanoseconds"]),
    ("cpu-exemplars.pb.gz", "gospy", None, ["process_cpu:cpu:nanoseconds:cpu:nanoseconds"]),
    ("cpu-js.pb.gz", "nodespy", None, ["wall:wall:microseconds:wall:microseconds"]),
    ("nodejs-wall.pb.gz", "nodespy", None, ["wall:samples:count:wall:microseconds", "wall:wall:microseconds:wall:microseconds"]),
    ("heap.pb.gz", "gospy", None, ["memory:alloc_objects:count:space:bytes", "memory:alloc_space:bytes:space:bytes",
                                   "memory:inuse_objects:count:space:bytes", "memory:inuse_space:bytes:space:bytes"]),
    ("heap-js.pprof", "nodespy", None, ["memory:space:bytes:space:bytes", "memory:objects:count:space:bytes"]),
    ("nodejs-heap.pb.gz", "nodespy", None, ["memory:inuse_space:bytes:inuse_space:bytes",
                                            "memory:inuse_objects:count:inuse_space:bytes"]),
    ("req_2.pprof", "gospy", "req_2.st.json", ["goroutines:goroutine:count:goroutine:count"]),
    ("req_3.pprof", "gospy", "req_3.st.json", ["block:contentions:count:contentions:count", "block:delay:nanoseconds:contentions:count"]),
    ("req_4.pprof", "gospy", "req_4.st.json", ["mutex:contentions:count:contentions:count", "mutex:delay:nanoseconds:contentions:count"]),
    ("req_5.pprof", "gospy", "req_5.st.json", ["memory:alloc_objects:count:space:bytes", "memory:alloc_space:bytes:space:bytes"]),
    ("profile_java", "javaspy", None, []),
    ("profile_nodejs", "nodespy", None, []),
    ("profile_python", "pyspy", None, []),
    ("profile_ruby", "rbspy", None, []),
    ("profile_rust", "rustspy", None, []),
    ("heap_delta", "gospy", None, []),
]


def pprof_totals(path):
    """{(type, unit): total} from go tool pprof on the file."""
    out = {}
    raw = subprocess.run(["go", "tool", "pprof", "-raw", path], capture_output=True, text=True, env=env, timeout=120).stdout
    head = raw.split("Samples:\n", 1)[1].split("\n", 1)[0] if "Samples:\n" in raw else ""
    types = re.search(r"^(\S+/\S+(?:\s+\S+/\S+)*)\s*$", head, re.M)
    if not types:
        return out
    names = [tuple(t.replace("[dflt]", "").split("/")) for t in types.group(1).split()]
    sums = [0] * len(names)
    section = raw.split("Samples:\n", 1)[1].split("\n", 1)[1].split("Locations", 1)[0]
    for line in section.splitlines():
        m = re.match(r"\s*((?:-?\d+\s*)+):", line)
        if m:
            for k, v in enumerate(m.group(1).split()[: len(names)]):
                sums[k] += int(v)
    return dict(zip(names, sums))


cl = Cluster(ingesters=2)
try:
    now = time.time_ns()
    pushed = []
    for n, (f, spy, stc, want) in enumerate(CASES):
        path = os.path.join(D, f)
        svc = f"pyro_{n}"
        data = retime(open(path, "rb").read(), now)
        q = urllib.parse.urlencode({"name": f"{svc}{{fixture={f}}}", "spyName": spy})
        parts = [("profile", "profile.pprof", data)]
        if stc:
            parts.append(("sample_type_config", "sample_type_config.json", open(os.path.join(D, stc), "rb").read()))
        body, ct = multipart(parts)
        status, resp, _ = http("POST", f"{cl.dist}/ingest?{q}", body, {"Content-Type": ct})
        if c.check(status == 200, f"{f}: push -> {status} {resp[:200]!r}"):
            plain = os.path.join(tmp, f + ".plain.pb.gz")
            open(plain, "wb").write(data)
            pushed.append((f, svc, want, plain))

    # Invalid ones: Push 400, /ingest 422 for invalid UTF-8 (Pyroscope's test).
    bad = open(os.path.join(D, "invalid_utf8.pb.gz"), "rb").read()
    status, resp, _ = http("POST", f"{cl.dist}/ingest?name=bad&format=pprof", bad)
    c.check(status == 422, f"invalid_utf8 /ingest -> {status}")

    now_ms = now // 10**6
    status, pt = connect_json(cl.qry, "ProfileTypes", {"start": str(now_ms - 3600000), "end": str(now_ms + 300000)})
    ids = {t["ID"] for t in pt.get("profileTypes", [])}
    for f, svc, want, plain in pushed:
        for tid in want:
            c.check(tid in ids, f"{f}: profile type {tid} missing (have {sorted(ids)[:8]}…)")
        status, names = connect_json(cl.qry, "LabelValues", {"name": "__profile_type__", "matchers": [f'{{service_name="{svc}"}}'],
                                                             "start": str(now_ms - 3600000), "end": str(now_ms + 300000)})
        types = names.get("names", [])
        c.check(status == 200 and types, f"{f}: no series")
        totals = pprof_totals(plain)
        for tid in types:
            st, su = tid.split(":")[1:3]
            status, r = render(cl.qry, tid, f'{{service_name="{svc}"}}')
            if not c.check(status == 200, f"{f} {tid}: render -> {status} {r}"):
                continue
            want_total = totals.get((st, su))
            c.check(want_total is not None and r["flamebearer"]["numTicks"] == want_total,
                    f"{f} {tid}: numTicks {r['flamebearer']['numTicks']} != go tool pprof {want_total}")
finally:
    cl.finish(c)
c.done()
