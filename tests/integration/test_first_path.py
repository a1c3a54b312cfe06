#!/usr/bin/env python3
"""The first path end to end: every valid corpus profile pushed the way
real SDKs push it (Go SDK multipart, Node SDK raw body, and the captured
SDK requests replayed), read back through /pyroscope/render, must show
go tool pprof's exact total and per-function flat values for every sample
type."""
import glob
import os
import re
import socket
import time
import urllib.parse

from harness import (CORPUS, Checks, Cluster, compare_render, http, multipart, ref_types, render, retime,
                     type_id)

c = Checks()
# The corpus holds a 7 MB heap profile with 128988 samples: above Pyroscope's
# default limits, so this cluster raises them (test_bad_input checks the defaults).
cl = Cluster(ingesters=3, flags=["-validation.max-profile-size-bytes=64MiB",
                                 "-validation.max-profile-stacktrace-samples=0"])
try:
    now = time.time_ns()
    cases = []  # (file, service)
    files = sorted(glob.glob(os.path.join(CORPUS, "go", "*.pb.gz")) + glob.glob(os.path.join(CORPUS, "fixtures", "*.pb.gz"))
                   + glob.glob(os.path.join(CORPUS, "node", "*.pb.gz")))
    for n, f in enumerate(files):
        svc = f"fp_{n}"
        data = retime(open(f, "rb").read(), now)
        q = urllib.parse.urlencode({"name": f"{svc}{{env=it,case={n}}}", "from": str(now // 10**9),
                                    "until": str(now // 10**9)})
        if "/node/" in f:  # the Node SDK: raw body, format=pprof
            status, body, _ = http("POST", f"{cl.dist}/ingest?format=pprof&spyName=nodespy&{q}", data,
                                   {"Content-Type": "application/octet-stream"})
        else:  # the Go SDK: multipart with a `profile` part
            mp, ct = multipart([("profile", "profile.pprof", data)])
            status, body, _ = http("POST", f"{cl.dist}/ingest?spyName=gospy&sampleRate=100&{q}", mp, {"Content-Type": ct})
        if c.check(status == 200, f"push {os.path.basename(f)} -> {status} {body[:200]!r}"):
            cases.append((f, svc))

    # Captured SDK requests, replayed with their own headers and name labels,
    # re-stamped to now (the app name made unique per request).
    for http_file in sorted(glob.glob(os.path.join(CORPUS, "capture", "*", "req*.http"))):
        base = http_file[:-5]
        raw = open(http_file, "rb").read()
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        method, target, proto = lines[0].split(" ")
        path, _, query = target.partition("?")
        params = urllib.parse.parse_qsl(query, keep_blank_values=True)
        svc = "cap_" + os.path.basename(os.path.dirname(http_file)) + "_" + os.path.basename(base)
        is_ns = any(k == "from" and len(v) >= 19 for k, v in params)
        stamp = str(now if is_ns else now // 10**9)
        new = []
        for k, v in params:
            if k in ("from", "until"):
                v = stamp
            if k == "name":
                v = svc + v[v.index("{"):] if "{" in v else svc
            new.append((k, v))
        part = base + ".part-profile.pb.gz"
        payload = part if os.path.exists(part) else base + ".body"
        profile = retime(open(payload, "rb").read(), now)
        if os.path.exists(part):
            orig = open(part, "rb").read()
            body = body.replace(orig, profile)
        else:
            body = profile
        hdrs = [l for l in lines[1:] if not l.lower().startswith(("content-length", "host"))]
        req = f"{method} {path}?{urllib.parse.urlencode(new)} {proto}\r\nHost: 127.0.0.1\r\n" + \
              "\r\n".join(hdrs) + f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        s = socket.create_connection(("127.0.0.1", cl.base), timeout=30)
        s.sendall(req.encode() + body)
        resp = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            resp += chunk
        s.close()
        status = int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/") else 0
        if c.check(status == 200, f"replay {http_file} -> {resp[:300]!r}"):
            cases.append((payload, svc))

    time.sleep(0.5)
    for f, svc in cases:
        for idx, st, su, pt, pu in ref_types(f):
            tid = type_id(cl.qry, st, su, pt, pu)
            if not c.check(tid is not None, f"{f}: no profile type {st}:{su}:{pt}:{pu}"):
                continue
            status, r = render(cl.qry, tid, f'{{service_name="{svc}"}}')
            if not c.check(status == 200, f"{f} {tid}: render -> {status} {r}"):
                continue
            why = compare_render(r, f"{f}.ref/top.{idx}.{st}.txt")
            c.check(why is None, f"{os.path.relpath(f, CORPUS)} {tid}: {why}")
finally:
    cl.finish(c)
c.done()
