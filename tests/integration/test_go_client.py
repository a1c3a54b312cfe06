#!/usr/bin/env python3
"""A real Go program using runtime/pprof (built here with Debian's Go)
pushes its CPU and heap profiles SDK-style; the flame graphs hotpath
returns have `go tool pprof`'s totals and per-function flat values."""
import os
import subprocess
import tempfile
import time

from harness import SRC, Checks, Cluster, compare_render, go_env, render, type_id

c = Checks()
tmp = tempfile.mkdtemp(prefix="hp-go-")
env = go_env(tmp)
exe = os.path.join(tmp, "gopush")
b = subprocess.run(["go", "build", "-o", exe, os.path.join(SRC, "tests", "tools", "gopush", "main.go")],
                   capture_output=True, text=True, env=env, timeout=300)
if not c.check(b.returncode == 0, "go build gopush: " + b.stderr[-500:]):
    c.done()
cl = Cluster(ingesters=3)
try:
    r = subprocess.run([exe, "-url", cl.dist, "-app", "goclient", "-seconds", "2", "-out", tmp],
                       capture_output=True, text=True, timeout=120)
    c.check(r.returncode == 0, f"gopush: {r.stdout} {r.stderr}")
    time.sleep(0.3)
    cases = [("cpu.pb.gz", [(0, "samples", "count", "cpu", "nanoseconds", ""), (1, "cpu", "nanoseconds", "cpu", "nanoseconds", "-unit=ns")]),
             ("heap.pb.gz", [(k, st, su, "space", "bytes", "-unit=B" if su == "bytes" else "")
                             for k, (st, su) in enumerate([("alloc_objects", "count"), ("alloc_space", "bytes"),
                                                           ("inuse_objects", "count"), ("inuse_space", "bytes")])])]
    for name, types in cases:
        f = os.path.join(tmp, name)
        for idx, st, su, pt, pu, unit in types:
            args = ["go", "tool", "pprof", "-top", "-nodecount=1000000", "-nodefraction=0", "-edgefraction=0",
                    "-symbolize=none", f"-sample_index={idx}"] + ([unit] if unit else []) + [f]
            top = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
            ref = os.path.join(tmp, f"{name}.{idx}.top")
            open(ref, "w").write(top.stdout)
            tid = type_id(cl.qry, st, su, pt, pu)
            if not c.check(tid is not None, f"no profile type {st}:{su}:{pt}:{pu}"):
                continue
            status, rr = render(cl.qry, tid, '{service_name="goclient",runtime="go"}')
            if c.check(status == 200, f"render {tid} -> {status} {rr}"):
                why = compare_render(rr, ref)
                c.check(why is None, f"{name} {tid}: {why}")
finally:
    cl.finish(c)
c.done()
