#!/usr/bin/env python3
"""The long-term read path, in seconds: blocks flushed by an ingester are
served by a store-gateway from the object store once the ingester lets
them go, and a query answers exactly the same totals before, during and
after that hand-over — each profile counted once whether it is in a head,
an ingester's block or a store-gateway's. Old data (pushed with old
timestamps) comes from the store-gateway alone; long ranges are split into
intervals; a store-gateway that is down fails old-range queries with 503
rather than answer partially; a damaged block is skipped and counted."""
import glob
import json
import os
import signal
import time
import urllib.parse

from harness import CORPUS, Checks, Cluster, compare_render, connect_json, http, metric, multipart, ref_top, render, retime

c = Checks()
F = os.path.join(CORPUS, "go", "go_mix.cpu.pb.gz")
TOTAL, _ = ref_top(F + ".ref/top.1.cpu.txt")
TID = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
FLAGS = ["-ring.heartbeat-period=500ms", "-ingester.max-block-duration=2s", "-ingester.flush-idle-period=1s",
         "-ingester.flush-check-period=300ms", "-querier.query-store-after=8s",
         "-store-gateway.ignore-blocks-within=4s", "-store-gateway.sync-interval=1s",
         "-compactor.compaction-interval=1s", "-querier.split-queries-by-interval=10m"]


def push(cl, svc, ts):
    body, ct = multipart([("profile", "profile.pprof", retime(open(F, "rb").read(), ts))])
    q = urllib.parse.urlencode({"name": svc})
    return http("POST", f"{cl.dist}/ingest?{q}", body, {"Content-Type": ct})[0]


def total(cl, svc, frm="now-2h", until="now+5m"):
    status, r = render(cl.qry, TID, f'{{service_name="{svc}"}}', frm=frm, until=until)
    if status != 200:
        return status, None
    return status, r


def gateway_url(cl, i=0):
    return f"http://127.0.0.1:{cl.base + 40 + i}"


def wait_ready(url, seconds=60):
    for _ in range(seconds * 5):
        try:
            if http("GET", url + "/ready", timeout=2)[0] == 200:
                return True
        except Exception:
            pass
        time.sleep(0.2)
    return False


