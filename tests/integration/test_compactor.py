#!/usr/bin/env python3
"""The compactor against a real cluster (3 ingesters, RF 3, 2-second
windows, the filesystem object store):

(a) the 3 replica blocks of each window merge into one block per window,
    and the blocks of adjacent windows into one larger block: stored bytes
    drop below half, the merged block holds each profile once (as many as
    one replica), and its contents — read back through the compactor's
    block view, since the querier does not read the object store yet —
    give the same per-series totals as one replica and the per-function
    values of `go tool pprof` times the number of pushes;
(b) the state a crash leaves (a merged block whose sources were never
    marked, an abandoned upload, a deletion cut short) is repaired at the
    next start without merging anything twice, and a compactor SIGKILLed
    in the middle of a cycle ends, after a restart, with the same result;
(c) retention from the runtime config file (re-read every cycle) marks
    and then deletes a tenant's old blocks, and only those;
(d) delete-series removes exactly the selected service's series (others
    untouched, request listed and finished), bad input is refused with a
    message naming the parameter, and delete-tenant removes a tenant.
"""
import glob
import gzip
import json
import os
import random
import shutil
import signal
import time
import urllib.parse

from harness import CORPUS, UNSYMBOLIZED, Checks, Cluster, free_port, http, metric, multipart, ref_top, retime

c = Checks()
F = os.path.join(CORPUS, "go", "go_mix.cpu.pb.gz")
TOTAL, FLAT = ref_top(F + ".ref/top.1.cpu.txt")
CPU_TYPE = ":cpu:nanoseconds:"
FLAGS = ["-ring.heartbeat-period=500ms", "-ingester.max-block-duration=2s", "-ingester.flush-idle-period=1s",
         "-ingester.flush-check-period=300ms", "-auth.multitenancy-enabled=true"]
DELETION_DELAY = 3
CMP_FLAGS = ["-compactor.block-ranges=2s,4s,8s", "-compactor.compaction-delay=1s",
             "-compactor.compaction-interval=1h", f"-compactor.deletion-delay={DELETION_DELAY}s",
             "-compactor.partial-block-deletion-delay=1m", "-server.rpc-listen-port=0", "-ring.instance-id=compactor-0"]
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Old, aligned windows: complete at once for the compactor. W0 and W1 are
# two 2 s windows inside one 4 s window.
BASE_MS = (int(time.time() * 1000) - 600_000) // 8000 * 8000
W0, W1 = BASE_MS, BASE_MS + 2000


def push(cl, tenant, svc, ts_ms, i):
    body, ct = multipart([("profile", "p.pprof", retime(open(F, "rb").read(), ts_ms * 1_000_000 + i * 1000))])
    q = urllib.parse.urlencode({"name": svc + "{env=cmp}"})
    return http("POST", f"{cl.dist}/ingest?{q}", body, {"Content-Type": ct, "X-Scope-OrgID": tenant})[0]


def push_n(cl, tenant, svc, ts_ms, n):
    return sum(push(cl, tenant, svc, ts_ms + i, i) == 200 for i in range(n))


def wait_for(what, cond, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.25)
    c.check(False, f"timed out waiting for {what}")
    return None


class Store:
    """The filesystem object store, read directly."""

    def __init__(self, root):
        self.root = root

    def dirs(self, tenant):
        return sorted(os.path.basename(d) for d in glob.glob(os.path.join(self.root, tenant, "blocks", "*")))

    def path(self, tenant, ulid, f=""):
        return os.path.join(self.root, tenant, "blocks", ulid, f)

    def metas(self, tenant):
        out = {}
        for u in self.dirs(tenant):
            try:
                out[u] = json.load(open(self.path(tenant, u, "meta.json")))
            except (OSError, ValueError):
                pass
        return out

    def marked(self, tenant, ulid):
        return os.path.exists(self.path(tenant, ulid, "deletion-mark.json"))

    def live(self, tenant):
        return {u: m for u, m in self.metas(tenant).items() if not self.marked(tenant, u)}

    def data_size(self, tenant, ulid):
        return os.path.getsize(self.path(tenant, ulid, "data"))

    def index(self, tenant):
        try:
            return json.loads(gzip.decompress(open(os.path.join(self.root, tenant, "bucket-index.json.gz"), "rb").read()))
        except OSError:
            return None


