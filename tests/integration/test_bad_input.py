#!/usr/bin/env python3
"""Bad input gets a clear message and the right status, never a crash:
bodies that are not profiles, broken gzip, a gzip bomb, malformed protobuf,
invalid references, invalid UTF-8 (422 on /ingest, 400 on Push), missing or
malformed names, unknown formats, limits, invalid label names (only '.' is
rewritten), empty label values (no label), too many labels per sample —
and the cluster keeps working."""
import base64
import gzip
import json
import os
import time
import urllib.parse
import zlib

from harness import PYRO, CORPUS, Checks, Cluster, connect_json, enc_varint, http, multipart, retime, type_id, render

c = Checks()
cl = Cluster(ingesters=1)


def ingest(body, name="bad.app", fmt="pprof", ctype="application/octet-stream", extra=""):
    q = urllib.parse.urlencode({"name": name} if name is not None else {})
    f = f"&format={fmt}" if fmt else ""
    return http("POST", f"{cl.dist}/ingest?{q}{f}{extra}", body, {"Content-Type": ctype})


def push_json(raw, labels=()):
    ls = [{"name": "service_name", "value": "bad.push"}, {"name": "__name__", "value": "process_cpu"}]
    ls += [{"name": k, "value": v} for k, v in labels]
    msg = {"series": [{"labels": ls, "samples": [{"rawProfile": base64.b64encode(raw).decode()}]}]}
    return http("POST", f"{cl.dist}/push.v1.PusherService/Push", json.dumps(msg).encode(), {"Content-Type": "application/json"})


def label_names(selector):
    now = int(time.time() * 1000)
    _, r = connect_json(cl.qry, "LabelNames", {"matchers": [selector], "start": str(now - 3600_000), "end": str(now + 300_000)})
    return r.get("names", [])


def s(field, b):
    return enc_varint(field << 3 | 2) + enc_varint(len(b)) + b


def i(field, v):
    return enc_varint(field << 3) + enc_varint(v)


def profile(strings=(b"", b"samples", b"count", b"main"), sample_vals=(1,), loc_ids=(1,), func_name=3, fn_id=1,
            labels=()):
    """A tiny hand-made pprof, with knobs to break it; labels are (key, value)
    string indices on the one sample."""
    out = s(1, i(1, 1) + i(2, 2))  # sample_type samples/count
    lab = b"".join(s(3, i(1, k) + i(2, v)) for k, v in labels)
    out += s(2, s(1, b"".join(enc_varint(x) for x in loc_ids)) + s(2, b"".join(enc_varint(x) for x in sample_vals)) + lab)
    out += s(4, i(1, 1) + s(4, i(1, fn_id) + i(2, 10)))  # location 1 → function fn_id
    out += s(5, i(1, 1) + i(2, func_name))  # function 1 named strings[func_name]
    for st in strings:
        out += s(6, st)
    return out


def expect(what, resp, status, needle=None):
    code, body, _ = resp
    ok = code == status and (needle is None or needle.encode() in body.lower())
    c.check(ok, f"{what}: got {code} {body[:200]!r}, want {status}" + (f" mentioning '{needle}'" if needle else ""))