cl = Cluster(ingesters=1, rf=1, flags=FLAGS)
try:
    ing, gw = cl.ingester_url(0), gateway_url(cl)
    c.check(wait_ready(gw), "the store-gateway becomes ready")

    # Old data: only the store-gateway ends up with it.
    old = time.time_ns() - 30 * 60 * 10**9
    n_old = sum(push(cl, "sg.old", old + i * 10**6) == 200 for i in range(6))
    c.check(n_old == 6, f"{n_old} of 6 old pushes acked")
    seen = set()
    deadline = time.time() + 60
    handed_over = False
    while time.time() < deadline:
        status, r = total(cl, "sg.old")
        seen.add(r["flamebearer"]["numTicks"] if r else status)
        if (metric(ing, "hotpath_ingester_local_blocks") == 0 and
                metric(ing, "hotpath_ingester_block_uploads_total") >= 1 and
                metric(gw, "hotpath_store_gateway_blocks") >= 1):
            handed_over = True
            break
        time.sleep(0.3)
    c.check(handed_over, "the ingester uploads its block, lets it go, and the store-gateway has it")
    status, r = total(cl, "sg.old")
    seen.add(r["flamebearer"]["numTicks"] if r else status)
    c.check(seen == {n_old * TOTAL}, f"every answer during the hand-over was exact: saw {sorted(seen)}, "
            f"want {n_old * TOTAL}")
    if r:
        why = compare_render(r, F + ".ref/top.1.cpu.txt", n_old)
        c.check(why is None, f"from the store-gateway, per-function values match go tool pprof: {why}")
        tl = r.get("timeline", {})
        c.check(sum(tl.get("samples", [])) == n_old * TOTAL,
                f"the timeline (split into 10 m intervals) sums to the total: {sum(tl.get('samples', []))}")
    c.check(metric(gw, "hotpath_store_gateway_block_loads_total") >= 1, "the store-gateway read the block")

    # Label queries see the store-gateway's series too.
    now = int(time.time() * 1000)
    status, body, _ = http("POST", f"{cl.qry}/querier.v1.QuerierService/LabelValues",
                           json.dumps({"name": "service_name", "start": str(now - 3600000),
                                       "end": str(now)}).encode(), {"Content-Type": "application/json"})
    names = json.loads(body).get("names", []) if status == 200 else body
    c.check(status == 200 and "sg.old" in names, f"LabelValues includes the old service: {names}")

    # Recent data: head → ingester block → store-gateway, exact throughout.
    t0 = time.time_ns()
    n_new = sum(push(cl, "sg.new", t0 + i * 10**6) == 200 for i in range(4))
    seen = set()
    uploads = metric(ing, "hotpath_ingester_block_uploads_total")
    deadline = time.time() + 60
    while time.time() < deadline:
        status, r = total(cl, "sg.new")
        seen.add(r["flamebearer"]["numTicks"] if r else status)
        if (metric(ing, "hotpath_ingester_block_uploads_total") > uploads and
                metric(ing, "hotpath_ingester_local_blocks") == 0 and time.time_ns() - t0 > 14 * 10**9):
            break
        time.sleep(0.3)
    status, r = total(cl, "sg.new")
    seen.add(r["flamebearer"]["numTicks"] if r else status)
    c.check(seen == {n_new * TOTAL}, f"recent data, from head to store-gateway: saw {sorted(seen)}, "
            f"want {n_new * TOTAL}")

    # A damaged page: skipped, counted, the query still answers.
    datas = glob.glob(os.path.join(cl.data, "blocks-store", "anonymous", "blocks", "*", "data"))
    c.check(len(datas) >= 2, f"the store holds the blocks: {datas}")
    with open(datas[0], "r+b") as f:
        f.seek(24)
        b = f.read(1)
        f.seek(24)
        f.write(bytes([b[0] ^ 0x5A]))
    statuses = {total(cl, s)[0] for s in ("sg.old", "sg.new")}
    c.check(statuses == {200}, f"queries over a damaged block still answer: {statuses}")
    c.check(metric(gw, "hotpath_store_gateway_damaged_blocks_total") == 1,
            "the store-gateway counts the damaged block")

    # The store-gateway goes away: old data cannot be complete → 503.
    pid = int(open(os.path.join(cl.data, "pids", "store-gateway-0.pid")).read())
    os.kill(pid, signal.SIGKILL)
    status = None
    for _ in range(40):
        status, _ = total(cl, "sg.old")
        if status == 503:
            break
        time.sleep(0.25)
    c.check(status == 503, f"with its only store-gateway down, an old-range query is refused: {status}")
    now = int(time.time() * 1000)
    status, _ = connect_json(cl.qry, "SelectMergeStacktraces",
                             {"profileTypeID": TID, "labelSelector": '{service_name="sg.new"}',
                              "start": str(now - 2000), "end": str(now + 60000)})
    c.check(status == 200, f"a recent-range query does not need the store-gateway: {status}")
finally:
    cl.finish(c)

# A query that would read too much is refused up front, with the reason.
cl = Cluster(ingesters=1, rf=1, flags=["-querier.max-query-bytes=20000"])
try:
    t0 = time.time_ns()
    c.check(push(cl, "sg.bytes", t0) == 200, "one push acked")
    status, r = total(cl, "sg.bytes")
    c.check(status == 200, f"one profile (315 samples, ~4 KB) is under a 20000-byte limit: {status}")
    n = sum(push(cl, "sg.bytes", t0 + i * 10**6) == 200 for i in range(1, 8))
    status, r = render(cl.qry, TID, '{service_name="sg.bytes"}')
    c.check(status == 400 and "max-query-bytes" in str(r), f"{n + 1} profiles are over it: {status} {str(r)[:200]}")
    status, r = total(cl, "sg.bytes", frm=str(t0 // 10**9 - 5), until=str(t0 // 10**9 + 2))
    c.check(status == 400, f"the limit applies per query, not per interval: {status} {str(r)[:200]}")
finally:
    cl.finish(c)
c.done()
