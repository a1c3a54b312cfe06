#!/usr/bin/env python3
"""Durability with RF=1: profiles acked by an ingester survive its SIGKILL
(the WAL is replayed at restart, exactly, nothing twice), the ingester is
not ready until the replay is done, and a WAL whose last log file has a
torn tail still opens and keeps every complete record."""
import glob
import os
import time
import urllib.parse

from harness import CORPUS, Checks, Cluster, compare_render, http, multipart, ref_top, render, retime

c = Checks()
F = os.path.join(CORPUS, "go", "go_mix.cpu.pb.gz")
TOTAL, _ = ref_top(F + ".ref/top.1.cpu.txt")
TID = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
cl = Cluster(ingesters=1, rf=1, flags=["-ring.heartbeat-period=500ms"])


def push(svc, ts):
    body, ct = multipart([("profile", "profile.pprof", retime(open(F, "rb").read(), ts))])
    return http("POST", f"{cl.dist}/ingest?" + urllib.parse.urlencode({"name": svc}), body, {"Content-Type": ct})[0]


def wait_total(svc, want, seconds=30):
    got = None
    for _ in range(seconds * 5):
        status, r = render(cl.qry, TID, f'{{service_name="{svc}"}}')
        got = r["flamebearer"]["numTicks"] if status == 200 else None
        if got == want:
            break
        time.sleep(0.2)
    return got


def restart_ingester(corrupt_tail=False):
    def tear_tail():
        logs = sorted(glob.glob(os.path.join(cl.data, "ingester-0", "wal", "*.log")))
        c.check(bool(logs), "the WAL has a RocksDB log file")
        with open(logs[-1], "ab") as f:
            f.write(bytes((i * 37) & 0xFF for i in range(4096)))
    p, ready = cl.restart_ingester(0, tear_tail if corrupt_tail else None)
    c.check(ready, "the restarted ingester becomes ready after replaying its WAL")
    return ready


try:
    base = time.time_ns()
    acked = sum(push("du.one", base + i * 1000) == 200 for i in range(12))
    c.check(acked == 12, f"{acked} of 12 pushes acked")
    restart_ingester()
    got = wait_total("du.one", acked * TOTAL)
    c.check(got == acked * TOTAL, f"after SIGKILL and restart: total {got}, want {acked * TOTAL}")
    status, r = render(cl.qry, TID, '{service_name="du.one"}')
    if status == 200:
        why = compare_render(r, F + ".ref/top.1.cpu.txt", acked)
        c.check(why is None, f"per-function values after the replay: {why}")
    # Writes continue; a torn WAL tail does not stop the next start.
    more = sum(push("du.two", base + 10**9 + i * 1000) == 200 for i in range(5))
    restart_ingester(corrupt_tail=True)
    got_one = wait_total("du.one", acked * TOTAL)
    got_two = wait_total("du.two", more * TOTAL)
    c.check(got_one == acked * TOTAL and got_two == more * TOTAL,
            f"after a torn tail: {got_one} and {got_two}, want {acked * TOTAL} and {more * TOTAL}")
finally:
    cl.finish(c)
c.done()
