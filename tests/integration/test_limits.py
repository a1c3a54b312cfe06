#!/usr/bin/env python3
"""Limits and tenants as configured: "0 = no limit" really lifts a limit
(profile size, samples, body), Push's body is bounded after its
Content-Encoding by its own limit, X-Scope-OrgID errors are 401/400 and are
not counted as refused profiles, -querier.max-query-length cannot be
bypassed with end = 0, and durations longer than an int of milliseconds
still work."""
import gzip
import os
import time
import urllib.parse

from harness import CORPUS, Checks, Cluster, connect_json, enc_varint, http, retime

c = Checks()
T = {"X-Scope-OrgID": "limits-tenant"}
cl = Cluster(ingesters=1, flags=["-auth.multitenancy-enabled=true",
                                 "-validation.max-profile-size-bytes=0",
                                 "-validation.max-profile-stacktrace-samples=0",
                                 "-distributor.ingestion-body-limit-bytes=0",
                                 "-distributor.ingestion-decompressed-body-limit-bytes=4194304",
                                 "-querier.max-query-length=1h",
                                 "-distributor.push-timeout=1000h",
                                 "-querier.query-timeout=1000h"])


def s(field, b):
    return enc_varint(field << 3 | 2) + enc_varint(len(b)) + b


def push_proto(raw, service="limits.push", gz=False, headers=T):
    """A hand-encoded push.v1.PushRequest with one series and one sample."""
    labels = s(1, s(1, b"service_name") + s(2, service.encode()))
    body = s(1, labels + s(2, s(1, raw)))
    h = dict(headers, **{"Content-Type": "application/proto"})
    if gz:
        body = gzip.compress(body, 1)
        h["Content-Encoding"] = "gzip"
    return http("POST", f"{cl.dist}/push.v1.PusherService/Push", body, h)


def ingest(data, name, headers):
    q = urllib.parse.urlencode({"name": name})
    return http("POST", f"{cl.dist}/ingest?{q}&format=pprof", data, dict(headers, **{"Content-Type": "application/octet-stream"}))


def discard_lines():
    _, body, _ = http("GET", f"{cl.dist}/metrics")
    return [l for l in body.decode(errors="replace").splitlines() if l.startswith("hotpath_discarded_profiles_total")]


try:
    # 7 MB uncompressed and 128988 samples: over the defaults, fine with 0 = no limit.
    big = retime(open(os.path.join(CORPUS, "go", "go_deep_memrate1.heap.pb.gz"), "rb").read(), time.time_ns())
    status, body, _ = ingest(big, "limits.big", T)
    c.check(status == 200, f"/ingest with max-profile-size 0 and samples 0 -> {status} {body[:200]!r}")
    status, body, _ = push_proto(big)
    c.check(status == 200, f"Push with ingestion-body-limit 0 -> {status} {body[:200]!r}")

    # Push's body after Content-Encoding has its own bound (4 MiB here).
    status, body, _ = push_proto(b"\0" * (8 << 20), gz=True)
    c.check(status == 400 and b"exceeds 4194304 bytes after decompression" in body,
            f"gzip Push expanding past 4 MiB -> {status} {body[:200]!r}")

    # Tenants: 401 without, 400 when invalid; neither is a refused profile.
    before = discard_lines()
    status, body, _ = ingest(big, "limits.notenant", {})
    c.check(status == 401 and b"X-Scope-OrgID" in body, f"/ingest without a tenant -> {status} {body[:200]!r}")
    status, body, _ = ingest(big, "limits.badtenant", {"X-Scope-OrgID": "bad/tenant"})
    c.check(status == 400 and b"invalid character" in body, f"/ingest with an invalid tenant -> {status} {body[:200]!r}")
    status, body, _ = push_proto(big, headers={"X-Scope-OrgID": "bad/tenant"})
    c.check(status == 400, f"Push with an invalid tenant -> {status} {body[:200]!r}")
    c.check(discard_lines() == before, f"tenant errors are not discards: {before} -> {discard_lines()}")

    # max_query_length (1h): end = 0 is not a way around it.
    now = int(time.time() * 1000)
    tid = "memory:inuse_space:bytes:space:bytes"
    sel = {"profileTypeID": tid, "labelSelector": '{service_name="limits.big"}'}
    status, r = connect_json(cl.qry, "SelectMergeStacktraces", dict(sel, start="0", end="0"), T)
    c.check(status == 400 and "end is required" in r.get("message", ""), f"Select with end 0 -> {status} {r}")
    status, r = connect_json(cl.qry, "SelectMergeStacktraces", dict(sel, start=str(now - 7200_000), end=str(now)), T)
    c.check(status == 400 and "max_query_length" in r.get("message", ""), f"Select over 1h -> {status} {r}")
    status, r = connect_json(cl.qry, "LabelNames", {}, T)
    c.check(status == 400 and "end is required" in r.get("message", ""), f"LabelNames 0/0 under a limit -> {status} {r}")
    status, r = connect_json(cl.qry, "LabelNames", {"start": str(now - 1800_000), "end": str(now + 60_000)}, T)
    c.check(status == 200 and "service_name" in r.get("names", []), f"LabelNames within the limit -> {status} {r}")
    status, r = connect_json(cl.qry, "SelectMergeStacktraces", dict(sel, start=str(now - 1800_000), end=str(now + 60_000)), T)
    c.check(status == 200 and int(r.get("flamegraph", {}).get("total", 0)) > 0,
            f"Select within the limit (1000h timeouts) -> {status} {str(r)[:200]}")
    q = urllib.parse.urlencode({"query": tid + "{}", "from": "now-2h", "until": "now"})
    status, body, _ = http("GET", f"{cl.qry}/pyroscope/render?{q}", headers=T)
    c.check(status == 400 and b"max_query_length" in body, f"render over 1h -> {status} {body[:200]!r}")
finally:
    cl.finish(c)
c.done()
