#!/usr/bin/env python3
"""Heads flush to blocks (seconds-long windows here): blocks appear in the
filesystem store and in a real S3 server (s3rver), and queries over the
same range answer exactly as before the flush — also after a restart,
which neither loses nor double counts. With the object store down the
ingester keeps flushing, keeps the blocks locally and serves them, loses
nothing across a SIGKILL, and uploads once the store is back. A damaged
local block is skipped by queries (counted, logged); one not yet uploaded
is dropped at the next start and rebuilt from the WAL."""
import glob
import json
import os
import shutil
import signal
import tempfile
import time
import urllib.parse

from harness import (CORPUS, Checks, Cluster, S3rver, compare_render, connect_json, http, metric, multipart,
                     ref_top, render, retime)

c = Checks()
F = os.path.join(CORPUS, "go", "go_mix.cpu.pb.gz")
TOTAL, _ = ref_top(F + ".ref/top.1.cpu.txt")
TID = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
# 2 s windows; a head flushes 4 s after its last write (enough for the
# "before" queries), checked every 300 ms.
FLAGS = ["-ring.heartbeat-period=500ms", "-ingester.max-block-duration=2s", "-ingester.flush-idle-period=4s",
         "-ingester.flush-check-period=300ms"]


def push(cl, svc, ts):
    body, ct = multipart([("profile", "profile.pprof", retime(open(F, "rb").read(), ts))])
    q = urllib.parse.urlencode({"name": svc + "{env=flush}"})
    return http("POST", f"{cl.dist}/ingest?{q}", body, {"Content-Type": ct})[0]


def push_many(cl, svc, n):
    base = time.time_ns()
    return sum(push(cl, svc, base + i * 1000) == 200 for i in range(n))


T0 = int(time.time())  # queries compared before and after use one fixed range


def snapshot(cl, svc):
    """What a user sees for svc: the flame graph with its timeline, label
    names and values, and the series."""
    sel = f'{{service_name="{svc}"}}'
    rng = {"start": str((T0 - 3600) * 1000), "end": str((T0 + 3600) * 1000)}
    out = {"render": render(cl.qry, TID, sel, frm=str(T0 - 3600), until=str(T0 + 3600))}
    out["names"] = connect_json(cl.qry, "LabelNames", dict(rng, matchers=[sel]))
    out["values"] = connect_json(cl.qry, "LabelValues", dict(rng, name="env", matchers=[sel]))
    out["series"] = connect_json(cl.qry, "Series", dict(rng, matchers=[sel], labelNames=["service_name", "env"]))
    return json.loads(json.dumps(out, sort_keys=True))  # tuples → lists, for comparing


def diff(a, b):
    """The first keys whose values differ, for a failure message."""
    return [(k, str(a.get(k))[:300], str(b.get(k))[:300]) for k in a if a.get(k) != b.get(k)][:2]


def total(cl, svc):
    status, r = render(cl.qry, TID, f'{{service_name="{svc}"}}')
    return r["flamebearer"]["numTicks"] if status == 200 else None


def wait_for(what, cond, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.25)
    c.check(False, f"timed out waiting for {what}")
    return None


def wait_total(cl, svc, want, seconds=30):
    got = None
    for _ in range(seconds * 4):
        got = total(cl, svc)
        if got == want:
            break
        time.sleep(0.25)
    return got


def flip_page_byte(block_dir):
    """Flips a byte in the first page (pages follow the 8-byte header)."""
    path = os.path.join(block_dir, "data")
    with open(path, "r+b") as f:
        f.seek(24)
        b = f.read(1)
        f.seek(24)
        f.write(bytes([b[0] ^ 0x5A]))


def local_blocks(cl, tenant="anonymous"):
    return sorted(d for d in glob.glob(os.path.join(cl.data, "ingester-0", "blocks", tenant, "*"))
                  if os.path.exists(os.path.join(d, "meta.json")))


