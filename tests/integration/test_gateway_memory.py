#!/usr/bin/env python3
"""A store-gateway's memory stays flat however many blocks it serves: with a
small -store-gateway.cache-bytes over a couple of hundred blocks, queries
that touch every block keep its cache within the budget (least recently
used indexes and symbols are dropped) and its RSS within the budget plus a
fixed overhead — measured here, asserted with a generous bound — while the
answers stay exact."""
import os
import time
import urllib.parse

from harness import CORPUS, Checks, Cluster, http, metric, multipart, ref_top, render, retime

c = Checks()
F = os.path.join(CORPUS, "go", "go_mix.cpu.pb.gz")
TOTAL, _ = ref_top(F + ".ref/top.1.cpu.txt")
TID = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
BLOCKS = 160
BUDGET = 1 << 20
FLAGS = ["-ring.heartbeat-period=500ms", "-ingester.max-block-duration=1s", "-ingester.flush-idle-period=200ms",
         "-ingester.flush-check-period=200ms", "-querier.query-store-after=5s",
         "-store-gateway.ignore-blocks-within=2s", "-store-gateway.sync-interval=1s",
         "-compactor.compaction-interval=1s", f"-store-gateway.cache-bytes={BUDGET}"]


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ASan keeps freed memory in quarantine (256 MiB by default), which would
# measure the sanitizer, not the cache: keep it small for this test.
os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4:malloc_context_size=5"
cl = Cluster(ingesters=1, rf=1, flags=FLAGS)
try:
    ing, gw = cl.ingester_url(0), f"http://127.0.0.1:{cl.base + 40}"
    data = open(F, "rb").read()
    base = (time.time_ns() - 3000 * 10**9) // 10**9 * 10**9  # 50 min back: old, inside the 1 h window
    acked = 0
    for i in range(BLOCKS):  # one profile per 1 s window: one block each
        body, ct = multipart([("profile", "profile.pprof", retime(data, base + i * 10**9 + 10**6))])
        acked += http("POST", f"{cl.dist}/ingest?" + urllib.parse.urlencode({"name": "mem"}), body,
                      {"Content-Type": ct})[0] == 200
    c.check(acked == BLOCKS, f"{acked} of {BLOCKS} pushes acked")
    deadline = time.time() + 180
    while time.time() < deadline and metric(gw, "hotpath_store_gateway_blocks") < BLOCKS:
        time.sleep(0.5)
    c.check(metric(gw, "hotpath_store_gateway_blocks") >= BLOCKS,
            f"the store-gateway knows {metric(gw, 'hotpath_store_gateway_blocks'):.0f} blocks")
    deadline = time.time() + 60
    while time.time() < deadline and metric(ing, "hotpath_ingester_local_blocks") > 0:
        time.sleep(0.5)
    pid = int(open(os.path.join(cl.data, "pids", "store-gateway-0.pid")).read())
    frm, until = str(base // 10**9 - 10), str(base // 10**9 + BLOCKS + 10)
    status, r = render(cl.qry, TID, '{service_name="mem"}', frm=frm, until=until)  # warm-up: code, pools
    before = rss_kb(pid)
    totals = set()
    peak_cache = 0
    for _ in range(4):
        status, r = render(cl.qry, TID, '{service_name="mem"}', frm=frm, until=until)
        totals.add(r["flamebearer"]["numTicks"] if status == 200 else status)
        peak_cache = max(peak_cache, metric(gw, "hotpath_store_gateway_cache_bytes"))
    after = rss_kb(pid)
    c.check(totals == {acked * TOTAL}, f"every query over all blocks is exact: {totals}, want {acked * TOTAL}")
    loads = metric(gw, "hotpath_store_gateway_block_loads_total")
    c.check(loads > BLOCKS, f"a cache smaller than the blocks' indexes reloads them: {loads:.0f} loads")
    c.check(metric(gw, "hotpath_store_gateway_cache_evictions_total") > 0, "the cache evicts")
    c.check(peak_cache <= 2 * BUDGET, f"the cache stays near its budget: peak {peak_cache:.0f} B, budget {BUDGET}")
    grew = (after - before) * 1024
    print(f"store-gateway RSS: {before} kB before the queries, {after} kB after ({grew / 2**20:.1f} MiB more) "
          f"over {BLOCKS} blocks with a {BUDGET >> 20} MiB cache")
    c.check(grew < BUDGET + 48 * 2**20, f"RSS grew {grew / 2**20:.1f} MiB: within the budget + 48 MiB")
finally:
    cl.finish(c)
c.done()