try:
    good = profile()
    expect("a valid hand-made profile", ingest(gzip.compress(good)), 200)
    expect("empty body", ingest(b""), 400, "empty")
    expect("not gzip, not protobuf", ingest(b"hello, this is not a profile"), 400)
    gz = gzip.compress(good)
    expect("truncated gzip", ingest(gz[: len(gz) // 2]), 400, "gzip")
    bomb = gzip.compress(b"\0" * (64 << 20), 9)
    t0 = time.time()
    expect("gzip bomb (64 MiB of zeros)", ingest(bomb), 413, "exceeds")
    c.check(time.time() - t0 < 30, "the bomb is refused without inflating it (bounded time)")
    expect("truncated varint", ingest(good + b"\x80"), 400)
    expect("string_table[0] != \"\"", ingest(profile(strings=(b"x", b"samples", b"count", b"main"))), 422, "string 0")
    expect("string index out of range", ingest(profile(func_name=99)), 422, "range")
    expect("missing location", ingest(profile(loc_ids=(7,))), 422, "location")
    expect("function id 0", ingest(profile(fn_id=0)), 422, "function id")
    expect("wrong value count", ingest(profile(sample_vals=(1, 2))), 422, "mismatch")
    bad_utf8 = open(os.path.join(PYRO, "pprof", "invalid_utf8.pb.gz"), "rb").read()
    expect("invalid UTF-8 on /ingest", ingest(bad_utf8), 422, "utf8")
    expect("invalid UTF-8 on Push", push_json(bad_utf8), 400, "utf8")
    expect("a valid Push in JSON", push_json(gzip.compress(good)), 200)
    naddr = open(os.path.join(PYRO, "pprof", "no_addr_no_line.pb.gz"), "rb").read()
    code, body, _ = ingest(naddr, name="naddr.app")
    c.check(code in (200, 400, 422), f"no_addr_no_line: {code} {body[:200]!r}")
    expect("missing name", ingest(gzip.compress(good), name=None), 400, "name")
    expect("malformed name", ingest(gzip.compress(good), name="app{a=1"), 400, "name")
    expect("bad characters in the app name", ingest(gzip.compress(good), name="my app!"), 400, "name")
    expect("unknown format", ingest(gzip.compress(good), fmt="nope"), 400, "unknown format")
    expect("bad from", ingest(gzip.compress(good), extra="&from=yesterday"), 400, "from: invalid time 'yesterday'")
    mp, ct = multipart([("prev_profile", "profile.pprof", gzip.compress(good)), ("profile", "profile.pprof", gzip.compress(good))])
    expect("prev_profile", ingest(mp, fmt=None, ctype=ct), 422, "unsupported client")
    mp, ct = multipart([("other", "x", b"1")])
    expect("multipart without a profile", ingest(mp, fmt=None, ctype=ct), 400, "profile")
    expect("multipart without a boundary", ingest(b"--x\r\n", fmt=None, ctype="multipart/form-data"), 400, "boundary")
    mp, ct = multipart([("profile", "profile.pprof", gzip.compress(good)), ("sample_type_config", "s.json", b"{not json")])
    expect("bad sample_type_config", ingest(mp, fmt=None, ctype=ct), 400, "sample_type_config")
    expect("Push with garbage protobuf", http("POST", f"{cl.dist}/push.v1.PusherService/Push", b"\xff\xff\xff",
                                             {"Content-Type": "application/proto"}), 400)
    expect("Push with bad JSON", http("POST", f"{cl.dist}/push.v1.PusherService/Push", b"{\"series\": [", 
                                     {"Content-Type": "application/json"}), 400)
    # Over the default limits: 7 MB raw and 128988 samples.
    big = open(os.path.join(CORPUS, "go", "go_deep_memrate1.heap.pb.gz"), "rb").read()
    expect("profile over max_profile_size_bytes", ingest(big), 413, "exceeds")
    labels = ",".join(f"l{k}=v" for k in range(40))
    expect("too many labels", ingest(gzip.compress(good), name="many{" + labels + "}"), 422, "label names")
    expect("label value too long", ingest(gzip.compress(good), name="long{k=" + "x" * 3000 + "}"), 422, "too long")
    expect("wrong method", http("GET", f"{cl.dist}/ingest"), 405)

    # Label names: only '.' becomes '_' (as Pyroscope); other invalid names are refused.
    expect("Push with label name my-label", push_json(gzip.compress(good), [("my-label", "x")]), 400,
           "invalid label name 'my-label'")
    expect("Push with label name my.dotted", push_json(gzip.compress(good), [("my.dotted", "x")]), 200)
    c.check("my_dotted" in label_names('{service_name="bad.push"}'), "my.dotted is stored as my_dotted")
    strs = (b"", b"samples", b"count", b"main", b"pod-name", b"x")
    expect("pprof sample label pod-name", ingest(gzip.compress(profile(strings=strs, labels=((4, 5),)))), 422,
           "invalid label name 'pod-name'")
    # Empty values are no labels: /ingest names, Push labels, pprof labels (any "" index).
    expect("/ingest with an empty label value", ingest(gzip.compress(good), name="empty.app{emptyone=,kept=1}"), 200)
    expect("Push with an empty label value", push_json(gzip.compress(good), [("emptytwo", "")]), 200)
    strs = (b"", b"samples", b"count", b"main", b"emptythree", b"")
    expect("pprof label with a second empty string", ingest(gzip.compress(profile(strings=strs, labels=((4, 5),))),
                                                            name="empty.app"), 200)
    names = label_names("{}")
    c.check("kept" in names and not {"emptyone", "emptytwo", "emptythree"} & set(names),
            f"empty values made no labels: {names}")
    # Labels per sample: at most 100 (validation.max-profile-stacktrace-sample-labels).
    strs = (b"", b"samples", b"count", b"main") + tuple(f"k{n}".encode() for n in range(101)) + (b"v",)
    many = tuple((4 + n, 4 + 101) for n in range(101))
    expect("101 labels on a sample", ingest(gzip.compress(profile(strings=strs, labels=many))), 422, "sample labels limit")
    expect("unknown path", http("GET", f"{cl.dist}/nope"), 404)
    # The cluster still works and kept only the good profiles.
    tid = type_id(cl.qry, "samples", "count", "", "")
    status, r = render(cl.qry, tid or "process_cpu:samples:count::", '{service_name="bad.app"}')
    c.check(status == 200 and r["flamebearer"]["numTicks"] == 1, f"after the bad inputs: {status} {str(r)[:200]}")
finally:
    cl.finish(c)
c.done()