def filesystem_part():
    cl = Cluster(ingesters=1, rf=1, flags=FLAGS)
    try:
        ing = cl.ingester_url(0)
        acked = push_many(cl, "fl.fs", 8)
        c.check(acked == 8, f"filesystem: {acked} of 8 pushes acked")
        before = snapshot(cl, "fl.fs")
        c.check(metric(ing, "hotpath_ingester_flushes_total") == 0, "the 'before' queries ran before any flush")
        c.check(before["render"][0] == 200 and before["render"][1]["flamebearer"]["numTicks"] == acked * TOTAL,
                "before the flush: the total is exact")
        store = os.path.join(cl.data, "blocks-store", "anonymous", "blocks")
        metas = wait_for("a block in the filesystem store",
                         lambda: metric(ing, "hotpath_ingester_block_uploads_total") >= 1 and
                         glob.glob(os.path.join(store, "*", "meta.json")))
        if metas:
            d = os.path.dirname(metas[0])
            meta = json.load(open(metas[0]))
            sizes = {f["relPath"]: f["sizeBytes"] for f in meta.get("files", [])}
            c.check(os.path.getsize(os.path.join(d, "data")) == sizes.get("data"),
                    f"the stored block's data has the size its meta.json gives: {meta}")
            c.check(meta.get("tenant") == "anonymous" and meta.get("stats", {}).get("numProfiles") == 2 * acked,
                    f"meta.json names the tenant and counts the profiles: {meta}")
        after = snapshot(cl, "fl.fs")
        c.check(after == before, "after the flush: flame graph, label names, values and series are identical")
        if after["render"][0] == 200:
            why = compare_render(after["render"][1], F + ".ref/top.1.cpu.txt", acked)
            c.check(why is None, f"after the flush, per-function values match go tool pprof: {why}")

        # A restart loads the local block and does not replay its (dropped) WAL.
        p, ready = cl.restart_ingester(0)
        c.check(ready, "the ingester restarts with its local blocks")
        got = wait_total(cl, "fl.fs", acked * TOTAL)
        c.check(got == acked * TOTAL, f"after a restart: total {got}, want {acked * TOTAL} (nothing twice)")
        c.check(snapshot(cl, "fl.fs") == before, "after a restart: identical answers")

        # A damaged local (uploaded) block: queries skip it and say so.
        blocks = local_blocks(cl)
        c.check(len(blocks) >= 1, f"the ingester keeps its block locally: {blocks}")
        for b in blocks:
            flip_page_byte(b)
        status, r = render(cl.qry, TID, '{service_name="fl.fs"}')
        c.check(status == 200, f"a query over a damaged block still answers: {status} {str(r)[:200]}")
        c.check(metric(ing, "hotpath_ingester_damaged_blocks_total") >= 1, "the damaged block is counted")
        log = open(os.path.join(cl.data, "logs", "ingester-0.log"), errors="replace").read()
        c.check("local block damaged" in log and "checksum mismatch" in log,
                "the damaged block is logged with the reason")

        # SIGTERM: the ingester flushes and uploads its heads before it exits.
        n = push_many(cl, "fl.term", 4)
        uploaded = len(glob.glob(os.path.join(store, "*", "meta.json")))
        c.check(cl.stop_ingester(0, signal.SIGTERM), "the ingester exits after SIGTERM")
        now = len(glob.glob(os.path.join(store, "*", "meta.json")))
        c.check(now == uploaded + 1, f"SIGTERM flushed and uploaded the open head before exit ({uploaded} → {now})")
        p, ready = cl.start_ingester(0)
        got = wait_total(cl, "fl.term", n * TOTAL)
        c.check(ready and got == n * TOTAL, f"after a SIGTERM and a start: {got}, want {n * TOTAL}")
    finally:
        cl.finish(c)


