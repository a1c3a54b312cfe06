#!/usr/bin/env python3
"""Paging through /api/v1/profiles with offset: five profiles pushed to
three ingesters at RF 3 (every replica returns each one), two of them at
the same second in two series; pages of two at offsets 0, 2 and 4 are
disjoint, newest first, and together the whole list, each profile once.
A negative, non-numeric or too deep offset is a 400 that names it."""
import json
import time
import urllib.parse

from harness import Checks, Cluster, http

c = Checks()
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
QUERY = CPU + '{service_name="pager"}'
NOW = int(time.time())
# (seconds before now, env, samples): the totals tell the profiles apart
PUSHES = [(50, "a", 1), (40, "a", 2), (30, "a", 3), (20, "a", 4), (20, "b", 5)]


def push(ago, env, n):
    q = urllib.parse.urlencode({"name": f"pager.cpu{{env={env}}}", "from": str(NOW - ago), "sampleRate": "100"})
    status, body, _ = http("POST", f"{cl.dist}/ingest?{q}", f"main;work {n}\n".encode(), {"Content-Type": "text/plain"})
    return c.check(status == 200, f"push {env} at now-{ago}s -> {status} {body[:200]!r}")


def profiles(**params):
    """(status, profiles or the error body) of GET /api/v1/profiles."""
    q = urllib.parse.urlencode({"query": QUERY, "from": str(NOW - 600), "until": str(NOW + 60), **params})
    status, body, _ = http("GET", f"{cl.qry}/api/v1/profiles?{q}")
    return status, (json.loads(body)["profiles"] if status == 200 else body.decode(errors="replace"))


def key(p):
    return (p["profileId"], p["timestamp"])


def newest_first(ps):
    return all(ps[i - 1]["timestamp"] >= ps[i]["timestamp"] for i in range(1, len(ps)))


cl = Cluster(ingesters=3, rf=3, gateways=0)
try:
    c.check(cl.wait_ring(3), "the ring has 3 ACTIVE ingesters")
    for ago, env, n in PUSHES:
        push(ago, env, n)

    status, everything = profiles()
    c.check(status == 200 and len(everything) == 5 and len({key(p) for p in everything}) == 5,
            f"the whole list holds the 5 profiles once each, though 3 replicas hold them: {status} {everything}")
    c.check(status == 200 and newest_first(everything), "the whole list is newest first")
    status, same = profiles(offset="0")
    c.check(status == 200 and same == everything, "offset=0 is the default")

    pages = [profiles(limit="2", offset=str(o)) for o in (0, 2, 4)]
    c.check(all(s == 200 for s, _ in pages), f"pages at offsets 0, 2, 4: {[s for s, _ in pages]}")
    if all(s == 200 for s, _ in pages):
        got = [p for _, page in pages for p in page]
        c.check([len(page) for _, page in pages] == [2, 2, 1], f"pages of 2, 2 and 1: {[len(p) for _, p in pages]}")
        c.check(len({key(p) for p in got}) == len(got), "the pages are disjoint")
        c.check({key(p) for p in got} == {key(p) for p in everything}, "the pages cover all 5 profiles")
        c.check(newest_first(got), "each page is newest first, and each page older than the one before")
        c.check([key(p) for p in got] == [key(p) for p in everything], "the pages are the whole list cut in pieces")
        c.check(sorted(p["total"] for p in got) == [10_000_000 * n for n in range(1, 6)],
                f"every pushed profile is there by its total: {sorted(p['total'] for p in got)}")
    status, past = profiles(limit="2", offset="5")
    c.check(status == 200 and past == [], f"a page past the end is empty: {status} {past}")
    status, deep = profiles(limit="100", offset="9900")
    c.check(status == 200 and deep == [], f"offset + limit = 10000 is allowed: {status} {deep}")

    for params, why in [({"offset": "-1"}, "negative"), ({"offset": "abc"}, "number"), ({"offset": "1.5"}, "number"),
                        ({"offset": "9901"}, "10000"), ({"offset": "9999", "limit": "2"}, "10000"),
                        ({"offset": "99999999999999999999999"}, "10000")]:
        status, msg = profiles(**params)
        c.check(status == 400 and "offset" in msg and why in msg, f"{params} is refused: {status} {msg[:200]}")
finally:
    cl.finish(c)
c.done()
