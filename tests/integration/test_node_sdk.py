#!/usr/bin/env python3
"""The real @pyroscope/nodejs SDK (installed from npm by this test) pushes
live wall and heap profiles; both are queryable under its app name and
tags. npm must reach its registry (this machine kind has it)."""
import os
import shutil
import subprocess
import tempfile
import time

from harness import SRC, Checks, Cluster, connect_json, render, type_id

c = Checks()
tmp = tempfile.mkdtemp(prefix="hp-node-")
shutil.copy(os.path.join(SRC, "tests", "tools", "nodesdk", "run.js"), tmp)
subprocess.run(["npm", "init", "-y"], cwd=tmp, capture_output=True, timeout=60)
inst = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "@pyroscope/nodejs@0.6.4"], cwd=tmp,
                      capture_output=True, text=True, timeout=600)
if not c.check(inst.returncode == 0, "npm install @pyroscope/nodejs@0.6.4: " + inst.stderr[-300:]):
    c.done()
cl = Cluster(ingesters=3)
try:
    r = subprocess.run(["node", "run.js", cl.dist, "node.it", "8"], cwd=tmp, capture_output=True, text=True, timeout=120)
    c.check(r.returncode == 0, f"node SDK run: {r.stdout[-300:]} {r.stderr[-300:]}")
    c.check("error" not in (r.stdout + r.stderr).lower(), f"the SDK logged an error: {r.stderr[-300:]}")
    time.sleep(0.5)
    for st, su in [("wall", "nanoseconds"), ("samples", "count"), ("inuse_space", "bytes"), ("inuse_objects", "count")]:
        pt = "inuse_space" if st.startswith("inuse") else "wall"
        pu = "bytes" if st.startswith("inuse") else "nanoseconds"
        tid = type_id(cl.qry, st, su, pt, pu)
        if not c.check(tid is not None, f"no profile type for {st}:{su}"):
            continue
        status, rr = render(cl.qry, tid, '{service_name="node.it",team="hotpath"}')
        c.check(status == 200 and rr["flamebearer"]["numTicks"] > 0, f"{tid}: {status} {str(rr)[:200]}")
        if st == "wall" and status == 200:
            names = rr["flamebearer"]["names"]
            c.check(any("fib" in n for n in names), "the wall flame graph shows the fib workload")
    now = int(time.time() * 1000)
    status, lv = connect_json(cl.qry, "LabelValues", {"name": "suite", "start": str(now - 3600000), "end": str(now + 60000)})
    c.check(status == 200 and lv.get("names") == ["integration"], f"LabelValues(suite): {lv}")
    status, lv = connect_json(cl.qry, "LabelValues", {"name": "pyroscope_spy", "start": str(now - 3600000), "end": str(now + 60000)})
    c.check(status == 200 and "nodespy" in lv.get("names", []), f"LabelValues(pyroscope_spy): {lv}")
finally:
    cl.finish(c)
c.done()
