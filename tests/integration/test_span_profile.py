#!/usr/bin/env python3
"""SelectMergeSpanProfile end to end, 3 ingesters with RF 3. A pprof whose
samples carry span_id labels as OpenTelemetry integrations set them (lower
and upper case, malformed, all zeros, none, one in another label group, and
the Java agent's profile_id) is pushed three times; the span profile of one or several spans holds
exactly the samples of those spans, each push counted once although three
replicas hold it, in the flame graph and in Pyroscope's tree bytes;
SelectMergeStacktraces still counts every sample; an invalid span ID is a
400 naming it; no span answers an empty flame graph. The answers are the
same after every ingester is SIGKILLed and restarts (the WAL replay keeps
span IDs), and — in a second cluster with seconds-long windows — through
the flush to blocks, their hand-over to the store-gateway and the
compactor's merge of the three replica blocks."""
import base64
import glob
import json
import os
import re
import time
import urllib.parse

from harness import Checks, Cluster, connect_json, http, labelled_pprof, metric, multipart

c = Checks()
TID = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
A, B, C, D = "0123456789abcdef", "fedcba9876543210", "1111111111111111", "00000000000000d1"
# (leaf function, value, labels): main calls the leaf.
SAMPLES = [
    ("a", 100, [("span_id", A)]),
    ("b", 200, [("span_id", A)]),
    ("a", 30, [("span_id", B)]),
    ("a", 7, []),
    ("c", 11, [("span_id", "xyz")]),               # malformed: no span, as Pyroscope reads it
    ("c", 13, [("span_id", "0000000000000000")]),  # all zeros: no span
    ("b", 5, [("span_id", A.upper())]),            # hex digits in either case
    ("a", 1000, [("span_id", C)]),
    ("b", 50, [("span_id", A), ("thread", "worker")]),  # another series, same span
    ("c", 17, [("profile_id", D)]),                # the Java agent's name: read as span_id
]
PUSHES = 3


def want(spans, thread=None):
    """{function: self value} of the samples of these spans over all pushes
    (spans None: every sample)."""
    out = {}
    for leaf, v, labels in SAMPLES:
        lab = dict(labels)
        span = next((x.lower() for k, x in labels if k in ("span_id", "profile_id") and
                     re.fullmatch("[0-9a-fA-F]{16}", x)), "")
        if (spans is None or span in spans) and (thread is None or lab.get("thread") == thread):
            out[leaf] = out.get(leaf, 0) + v * PUSHES
    return out


def pprof(ts_ns):
    return labelled_pprof(SAMPLES, ts_ns)


def push(cl, svc, ts_ns):
    body, ct = multipart([("profile", "profile.pprof", pprof(ts_ns))])
    q = urllib.parse.urlencode({"name": svc})
    return http("POST", f"{cl.dist}/ingest?{q}", body, {"Content-Type": ct})[0]


# ---- reading answers ----

def fg_self(fg):
    """{function: self value} of a Connect FlameGraph (levels of
    [x delta, total, self, name index] quads)."""
    names, out = fg.get("names", []), {}
    for level in fg.get("levels", []):
        vals = [int(x) for x in level.get("values", [])]
        for i in range(0, len(vals), 4):
            if vals[i + 2]:
                out[names[vals[i + 3]]] = out.get(names[vals[i + 3]], 0) + vals[i + 2]
    return out


def tree_self(b):
    """{function: self value} of Pyroscope's tree bytes (depth first, each
    node: uvarint name length, name, uvarint self, uvarint child count)."""
    out, i, todo = {}, 0, 1

    def uv():
        nonlocal i
        x = shift = 0
        while True:
            c_ = b[i]
            i += 1
            x |= (c_ & 0x7F) << shift
            shift += 7
            if c_ < 0x80:
                return x
    while todo:
        n = uv()
        name = b[i:i + n].decode()
        i += n
        v, kids = uv(), uv()
        if v:
            out[name] = out.get(name, 0) + v
        todo += kids - 1
    return out