def s3_part(tmp):
    s3 = S3rver(os.path.join(tmp, "s3rver"))
    cl = None
    try:
        cl = Cluster(ingesters=1, rf=1, flags=FLAGS + s3.flags())
        ing = cl.ingester_url(0)
        acked = push_many(cl, "fl.s3", 6)
        before = snapshot(cl, "fl.s3")
        wait_for("a block uploaded to s3rver", lambda: any(k.endswith("/meta.json") for k in s3.keys("anonymous/")))
        keys = s3.keys("anonymous/blocks/")
        c.check(any(k.endswith("/data") for k in keys) and any(k.endswith("/meta.json") for k in keys),
                f"s3rver holds the block's data and meta.json: {keys}")
        after = snapshot(cl, "fl.s3")
        c.check(after == before, "S3: identical answers before and after the flush" +
                ("" if after == before else f": {diff(before, after)}"))
        status, body, _ = http("GET", ing + "/config")
        c.check(status == 200 and S3rver.SECRET.encode() not in body, "the S3 secret is not shown by /config")

        # The object store goes away: flushes go on, blocks stay local.
        s3.stop()
        uploads = metric(ing, "hotpath_ingester_block_uploads_total")
        flushes = metric(ing, "hotpath_ingester_flushes_total")
        more = push_many(cl, "fl.down", 5)
        c.check(more == 5, f"pushes are acked with the object store down: {more} of 5")
        wait_for("a flush while S3 is down", lambda: metric(ing, "hotpath_ingester_flushes_total") > flushes and
                 metric(ing, "hotpath_ingester_block_upload_errors_total") >= 1)
        c.check(metric(ing, "hotpath_ingester_block_uploads_total") == uploads, "nothing was uploaded meanwhile")
        got = total(cl, "fl.down")
        c.check(got == more * TOTAL, f"the flushed, not uploaded block is served: {got}, want {more * TOTAL}")

        # SIGKILL while the store is down: the local block, or (damaged) the
        # WAL, still has every acked profile.
        p, ready = cl.restart_ingester(0)
        c.check(ready, "restart with a block waiting for upload")
        got = wait_total(cl, "fl.down", more * TOTAL)
        c.check(got == more * TOTAL, f"after a restart with S3 down: {got}, want {more * TOTAL}")

        def damage():
            for b in local_blocks(cl):
                if not os.path.exists(os.path.join(b, "uploaded")):
                    flip_page_byte(b)
        p, ready = cl.restart_ingester(0, damage)
        c.check(ready, "restart with a damaged block that was not uploaded")
        got = wait_total(cl, "fl.down", more * TOTAL)
        c.check(got == more * TOTAL, f"the damaged block is rebuilt from the WAL: {got}, want {more * TOTAL}")
        c.check(metric(ing, "hotpath_ingester_damaged_blocks_total") >= 1, "the damaged block is counted")
        c.check(wait_total(cl, "fl.s3", acked * TOTAL) == acked * TOTAL, "earlier data is still all there")

        # The store comes back: the upload completes.
        s3.start()
        wait_for("the upload after S3 returns", lambda: metric(ing, "hotpath_ingester_block_uploads_total") >= 1 and
                 not [b for b in local_blocks(cl) if not os.path.exists(os.path.join(b, "uploaded"))], 90)
        metas = [k for k in s3.keys("anonymous/blocks/") if k.endswith("/meta.json")]
        c.check(len(metas) >= 2, f"s3rver now holds both blocks: {metas}")
        got = total(cl, "fl.down")
        c.check(got == more * TOTAL, f"after the upload: {got}, want {more * TOTAL}")
        log = open(os.path.join(cl.data, "logs", "ingester-0.log"), errors="replace").read()
        c.check(S3rver.SECRET not in log, "the S3 secret never appears in the logs")
    finally:
        if cl:
            cl.finish(c)
        s3.stop()


tmp = tempfile.mkdtemp(prefix="hp-flush-")
try:
    filesystem_part()
    s3_part(tmp)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
