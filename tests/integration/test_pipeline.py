#!/usr/bin/env python3
"""The whole pipeline, in seconds: 3 ingesters with RF 3, a store-gateway
and a compactor. Profiles of two services are pushed once (recent and old
timestamps) and then followed while they move head → ingester blocks (one
per replica) → uploaded blocks → one compacted block → served by the
store-gateway alone. Every answer the querier gives along the way must be
exactly the reference total of the pushed profiles (each profile counted
once, whichever copies exist at that moment), and at the end the flame
graph matches `go tool pprof` per function, the 3 replicas' blocks have
become one block per range, and the stored bytes have dropped about 3x."""
import glob
import json
import os
import time
import urllib.parse

from harness import CORPUS, Checks, Cluster, compare_render, http, metric, multipart, ref_top, render, retime

c = Checks()
TID = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
PROFILES = {"pipe.a": os.path.join(CORPUS, "go", "go_mix.cpu.pb.gz"),
            "pipe.b": os.path.join(CORPUS, "go", "go_shasort_2s.cpu.pb.gz")}
TOTALS = {svc: ref_top(f + ".ref/top.1.cpu.txt")[0] for svc, f in PROFILES.items()}
QSA = 10  # -querier.query-store-after, seconds
FLAGS = ["-ring.heartbeat-period=500ms", "-ingester.max-block-duration=2s", "-ingester.flush-idle-period=1s",
         "-ingester.flush-check-period=300ms", f"-querier.query-store-after={QSA}s",
         "-store-gateway.ignore-blocks-within=4s", "-store-gateway.sync-interval=1s",
         "-compactor.block-ranges=2s,4s,8s", "-compactor.compaction-delay=1s",
         "-compactor.compaction-interval=1s", "-compactor.deletion-delay=3s",
         "-querier.split-queries-by-interval=10m"]
N_PUSHES = 4


def push(cl, svc, ts_ns):
    body, ct = multipart([("profile", "profile.pprof", retime(open(PROFILES[svc], "rb").read(), ts_ns))])
    q = urllib.parse.urlencode({"name": svc + "{env=pipeline}"})
    return http("POST", f"{cl.dist}/ingest?{q}", body, {"Content-Type": ct})[0]


def totals(cl):
    """{service: numTicks or HTTP status} over the last 2 hours."""
    out = {}
    for svc in PROFILES:
        status, r = render(cl.qry, TID, f'{{service_name="{svc}"}}')
        out[svc] = r["flamebearer"]["numTicks"] if status == 200 else f"{status} {str(r)[:300]}"
    return out


def stored_blocks(cl, seen=None):
    """{block ULID: bytes} of the live (not deletion-marked) blocks in the
    store. With seen, also records {ULID: (bytes, meta)} of every block."""
    out = {}
    for d in glob.glob(os.path.join(cl.data, "blocks-store", "anonymous", "blocks", "*")):
        try:
            meta = json.load(open(os.path.join(d, "meta.json")))
            size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        except (OSError, ValueError):
            continue  # not complete yet, or just deleted
        if seen is not None:
            seen.setdefault(os.path.basename(d), (size, meta))
        if not os.path.exists(os.path.join(d, "deletion-mark.json")):
            out[os.path.basename(d)] = size
    return out


def sum_metric(urls, name):
    return sum(metric(u, name) for u in urls)


class Follow:
    """Queries the totals at every poll and remembers every answer seen."""

    def __init__(self, cl, want, blocks):
        self.cl, self.want, self.seen = cl, want, {svc: set() for svc in want}
        self.blocks = blocks  # every block seen in the store: {ULID: (bytes, meta)}
        self.stages = []
        self.wrong = []  # (stage reached so far, service, answer) of inexact answers

    def poll(self):
        stored_blocks(self.cl, self.blocks)
        for svc, v in totals(self.cl).items():
            self.seen[svc].add(v)
            if v != self.want[svc] and len(self.wrong) < 10:
                self.wrong.append((self.stages[-1] if self.stages else "start", svc, v))

    def until(self, stage, cond, seconds=90):
        deadline = time.time() + seconds
        while time.time() < deadline:
            self.poll()
            if cond():
                self.stages.append(stage)
                return True
            time.sleep(0.25)
        return False

    def exact(self):
        return all(self.seen[svc] == {self.want[svc]} for svc in self.want)


def wait_ready(url, seconds=60):
    for _ in range(seconds * 5):
        try:
            if http("GET", url + "/ready", timeout=2)[0] == 200:
                return True
        except Exception:
            pass
        time.sleep(0.2)
    return False


