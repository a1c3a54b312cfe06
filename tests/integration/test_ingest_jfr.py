#!/usr/bin/env python3
"""Java Flight Recorder uploads on /ingest?format=jfr, as Pyroscope takes
them: a raw gzipped recording, and a multipart body with a `jfr` part and
a `labels` part (LabelsSnapshot) whose context labels become series labels.
Totals are compared with Pyroscope's own expected pprofs for the same
inputs (read with `go tool pprof`); a broken recording is refused with a
message; a recording from a real JVM (OpenJDK 17 on this machine) shows
its own methods."""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse

from harness import PYRO, SRC, Checks, Cluster, connect_json, flame_self, http, multipart, render

c = Checks()
J = os.path.join(PYRO, "jfr")
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
NOW = int(time.time())
tmp = tempfile.mkdtemp(prefix="hp-jfr-")


def go_total(path, unit="ns"):
    """The total of a pprof file by `go tool pprof -top` (in unit: ns or B)."""
    env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off", GOCACHE=os.path.join(tmp, "gocache"))
    out = subprocess.run(["go", "tool", "pprof", "-top", "-symbolize=none", f"-unit={unit}", path],
                         capture_output=True, text=True, env=env, timeout=120).stdout
    m = re.search(r"of (\d+)" + unit + " total", out)
    return int(m.group(1)) if m else None


def ingest(body, name, headers, extra=None):
    q = {"name": name, "format": "jfr", "from": str(NOW), "until": str(NOW + 10), "spyName": "javaspy"}
    q.update(extra or {})
    return http("POST", f"{cl.dist}/ingest?{urllib.parse.urlencode(q)}", body, headers)


def total(tid, sel):
    st, r = render(cl.qry, tid, sel)
    return flame_self(r) if st == 200 else (None, {})