class Compactor:
    def __init__(self, cl, extra):
        self.cl = cl
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        p, ready = cl.start_component("compactor", "hotpath-compactor", self.port, CMP_FLAGS + extra)
        c.check(ready, "the compactor starts and is ready")
        self.wait_first()

    def wait_first(self):
        wait_for("the compactor's first cycle", lambda: metric(self.url, "hotpath_compactor_runs_total") >= 1)

    def run(self):
        """Triggers a cycle and waits (bounded) until it has finished."""
        n = metric(self.url, "hotpath_compactor_runs_total")
        status, body, _ = http("POST", self.url + "/compactor/run", b"")
        c.check(status == 202, f"POST /compactor/run: {status} {body[:200]!r}")
        wait_for("a compaction cycle", lambda: metric(self.url, "hotpath_compactor_runs_total") > n)

    def block(self, tenant, ulid):
        status, body, _ = http("GET", f"{self.url}/compactor/block?id={ulid}&functions=1",
                               headers={"X-Scope-OrgID": tenant})
        c.check(status == 200, f"block view of {ulid}: {status} {body[:300]!r}")
        return json.loads(body) if status == 200 else {"series": []}

    def post(self, path, tenant, form=None, query=""):
        headers = {"X-Scope-OrgID": tenant} if tenant else {}
        body = b""
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        status, resp, _ = http("POST", f"{self.url}{path}{query}", body, headers)
        return status, resp.decode(errors="replace")

    def requests(self, tenant):
        status, body, _ = http("GET", self.url + "/compactor/deletion-requests", headers={"X-Scope-OrgID": tenant})
        return json.loads(body)["requests"] if status == 200 else None


def series_by_service(view):
    """{(service, profile type): series} of a block view."""
    return {(s["labels"].get("service_name"), s["labels"].get("__profile_type__")): s for s in view["series"]}


def cpu_series(view, svc):
    for (name, ptype), s in series_by_service(view).items():
        if name == svc and CPU_TYPE in ptype:
            return s
    return None


def wait_blocks(store, tenant, n, what):
    got = wait_for(f"{n} blocks of {what}", lambda: len(store.metas(tenant)) >= n and store.metas(tenant))
    time.sleep(1.5)  # nothing more should come
    metas = store.metas(tenant)
    c.check(got and len(metas) == n, f"{what}: {n} level-1 blocks (RF 3), got {len(metas)}")
    return metas


def make_ulid(ms):
    t = "".join(CROCKFORD[(ms >> (5 * (9 - i))) & 31] for i in range(10))
    return t + "".join(random.choice(CROCKFORD) for _ in range(16))


# ---- (a) replicas and adjacent windows merge ----

