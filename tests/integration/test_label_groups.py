#!/usr/bin/env python3
"""Sample labels that make the same series as others in one push: a sample
label equal to the push's own series label, and names that are equal once
sanitized (`x.y` and `x_y`). Their samples share one series and one
profile — none is dropped as if it were a retried write — with RF 3, after
the ingesters restart (WAL replay) too."""
import time
import urllib.parse

from harness import Checks, Cluster, connect_json, http, labelled_pprof, multipart

c = Checks()
TID = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
# (leaf function, value, sample labels); main calls the leaf
SAMPLES = [
    ("a", 100, []),
    ("b", 200, [("service_name", "lg.app")]),  # the same as the push's series
    ("c", 7, [("x.y", "1")]),
    ("d", 9, [("x_y", "1")]),                   # x.y sanitized is x_y
    ("e", 11, [("x_y", "2")]),                  # a series of its own
]


def self_values(cl, selector, start, end):
    status, r = connect_json(cl.qry, "SelectMergeStacktraces", {"profileTypeID": TID, "labelSelector": selector,
                                                                "start": str(start), "end": str(end)})
    fg, out = r.get("flamegraph", {}), {}
    for level in fg.get("levels", []):
        v = [int(x) for x in level.get("values", [])]
        for i in range(0, len(v), 4):
            if v[i + 2]:
                out[fg["names"][v[i + 3]]] = out.get(fg["names"][v[i + 3]], 0) + v[i + 2]
    return out if status == 200 else (status, r)


def series_sets(cl, start, end):
    status, r = connect_json(cl.qry, "Series", {"matchers": ['{service_name="lg.app"}'], "labelNames": ["x_y"],
                                                "start": str(start), "end": str(end)})
    return sorted(tuple(sorted((l["name"], l["value"]) for l in s.get("labels", []))) for s in r.get("labelsSet", []))


cl = Cluster(ingesters=3, rf=3)
try:
    body, ct = multipart([("profile", "profile.pprof", labelled_pprof(SAMPLES, time.time_ns()))])
    status = http("POST", f"{cl.dist}/ingest?" + urllib.parse.urlencode({"name": "lg.app"}), body,
                  {"Content-Type": ct})[0]
    c.check(status == 200, f"push -> {status}")
    now = int(time.time() * 1000)
    start, end = now - 3_600_000, now + 60_000
    want_all = {leaf: v for leaf, v, _ in SAMPLES}
    want_xy1 = {"c": 7, "d": 9}
    for when in ("after the push", "after every ingester restarted"):
        got = self_values(cl, '{service_name="lg.app"}', start, end)
        c.check(got == want_all, f"{when}: every sample is stored once: {got}, want {want_all}")
        got = self_values(cl, '{service_name="lg.app",x_y="1"}', start, end)
        c.check(got == want_xy1, f"{when}: x.y and x_y make one series: {got}, want {want_xy1}")
        got = self_values(cl, '{service_name="lg.app",x_y=""}', start, end)
        c.check(got == {"a": 100, "b": 200}, f"{when}: the sample labelled with the push's own service_name "
                                               f"joins the unlabelled ones: {got}")
        sets = series_sets(cl, start, end)
        c.check(sets == [(), (("x_y", "1"),), (("x_y", "2"),)], f"{when}: three series: {sets}")
        if when.startswith("after the push"):
            for i in range(3):
                cl.stop_ingester(i)
            for i in range(3):
                cl.start_ingester(i)
            c.check(cl.wait_ring(3), "the ingesters are back")
finally:
    cl.finish(c)
c.done()