cl = Cluster(ingesters=1)
try:
    # a raw gzipped recording: CPU total equal to Pyroscope's expected pprof
    f = os.path.join(J, "cortex-dev-01__kafka-0__cpu__0.jfr.gz")
    st, body, _ = ingest(open(f, "rb").read(), "jfr_raw", {"Content-Type": "application/octet-stream"})
    want = go_total(glob.glob(f + ".process_cpu_cpu_nanoseconds_cpu_nanoseconds.*.pb.gz")[0])
    got, selfs = total(CPU, '{service_name="jfr_raw"}')
    c.check(st == 200 and want and got == want, f"raw JFR: {st} {body[:200]!r}; total {got}, want {want}")
    c.check(any("/" in n and "." in n for n in selfs), f"frames are class.method with '/' packages: "
                                                      f"{sorted(selfs, key=selfs.get)[-2:]}")
    now = int(time.time() * 1000)
    _, lv = connect_json(cl.qry, "LabelValues", {"name": "jfr_event", "matchers": ['{service_name="jfr_raw"}'],
                                                 "start": str(now - 3600_000), "end": str(now + 600_000)})
    c.check("cpu" in lv.get("names", []) or "itimer" in lv.get("names", []),
            f"jfr_event names the recording's event: {lv}")

    # CPU, allocations in new TLABs: two profile types from one recording
    f = os.path.join(J, "cortex-dev-01__kafka-0__cpu_lock_alloc__0.jfr.gz")
    st, body, _ = ingest(open(f, "rb").read(), "jfr_alloc", {"Content-Type": "application/octet-stream"})
    for tid, pat, unit in ((CPU, "process_cpu_cpu_nanoseconds_cpu_nanoseconds", "ns"),
                           ("memory:alloc_in_new_tlab_bytes:bytes:space:bytes",
                            "memory_alloc_in_new_tlab_bytes_bytes_space_bytes", "B")):
        exp = glob.glob(f + f".{pat}.*.pb.gz")
        want = go_total(exp[0], unit) if exp else None
        got, _ = total(tid, '{service_name="jfr_alloc"}')
        c.check(st == 200 and want is not None and got == want, f"{tid}: {st}; total {got}, want {want}")

    # multipart with a LabelsSnapshot: context labels become series
    f = os.path.join(J, "dump1.jfr.gz")
    mp, ct = multipart([("jfr", "jfr", open(f, "rb").read()),
                        ("labels", "labels", open(os.path.join(J, "dump1.labels.pb.gz"), "rb").read())])
    st, body, _ = ingest(mp, "jfr_ctx", {"Content-Type": ct})
    c.check(st == 200, f"multipart jfr + labels: {st} {body[:200]!r}")
    now = int(time.time() * 1000)
    _, lv = connect_json(cl.qry, "LabelValues", {"name": "thread_name", "matchers": ['{service_name="jfr_ctx"}'],
                                                 "start": str(now - 3600_000), "end": str(now + 600_000)})
    names = lv.get("names", [])
    c.check({"pool-2-thread-1", "pool-2-thread-3"} <= set(names), f"context labels are series labels: {names}")
    one = glob.glob(f + ".process_cpu_cpu_nanoseconds_cpu_nanoseconds.*.pb.gz") + \
        glob.glob(f + ".process_cpu:cpu:nanoseconds:cpu:nanoseconds.*.pb.gz")
    allsum = None
    for e in one:  # the "{}" golden (hash 17241709254077376921) is every label set merged
        if "17241709254077376921" in e:
            allsum = go_total(e)
    got, _ = total(CPU, '{service_name="jfr_ctx"}')
    c.check(allsum is not None and got == allsum, f"all label sets together: {got}, want {allsum}")

    # broken input
    st, body, _ = ingest(b"garbage", "jfr_bad", {"Content-Type": "application/octet-stream"})
    c.check(st in (400, 422) and b"jfr" in body, f"garbage: {st} {body[:200]!r}")
    raw = open(os.path.join(J, "cortex-dev-01__kafka-0__cpu__0.jfr.gz"), "rb").read()
    import gzip as _gz
    cut = _gz.decompress(raw)[:5000]
    st, body, _ = ingest(cut, "jfr_bad", {"Content-Type": "application/octet-stream"})
    c.check(st in (400, 422) and b"chunk" in body, f"a truncated recording: {st} {body[:200]!r}")
    mp, ct = multipart([("labels", "labels", b"x")])
    st, body, _ = ingest(mp, "jfr_bad", {"Content-Type": ct})
    c.check(st == 400 and b"'jfr' part" in body, f"multipart without jfr: {st} {body[:200]!r}")

    # a real JVM (scripts/install-deps installs one): OpenJDK records a busy program; hotpath shows its
    # methods, and one CPU sample (10 ms) per jdk.ExecutionSample event the JDK's own `jfr summary` counts
    java, jfr = shutil.which("java"), shutil.which("jfr")
    if c.check(java and jfr, "java and jfr are installed (scripts/install-deps)"):
        src = os.path.join(SRC, "tests", "tools", "jfr", "Busy.java")
        rec = os.path.join(tmp, "busy.jfr")
        p = subprocess.run([java, f"-XX:StartFlightRecording=duration=3s,filename={rec},settings=profile", src],
                           capture_output=True, text=True, timeout=120, cwd=tmp)
        if os.path.exists(rec):
            st, body, _ = ingest(open(rec, "rb").read(), "jfr_jvm", {"Content-Type": "application/octet-stream"})
            got, selfs = total(CPU, '{service_name="jfr_jvm"}')
            c.check(st == 200 and got and any("Busy.spin" in n for n in selfs),
                    f"a JDK 17 recording shows Busy.spin*: {st} {body[:120]!r} {got}")
            summary = subprocess.run([jfr, "summary", rec], capture_output=True, text=True, timeout=120).stdout
            m = re.search(r"^\s*jdk\.ExecutionSample\s+(\d+)\s", summary, re.M)
            # each sample is one period: 10 ms at the default sampleRate of 100
            c.check(m is not None and got == int(m.group(1)) * 10_000_000,
                    f"CPU total {got} ns = 10 ms x the jdk.ExecutionSample events in `jfr summary`: "
                    f"{m and m.group(1)}")
        else:
            c.check(False, f"the JVM wrote no recording: {p.stderr[-300:]}")
finally:
    cl.finish(c)
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