class Query:
    def __init__(self, cl, svc, start_ms, end_ms):
        self.cl, self.svc, self.rng = cl, svc, {"start": str(start_ms), "end": str(end_ms)}

    def span(self, spans, selector=None, **extra):
        msg = dict(self.rng, profileTypeID=TID, labelSelector=selector or f'{{service_name="{self.svc}"}}',
                   spanSelector=spans, **extra)
        return connect_json(self.cl.qry, "SelectMergeSpanProfile", msg)

    def span_self(self, spans, selector=None):
        status, r = self.span(spans, selector)
        return fg_self(r.get("flamegraph", {})) if status == 200 else (status, r)

    def all_self(self):
        status, r = connect_json(self.cl.qry, "SelectMergeStacktraces",
                                 dict(self.rng, profileTypeID=TID, labelSelector=f'{{service_name="{self.svc}"}}'))
        return fg_self(r.get("flamegraph", {})) if status == 200 else (status, r)

    def snapshot(self):
        """The answers compared across restarts and hand-overs."""
        return {"A": self.span_self([A]), "AB": self.span_self([A, B.upper()]), "CD": self.span_self([C, D]),
                "worker": self.span_self([A], f'{{service_name="{self.svc}",thread="worker"}}'),
                "all": self.all_self()}


WANT_SNAPSHOT = {"A": want({A}), "AB": want({A, B}), "CD": want({C, D}), "worker": want({A}, "worker"),
                 "all": want(None)}


def head_part():
    cl = Cluster(ingesters=3, rf=3, flags=["-ring.heartbeat-period=500ms"])
    try:
        c.check(cl.wait_ring(3), "every ingester is in the ring")
        t0 = time.time_ns()
        acked = sum(push(cl, "sp.app", t0 + i * 10**6) == 200 for i in range(PUSHES))
        c.check(acked == PUSHES, f"{acked} of {PUSHES} pushes acked")
        now = int(time.time() * 1000)
        q = Query(cl, "sp.app", now - 3_600_000, now + 60_000)

        got = q.span_self([A])
        c.check(got == want({A}), f"span A: {got}, want {want({A})} (each push once, 3 replicas)")
        got = q.span_self([A, B, C])
        c.check(got == want({A, B, C}), f"spans A, B, C: {got}, want {want({A, B, C})}")
        got = q.span_self([D])
        c.check(got == want({D}) and got, f"a profile_id label is a span ID: {got}, want {want({D})}")
        got = q.span_self([B, "0000000000000000"])
        c.check(got == want({B}), f"span B and the all-zero ID (no sample): {got}, want {want({B})}")
        got = q.span_self([A], '{service_name="sp.app",thread="worker"}')
        c.check(got == want({A}, "worker"), f"span A in the thread=worker series: {got}")
        got = q.all_self()
        c.check(got == want(None), f"SelectMergeStacktraces counts every sample: {got}, want {want(None)}")
        status, r = q.span([A])
        fg = r.get("flamegraph", {})
        c.check(status == 200 and int(fg.get("total", 0)) == sum(want({A}).values()) and
                fg.get("names", [None])[0] == "total", f"the flame graph's total: {status} {str(r)[:300]}")

        # Pyroscope's tree bytes, and max_nodes
        status, r = q.span([A], format="PROFILE_FORMAT_TREE")
        tree = tree_self(base64.b64decode(r.get("tree", ""))) if status == 200 else None
        c.check(tree == want({A}), f"format TREE: {tree} ({status})")
        status, r = q.span([A, C], maxNodes="2")
        names = r.get("flamegraph", {}).get("names", [])
        c.check(status == 200 and int(r["flamegraph"]["total"]) == sum(want({A, C}).values()) and
                "b" not in names, f"max_nodes 2 folds the smallest nodes: {status} {names}")

        # no span, bad spans
        for spans in ([], ["0000000000000000"], [A.replace("0", "9")]):
            status, r = q.span(spans)
            fg = r.get("flamegraph", {})
            c.check(status == 200 and int(fg.get("total", 0)) == 0,
                    f"span selector {spans}: an empty flame graph: {status} {str(r)[:200]}")
        for bad in ("xyz", "0123456789abcdeg", A + "0", ""):
            status, r = q.span([A, bad])
            c.check(status == 400 and r.get("code") == "invalid_argument" and f'"{bad}"' in r.get("message", ""),
                    f"span ID {bad!r} is refused naming it: {status} {r}")
        status, r = connect_json(cl.qry, "SelectMergeSpanProfile", {"labelSelector": "{}", "spanSelector": [A]})
        c.check(status == 400 and "profile_typeID" in r.get("message", ""), f"no profile type: {status} {r}")

        # every ingester restarts: the WAL replay brings the spans back
        before = q.snapshot()
        c.check(before == WANT_SNAPSHOT, f"before the restarts: {before}")
        for i in range(3):
            p, ready = cl.restart_ingester(i)
            c.check(ready, f"ingester {i} restarts and replays its WAL")
            c.check(cl.wait_ring(3), f"the ring is whole again after restarting ingester {i}")
        after = q.snapshot()
        c.check(after == WANT_SNAPSHOT, f"after every ingester replayed its WAL: {after}")
    finally:
        cl.finish(c)