def part_merge(cl, store, cmp):
    t = "team-a"
    acked = push_n(cl, t, "svc-a", W0, 4) + push_n(cl, t, "svc-a", W1, 4)
    c.check(acked == 8, f"(a) 8 pushes acked, got {acked}")
    level1 = wait_blocks(store, t, 6, "(a) two windows")
    windows = {}
    for u, m in level1.items():
        windows.setdefault(m["minTime"] // 2000, []).append(u)
    c.check(sorted(len(v) for v in windows.values()) == [3, 3],
            f"(a) 3 replica blocks per window: {[(k, len(v)) for k, v in windows.items()]}")
    c.check(all(m["compaction"]["level"] == 1 and m["source"] == "ingester" for m in level1.values()),
            "(a) replica blocks are level 1, from the ingesters")
    replica = {}
    for w, us in windows.items():
        counts = {level1[u]["stats"]["numProfiles"] for u in us}
        c.check(counts == {8}, f"(a) every replica of a window holds 8 profiles (4 pushes x 2 types): {counts}")
        views = [cmp.block(t, u) for u in us]
        c.check(all(series_by_service(v) == series_by_service(views[0]) for v in views),
                "(a) the replicas of a window hold identical series, totals and function values")
        replica[w] = views[0]
    before_bytes = sum(store.data_size(t, u) for u in level1)
    c.check(store.live(t) == level1, "(a) nothing is compacted before the compactor runs")

    cmp.run()
    live = store.live(t)
    c.check(len(live) == 1, f"(a) after a cycle, one block is left: {list(live)}")
    if len(live) != 1:
        return
    (u, m), = live.items()
    c.check(m["compaction"]["level"] == 3 and m["source"] == "compactor",
            f"(a) replicas merged per window (level 2), then the windows into one 4 s block (level 3): {m}")
    c.check(sorted(m["compaction"].get("sources", [])) == sorted(level1),
            "(a) compaction.sources lists the six level-1 blocks")
    c.check(all(store.marked(t, x) for x in level1), "(a) the six replica blocks are marked for deletion")
    c.check(m["stats"]["numProfiles"] == 16 and m["stats"]["numSeries"] == 2,
            f"(a) the merged block holds each profile once: 16 profiles, 2 series ({m['stats']})")
    after = store.data_size(t, u)
    c.check(after < 0.5 * before_bytes, f"(a) stored bytes drop below half: {before_bytes} -> {after}")
    print(f"(a) six replica blocks {before_bytes} bytes -> one block {after} bytes", flush=True)

    view = cmp.block(t, u)
    merged = series_by_service(view)
    sums = {}
    for v in replica.values():
        for k, s in series_by_service(v).items():
            acc = sums.setdefault(k, {"profiles": 0, "total": 0, "self": {}})
            acc["profiles"] += s["profiles"]
            acc["total"] += s["total"]
            for fn, x in s["self"].items():
                acc["self"][fn] = acc["self"].get(fn, 0) + x
    same = set(sums) == set(merged) and all(
        merged[k]["profiles"] == v["profiles"] and merged[k]["total"] == v["total"] and merged[k]["self"] == v["self"]
        for k, v in sums.items())
    c.check(same, "(a) the merged block's series, totals and per-function values equal one replica's of each window")
    cpu = cpu_series(view, "svc-a")
    c.check(cpu is not None and cpu["total"] == 8 * TOTAL, f"(a) cpu total is 8 x go tool pprof's {TOTAL}")
    bad = [fn for fn, v in FLAT.items() if not UNSYMBOLIZED.match(fn) and (cpu or {}).get("self", {}).get(fn, 0) != 8 * v]
    c.check(not bad, f"(a) per-function values are 8 x go tool pprof's flat: {bad[:5]}")
    idx = store.index(t)
    marks = {m["block_id"] for m in idx["block_deletion_marks"]} if idx else set()
    listed = {b["block_id"] for b in idx["blocks"]} if idx else set()
    c.check(idx is not None and idx["version"] == 1 and u in listed and set(level1) <= marks and
            marks == listed - {u} and len(marks) == 8,
            f"(a) the bucket index lists the new block, and marks on the six replicas and the two "
            f"intermediate level-2 blocks: {str(idx)[:300]}")

    time.sleep(DELETION_DELAY + 0.5)
    cmp.run()
    c.check(store.dirs(t) == [u], f"(a) after the deletion delay only the merged block is left: {store.dirs(t)}")
    idx = store.index(t)
    c.check(idx and [b["block_id"] for b in idx["blocks"]] == [u] and not idx["block_deletion_marks"],
            "(a) the bucket index lists the merged block only")
    c.check(metric(cmp.url, "hotpath_compactor_blocks_deleted_total") >= 6, "(a) deletions are counted")
    return u


# ---- (b) crashes ----

def part_crash(cl, store, cmp):
    t = "team-b"
    c.check(push_n(cl, t, "svc-b", W0, 4) == 4, "(b) pushes acked")
    level1 = wait_blocks(store, t, 3, "(b) one window")
    cmp.run()
    live = store.live(t)
    c.check(len(live) == 1, f"(b) merged: {list(live)}")
    if len(live) != 1:
        return
    (merged, meta), = live.items()
    now_ms = int(time.time() * 1000)
    abandoned, cut_short, uploading = make_ulid(now_ms - 7_200_000), make_ulid(now_ms), make_ulid(now_ms)

    def crash_state():
        # a crash between the upload of `merged` and the marks on its sources
        for u in level1:
            os.remove(store.path(t, u, "deletion-mark.json"))
        os.remove(os.path.join(store.root, t, "bucket-index.json.gz"))
        # an upload abandoned two hours ago, a deletion cut short after
        # meta.json went, and an upload in progress
        for u in (abandoned, cut_short, uploading):
            os.makedirs(store.path(t, u))
            shutil.copy(store.path(t, merged, "data"), store.path(t, u, "data"))
        open(store.path(t, cut_short, "deletion-mark.json"), "w").write(
            json.dumps({"id": cut_short, "deletion_time": now_ms // 1000, "version": 1}))

    cl.restart_component("compactor", signal.SIGKILL, crash_state)
    cmp.wait_first()
    c.check(all(store.marked(t, u) for u in level1), "(b) after the restart the covered sources are marked again")
    c.check(metric(cmp.url, "hotpath_compactor_compactions_total") == 0, "(b) nothing was merged a second time")
    c.check(list(store.live(t)) == [merged], f"(b) the merged block is the only live one: {list(store.live(t))}")
    c.check(store.metas(t)[merged] == meta, "(b) the merged block is unchanged")
    dirs = store.dirs(t)
    c.check(abandoned not in dirs and cut_short not in dirs,
            f"(b) the abandoned upload and the deletion cut short are removed: {dirs}")
    c.check(uploading in dirs, "(b) an upload that may still be in progress is left alone")
    idx = store.index(t)
    ids = [b["block_id"] for b in idx["blocks"]] if idx else []
    c.check(idx is not None and uploading not in ids and merged in ids,
            "(b) a block without meta.json is never in the bucket index")
    c.check(metric(cmp.url, "hotpath_compactor_partial_blocks_deleted_total") == 2, "(b) partial blocks counted")

    # a real SIGKILL somewhere in a cycle, then a restart
    t = "team-c"
    c.check(push_n(cl, t, "svc-c", W0, 4) == 4, "(b) pushes acked")
    level1 = wait_blocks(store, t, 3, "(b) SIGKILL tenant")
    http("POST", cmp.url + "/compactor/run", b"")
    time.sleep(random.uniform(0, 0.05))
    cl.restart_component("compactor", signal.SIGKILL)
    cmp.wait_first()
    for _ in range(3):
        if len(store.live(t)) == 1:
            break
        cmp.run()
    live = store.live(t)
    c.check(len(live) == 1, f"(b) after a SIGKILL and a restart the window is one block: {list(live)}")
    if len(live) == 1:
        (u, m), = live.items()
        c.check(m["stats"]["numProfiles"] == 8 and set(m["compaction"].get("sources", [])) == set(level1),
                f"(b) no profile lost and none twice: {m['stats']}")
    idx = store.index(t)
    listed = {b["block_id"] for b in idx["blocks"]} if idx else set()
    c.check(listed <= set(store.metas(t)), "(b) the index lists only blocks that have meta.json")
    for u in store.metas(t):
        c.check(store.data_size(t, u) == store.metas(t)[u]["files"][0]["sizeBytes"],
                f"(b) every visible block is complete: {u}")


# ---- (c) retention ----

def part_retention(cl, store, cmp, runtime):
    t = "team-r"
    c.check(push_n(cl, t, "svc-r", W0, 3) == 3, "(c) old pushes acked")
    wait_blocks(store, t, 3, "(c) old window")
    cmp.run()
    old = list(store.live(t))
    c.check(len(old) == 1, f"(c) compacted while no retention applies: {old}")
    now_ms = int(time.time() * 1000)
    c.check(push_n(cl, t, "svc-r", now_ms, 3) == 3, "(c) recent pushes acked")
    wait_for("(c) the recent blocks", lambda: len(store.live(t)) >= 4)

    open(runtime, "w").write("overrides:\n  team-r:\n    compactor_blocks_retention_period: 5m\n"
                             "    ingestion_rate_mb: 4\n  team-q: {}\n")
    cmp.run()
    c.check(old and store.marked(t, old[0]), "(c) the block older than the tenant's 5m retention is marked")
    live = store.live(t)
    c.check(len(live) >= 1 and all(m["maxTime"] > now_ms - 300_000 for m in live.values()),
            f"(c) recent blocks are kept: {len(live)}")
    c.check(len(store.live("team-a")) == 1, "(c) other tenants keep their old blocks (no retention by default)")
    c.check(metric(cmp.url, 'hotpath_compactor_blocks_marked_for_deletion_total{reason="retention"}') >= 1,
            "(c) retention marks are counted")

    open(runtime, "w").write("overrides: [broken\n")
    time.sleep(DELETION_DELAY + 0.5)
    cmp.run()
    log = open(os.path.join(cl.data, "logs", "compactor.log"), errors="replace").read()
    c.check("runtime config not loaded" in log, "(c) a broken runtime config is logged")
    c.check(old and old[0] not in store.dirs(t), "(c) after the deletion delay the expired block is deleted")
    c.check(len(store.live(t)) >= 1, "(c) the last good overrides stay: recent blocks are still there")


# ---- (d) deletion requests ----

def part_delete(cl, store, cmp):
    t = "team-d"
    n = push_n(cl, t, "keep", W0, 4) + push_n(cl, t, "gone", W0 + 100, 4)
    c.check(n == 8, "(d) pushes acked")
    wait_blocks(store, t, 3, "(d) two services")
    cmp.run()
    live = store.live(t)
    c.check(len(live) == 1, "(d) merged")
    if len(live) != 1:
        return
    (before_id, before), = live.items()
    view = cmp.block(t, before_id)
    keep_before = {k: s for k, s in series_by_service(view).items() if k[0] == "keep"}
    c.check(before["stats"]["numSeries"] == 4 and len(keep_before) == 2, f"(d) 4 series before: {before['stats']}")

    sel = '{service_name="gone"}'
    bad = [({}, "selector"), ({"selector": "{service_name="}, "selector"), ({"selector": "{}"}, "selector"),
           ({"selector": sel, "start": "yesterday"}, "start"), ({"selector": sel, "end": "x1"}, "end"),
           ({"selector": sel, "start": "now", "end": "now-1h"}, "start")]
    for form, word in bad:
        status, msg = cmp.post("/compactor/delete-series", t, form)
        c.check(status == 400 and word in msg, f"(d) {form} is refused naming {word}: {status} {msg.strip()}")
    status, msg = cmp.post("/compactor/delete-series", None, {"selector": sel})
    c.check(status == 401, f"(d) no X-Scope-OrgID: 401, got {status}")
    status, msg = cmp.post("/compactor/delete-series", t, {"selector": sel, "start": str(W0 // 1000 - 60)})
    c.check(status == 202 and "requestId" in msg, f"(d) delete-series accepted: {status} {msg}")
    rid = json.loads(msg)["requestId"] if status == 202 else ""
    reqs = cmp.requests(t)
    c.check(reqs and reqs[0]["request_id"] == rid and reqs[0]["state"] == "pending" and reqs[0]["selector"] == sel,
            f"(d) the request is listed as pending: {reqs}")

    cmp.run()
    live = store.live(t)
    c.check(len(live) == 1 and store.marked(t, before_id), f"(d) the block is rewritten: {list(live)}")
    if len(live) == 1:
        (after_id, after), = live.items()
        view = cmp.block(t, after_id)
        names = {k[0] for k in series_by_service(view)}
        c.check(names == {"keep"}, f"(d) only the other service's series are left: {names}")
        keep_after = series_by_service(view)
        c.check(keep_after == keep_before, "(d) the other service's series are untouched (profiles, totals, functions)")
        c.check(after["stats"]["numSeries"] == 2 and after["stats"]["numProfiles"] == 8,
                f"(d) meta.json counts 2 series and 8 profiles: {after['stats']}")
    time.sleep(3)
    cmp.run()
    reqs = cmp.requests(t)
    c.check(reqs and reqs[0]["state"] == "done" and reqs[0]["blocks_rewritten"] == 1,
            f"(d) the request is done once every block that could hold its data was checked: {reqs}")

    # delete-tenant
    t = "team-x"
    c.check(push_n(cl, t, "svc-x", W0, 2) == 2, "(d) pushes acked")
    blocks = wait_blocks(store, t, 3, "(d) tenant to delete")
    status, msg = cmp.post("/compactor/delete-tenant", t)
    c.check(status == 202 and "requestId" in msg, f"(d) delete-tenant accepted: {status} {msg}")
    cmp.run()
    c.check(all(store.marked(t, u) for u in blocks) and not store.live(t), "(d) every block of the tenant is marked")
    time.sleep(max(DELETION_DELAY, 3) + 0.5)
    cmp.run()
    c.check(store.dirs(t) == [], f"(d) the tenant's blocks are deleted: {store.dirs(t)}")
    reqs = cmp.requests(t)
    c.check(reqs and reqs[0]["kind"] == "tenant" and reqs[0]["state"] == "done",
            f"(d) the tenant request is done: {reqs}")


# ---- a ring of compactors shares the tenants ----

def part_ring(cl, store):
    tenants = sorted(os.path.basename(d) for d in glob.glob(os.path.join(store.root, "*")))
    cl.stop_component("compactor")
    ports = [(free_port(), free_port()) for _ in range(2)]
    ring = ",".join(f"tcp://127.0.0.1:{rpc}" for _, rpc in ports)
    urls = []
    for i, (http_port, rpc) in enumerate(ports):
        p, ready = cl.start_component(f"compactor-r{i}", "hotpath-compactor", http_port,
                                      CMP_FLAGS + [f"-server.rpc-listen-port={rpc}", f"-ring.instance-id=ring-{i}",
                                                   f"-compactor.ring.members={ring}"])
        c.check(ready, f"ring compactor {i} starts")
        urls.append(f"http://127.0.0.1:{http_port}")
    for u in urls:
        wait_for("a ring compactor's first cycle", lambda: metric(u, "hotpath_compactor_runs_total") >= 1)
    time.sleep(1.5)  # a few heartbeats: each has seen the other (before, the first may own everything)
    for u in urls:
        n = metric(u, "hotpath_compactor_runs_total")
        http("POST", u + "/compactor/run", b"")
        wait_for("a ring compactor's cycle", lambda: metric(u, "hotpath_compactor_runs_total") > n)
    owned = [metric(u, "hotpath_compactor_tenants_owned") for u in urls]
    c.check(sum(owned) == len(tenants), f"(ring) every tenant has exactly one owner: {owned} of {tenants}")
    c.check(all(n > 0 for n in owned), f"(ring) both compactors own tenants: {owned}")
    status, body, _ = http("GET", urls[0] + "/ring", headers={"Accept": "application/json"})
    c.check(status == 200 and b"ring-0" in body and b"ring-1" in body, f"(ring) GET /ring shows both: {body[:200]!r}")


cl = Cluster(ingesters=3, rf=3, flags=FLAGS)
try:
    wait_for("the distributor to see three ACTIVE ingesters", lambda: cl.ring_complete(3))
    store = Store(os.path.join(cl.data, "blocks-store"))
    runtime = os.path.join(cl.tmp, "runtime.yaml")
    open(runtime, "w").write("overrides: {}\n")
    cmp = Compactor(cl, [f"-runtime-config.file={runtime}"])
    part_merge(cl, store, cmp)
    part_crash(cl, store, cmp)
    part_retention(cl, store, cmp, runtime)
    part_delete(cl, store, cmp)
    c.check(metric(cmp.url, "hotpath_compactor_runs_failed_total") == 0, "no cycle failed")
    part_ring(cl, store)
finally:
    cl.finish(c)
c.done()