def run(cl, label, ts0_ns, blocks, earlier=0):
    """Pushes N_PUSHES profiles per service at ts0_ns and follows them to the
    store-gateway; earlier = pushes per service already in the queried range.
    Records every block it sees in blocks."""
    ings = [cl.ingester_url(i) for i in range(3)]
    gw, cmp = cl.gateway_url(), cl.compactor_url()
    uploads0 = sum_metric(ings, "hotpath_ingester_block_uploads_total")
    compacted0 = metric(cmp, "hotpath_compactor_blocks_compacted_total")
    deleted0 = metric(cmp, "hotpath_compactor_blocks_deleted_total")
    acked = {svc: sum(push(cl, svc, ts0_ns + i * 10**6) == 200 for i in range(N_PUSHES)) for svc in PROFILES}
    c.check(all(n == N_PUSHES for n in acked.values()), f"{label}: every push acked: {acked}")
    want = {svc: (earlier + N_PUSHES) * TOTALS[svc] for svc in PROFILES}
    f = Follow(cl, want, blocks)
    f.poll()
    f.stages.append("head")

    f.until("ingester blocks", lambda: all(metric(u, "hotpath_ingester_local_blocks") >= 1 or
                                            metric(u, "hotpath_ingester_block_uploads_total") > 0 for u in ings))
    ok = f.until("uploaded", lambda: sum_metric(ings, "hotpath_ingester_block_uploads_total") >= uploads0 + 3)
    c.check(ok, f"{label}: each of the 3 replicas uploads its block")
    ok = f.until("compacted", lambda: metric(cmp, "hotpath_compactor_blocks_compacted_total") >= compacted0 + 3)
    c.check(ok, f"{label}: the compactor merges the replicas' blocks")
    ok = f.until("store-gateway only",
                 lambda: (metric(cmp, "hotpath_compactor_blocks_deleted_total") >= deleted0 + 3 and
                          sum_metric(ings, "hotpath_ingester_local_blocks") == 0 and
                          metric(gw, "hotpath_store_gateway_blocks") >= 1 and
                          time.time_ns() - ts0_ns > (QSA + 2) * 10**9))
    c.check(ok, f"{label}: sources deleted, ingesters hold no blocks, the store-gateway serves the data")
    f.poll()
    c.check(f.exact(), f"{label}: every answer at every stage ({' → '.join(f.stages)}) was exact: "
            f"saw {f.seen}, want {want}; inexact after: {f.wrong}")


cl = Cluster(ingesters=3, rf=3, flags=FLAGS, compactors=1)
try:
    c.check(wait_ready(cl.gateway_url()) and wait_ready(cl.compactor_url()),
            "the store-gateway and the compactor become ready")
    c.check(cl.wait_ring(3), "the distributor and the querier see the 3 ingesters")
    # Old profiles: flushed at once (their window is long over), so they
    # reach the store-gateway without waiting for -querier.query-store-after.
    blocks = {}
    run(cl, "old data", time.time_ns() - 30 * 60 * 10**9, blocks)
    # Recent profiles: first answered by the ingesters' heads.
    run(cl, "recent data", time.time_ns(), blocks, earlier=N_PUSHES)

    print(f"selections planned again (data moved between phases): "
          f"{metric(cl.qry, 'hotpath_querier_replans_total'):.0f}", flush=True)
    gw = cl.gateway_url()
    loads = metric(gw, "hotpath_store_gateway_block_loads_total")
    c.check(loads >= 1, f"the store-gateway read blocks: {loads}")
    for svc, f in PROFILES.items():
        status, r = render(cl.qry, TID, f'{{service_name="{svc}"}}')
        why = compare_render(r, f + ".ref/top.1.cpu.txt", 2 * N_PUSHES) if status == 200 else status
        c.check(why is None, f"{svc}: old and recent together match go tool pprof per function: {why}")

    # RF 3 → one copy: a third of the blocks and about a third of the bytes.
    uploaded = {u: v[0] for u, v in blocks.items() if v[1].get("source") == "ingester"}
    after = stored_blocks(cl)
    b_bytes, a_bytes = sum(uploaded.values()), sum(after.values())
    print(f"ingester blocks {len(uploaded)} ({b_bytes} bytes) → live blocks {len(after)} ({a_bytes} bytes)", flush=True)
    c.check(len(uploaded) >= 6 and len(uploaded) % 3 == 0 and len(after) * 3 <= len(uploaded),
            f"the replicas' blocks become one per range: {len(uploaded)} → {len(after)}")
    c.check(a_bytes > 0 and a_bytes * 2.5 <= b_bytes,
            f"stored bytes drop about 3x: {b_bytes} → {a_bytes} ({b_bytes / max(a_bytes, 1):.2f}x)")
    c.check(all(blocks[u][1].get("source") != "ingester" for u in after),
            f"every live block is a compacted one: {[blocks.get(u, (0, {}))[1].get('source') for u in after]}")
    idx = os.path.join(cl.data, "blocks-store", "anonymous", "bucket-index.json.gz")
    c.check(os.path.exists(idx), "the compactor keeps the tenant's bucket index")

    # Label and series queries see the same two services through the store-gateway.
    now = int(time.time() * 1000)
    status, body, _ = http("POST", f"{cl.qry}/querier.v1.QuerierService/LabelValues",
                           json.dumps({"name": "service_name", "start": str(now - 3600_000),
                                       "end": str(now)}).encode(), {"Content-Type": "application/json"})
    names = json.loads(body).get("names", []) if status == 200 else body
    c.check(status == 200 and sorted(names) == sorted(PROFILES), f"LabelValues: {names}")
finally:
    cl.finish(c)
c.done()