FLAGS = ["-ring.heartbeat-period=500ms", "-ingester.max-block-duration=2s", "-ingester.flush-idle-period=1s",
         "-ingester.flush-check-period=300ms", "-querier.query-store-after=8s",
         "-store-gateway.ignore-blocks-within=4s", "-store-gateway.sync-interval=1s",
         "-compactor.compaction-interval=1s", "-compactor.block-ranges=2s,4s,8s", "-compactor.compaction-delay=1s",
         "-compactor.deletion-delay=1h"]


def block_part():
    cl = Cluster(ingesters=3, rf=3, flags=FLAGS, compactors=1)
    try:
        c.check(cl.wait_ring(3), "every ingester is in the ring (blocks)")
        gw, cmp = cl.gateway_url(0), cl.compactor_url(0)
        old = (time.time_ns() - 30 * 60 * 10**9) // 10**9 * 10**9
        acked = sum(push(cl, "sp.old", old + i * 10**6) == 200 for i in range(PUSHES))
        c.check(acked == PUSHES, f"{acked} of {PUSHES} old pushes acked")
        q = Query(cl, "sp.old", old // 10**6 - 60_000, old // 10**6 + 60_000)
        seen = []
        deadline, done = time.time() + 120, False
        while time.time() < deadline and not done:
            seen.append(q.snapshot())
            done = (all(metric(cl.ingester_url(i), "hotpath_ingester_block_uploads_total") >= 1 and
                        metric(cl.ingester_url(i), "hotpath_ingester_local_blocks") == 0 for i in range(3)) and
                    metric(cmp, "hotpath_compactor_compactions_total") >= 1 and
                    metric(cmp, "hotpath_compactor_blocks_marked_for_deletion_total") >= 3)
            time.sleep(0.3)
        c.check(done, "the ingesters upload their blocks and let them go, and the compactor merges them")
        time.sleep(3)  # a few store-gateway syncs: it reads the merged block alone
        seen.append(q.snapshot())
        bad = [s for s in seen if s != WANT_SNAPSHOT]
        c.check(not bad, f"{len(seen)} snapshots from heads, blocks, the store-gateway and the merged block "
                f"are exact: {len(bad)} differ, e.g. {bad[:1]}")
        c.check(metric(gw, "hotpath_store_gateway_block_loads_total") >= 1, "the store-gateway read blocks")
        metas = [json.load(open(m)) for m in
                 glob.glob(os.path.join(cl.data, "blocks-store", "anonymous", "blocks", "*", "meta.json"))]
        merged = [m for m in metas if m.get("compaction", {}).get("level", 1) > 1]
        c.check(merged and all(m.get("version") == 3 for m in metas) and
                merged[0]["stats"]["numProfiles"] == 2 * PUSHES,
                f"blocks are version 3; the merged one holds each profile once: {merged[:1]}")
    finally:
        cl.finish(c)


head_part()
block_part()
c.done()
