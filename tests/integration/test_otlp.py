#!/usr/bin/env python3
"""OpenTelemetry profiles over OTLP/HTTP (POST /v1development/profiles): an
ExportProfilesServiceRequest encoded by hand — as protobuf, gzip'd protobuf
and protojson — is converted as Pyroscope converts it, and the querier's
flame graphs show its totals and frame names (symbolized functions, and
"<file> 0x<address>" for unsymbolized frames); samples with their own
service.name land in their own series; other content types get 415 and bad
bodies 400."""
import base64
import gzip
import json
import time
import urllib.parse

from harness import Checks, Cluster, connect_json, enc_varint, flame_self, http, render, type_id

c = Checks()
cl = Cluster(ingesters=1)
URL = f"{cl.dist}/v1development/profiles"
PERIOD = 10_000_000  # 10ms: samples/count × cpu/nanoseconds → process_cpu in nanoseconds


def s(field, b):
    """A length-delimited field."""
    return enc_varint(field << 3 | 2) + enc_varint(len(b)) + b


def i(field, v):
    """A varint field (negative values as 64-bit two's complement)."""
    return enc_varint(field << 3) + enc_varint(v & (2**64 - 1)) if v else b""


def f64(field, v):
    return enc_varint(field << 3 | 1) + v.to_bytes(8, "little")


def packed(field, xs):
    return s(field, b"".join(enc_varint(x) for x in xs))


STRINGS = ["", "samples", "count", "cpu", "nanoseconds", "app", "main", "main.go", "foo", "foo.go", "bar",
           "libfoo.so", "service.name", "otlp-b", "host.name", "node-1"]


def sid(x):
    return STRINGS.index(x)


def dictionary():
    """Mappings, functions (index 0 the zero entry), locations, stacks and a
    service.name attribute, as ProfilesDictionary fields."""
    d = b""
    d += s(1, i(1, 0x1000) + i(2, 0x9000) + i(4, sid("app")))  # mapping 0: app
    d += s(1, i(1, 0x7f00) + i(2, 0x8f00) + i(4, sid("libfoo.so")))  # mapping 1: libfoo.so
    for name, file in [("", ""), ("main", "main.go"), ("foo", "foo.go"), ("bar", "main.go")]:
        d += s(3, i(1, sid(name)) + i(2, sid(name)) + i(3, sid(file)))
    d += s(2, i(1, 0) + i(2, 0x1100) + s(3, i(1, 1) + i(2, 10)))  # loc 0: main
    d += s(2, i(1, 0) + i(2, 0x1200) + s(3, i(1, 2) + i(2, 20)))  # loc 1: foo
    d += s(2, i(1, 0) + i(2, 0x1300) + s(3, i(1, 3) + i(2, 30)))  # loc 2: bar
    d += s(2, i(1, 1) + i(2, 0x1e0))  # loc 3: unsymbolized, in libfoo.so
    for stack in ([1, 0], [2, 1, 0], [3, 0]):
        d += s(7, packed(1, stack))
    for st in STRINGS:
        d += s(5, st.encode())
    d += s(6, i(1, sid("service.name")) + s(2, s(1, b"otlp-b")))  # attribute 0
    return d


def sample(stack, value, attrs=()):
    return s(2, i(1, stack) + (packed(2, attrs) if attrs else b"") + packed(4, [value]))


def request(service, now_ns, samples):
    """An ExportProfilesServiceRequest: one resource with service.name and
    host.name, one scope, one process_cpu profile."""
    res = s(1, s(1, b"service.name") + s(2, s(1, service.encode())))
    res += s(1, s(1, b"host.name") + s(2, s(1, b"node-1")))
    prof = s(1, i(1, sid("samples")) + i(2, sid("count"))) + b"".join(samples)
    prof += f64(3, now_ns) + i(4, 10_000_000_000) + s(5, i(1, sid("cpu")) + i(2, sid("nanoseconds"))) + i(6, PERIOD)
    rp = s(1, res) + s(2, s(2, prof))
    return s(1, rp) + s(2, dictionary())


def json_request(service, now_ns):
    """The same kind of request as protojson, as an OTLP exporter sends it."""
    return json.dumps({
        "resourceProfiles": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeProfiles": [{"scope": {"name": "test"}, "profiles": [{
                "sampleType": {"typeStrindex": sid("samples"), "unitStrindex": sid("count")},
                "periodType": {"typeStrindex": sid("cpu"), "unitStrindex": sid("nanoseconds")},
                "period": str(PERIOD),
                "timeUnixNano": str(now_ns),
                "samples": [{"stackIndex": 0, "values": ["6"]},
                            {"stackIndex": 2, "timestampsUnixNano": [str(now_ns), str(now_ns + 1)]}],
            }]}],
        }],
        "dictionary": {
            "stringTable": STRINGS,
            "mappingTable": [{"memoryStart": "4096", "memoryLimit": "36864", "filenameStrindex": sid("app")},
                             {"memoryStart": "32512", "memoryLimit": "36608", "filenameStrindex": sid("libfoo.so")}],
            "functionTable": [{}, {"nameStrindex": sid("main"), "filenameStrindex": sid("main.go")},
                              {"nameStrindex": sid("foo"), "filenameStrindex": sid("foo.go")},
                              {"nameStrindex": sid("bar"), "filenameStrindex": sid("main.go")}],
            "locationTable": [{"mappingIndex": 0, "address": "4352", "lines": [{"functionIndex": 1, "line": "10"}]},
                              {"mappingIndex": 0, "address": "4608", "lines": [{"functionIndex": 2, "line": "20"}]},
                              {"mappingIndex": 0, "address": "4864", "lines": [{"functionIndex": 3, "line": "30"}]},
                              {"mappingIndex": 1, "address": "480"}],
            "stackTable": [{"locationIndices": [1, 0]}, {"locationIndices": [2, 1, 0]}, {"locationIndices": [3, 0]}],
        },
    }).encode()


def post(body, ctype="application/x-protobuf", extra=None):
    h = {"Content-Type": ctype}
    h.update(extra or {})
    return http("POST", URL, body, h)


def expect(what, resp, status, needle=None):
    code, body, _ = resp
    ok = code == status and (needle is None or needle.encode() in body)
    c.check(ok, f"{what}: got {code} {body[:200]!r}, want {status}" + (f" with '{needle}'" if needle else ""))


def flame(selector, tid):
    """(numTicks, {name: self}) of the selector's flame graph, waiting for
    the profile to reach the querier (bounded)."""
    deadline = time.time() + 30
    while True:
        status, r = render(cl.qry, tid, selector)
        if status == 200 and r["flamebearer"]["numTicks"] > 0 or time.time() > deadline:
            return flame_self(r) if status == 200 else (0, {"error": r})
        time.sleep(0.5)


try:
    now = time.time_ns()
    body = request("otlp-a", now, [sample(0, 3), sample(1, 4), sample(2, 5), sample(1, 7, attrs=[0])])
    code, resp, headers = post(body)
    c.check(code == 200, f"protobuf export: {code} {resp[:200]!r}")
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type")
    c.check(resp == b"" and ctype == "application/x-protobuf",
            f"the answer is an empty ExportProfilesServiceResponse: {resp!r} {ctype}")
    expect("gzip'd protobuf export", post(gzip.compress(request("otlp-gz", now, [sample(0, 1)])), extra={
        "Content-Encoding": "gzip"}), 200)
    expect("protojson export", post(json_request("otlp-json", now), "application/json"), 200)
    expect("application/protobuf is protobuf too", post(request("otlp-pb", now, [sample(0, 2)]),
                                                       "application/protobuf"), 200)

    tid = type_id(cl.qry, "cpu", "nanoseconds", "cpu", "nanoseconds") or "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
    c.check(tid == "process_cpu:cpu:nanoseconds:cpu:nanoseconds", f"profile type: {tid}")
    ticks, selfs = flame('{service_name="otlp-a"}', tid)
    c.check(ticks == (3 + 4 + 5) * PERIOD, f"otlp-a total: {ticks}")
    c.check(selfs.get("foo") == 3 * PERIOD and selfs.get("bar") == 4 * PERIOD,
            f"otlp-a symbolized frames: {selfs}")
    c.check(selfs.get("libfoo.so 0x1e0") == 5 * PERIOD, f"otlp-a unsymbolized frame named '<file> 0x<address>': {selfs}")
    c.check("main" in selfs and selfs.get("main", 0) == 0, f"main is only a caller: {selfs}")
    ticks, selfs = flame('{service_name="otlp-b"}', tid)
    c.check(ticks == 7 * PERIOD and selfs.get("bar") == 7 * PERIOD,
            f"the sample with service.name=otlp-b is its own series: {ticks} {selfs}")
    ticks, _ = flame('{service_name="otlp-a", host_name="node-1"}', tid)
    c.check(ticks == 12 * PERIOD, f"resource attribute host.name is the series label host_name: {ticks}")
    ticks, selfs = flame('{service_name="otlp-json"}', tid)
    c.check(ticks == (6 + 2) * PERIOD and selfs.get("foo") == 6 * PERIOD and selfs.get("libfoo.so 0x1e0") == 2 * PERIOD,
            f"protojson totals (timestamps count 1 each): {ticks} {selfs}")
    ticks, _ = flame('{service_name="otlp-gz"}', tid)
    c.check(ticks == PERIOD, f"gzip'd export stored: {ticks}")
    now_ms = int(time.time() * 1000)
    _, names = connect_json(cl.qry, "LabelNames", {"matchers": ['{service_name="otlp-a"}'],
                                                   "start": str(now_ms - 3600_000), "end": str(now_ms + 300_000)})
    c.check("host_name" in names.get("names", []), f"label names of otlp-a: {names}")

    # What is refused, and how.
    expect("text/plain", post(body, "text/plain"), 415, "Unsupported Content-Type: text/plain")
    expect("no Content-Type", http("POST", URL, body, {}), 415, "Unsupported Content-Type")
    expect("application/json with parameters (Pyroscope matches exactly)",
           post(json_request("x", now), "application/json; charset=utf-8"), 415)
    expect("truncated protobuf", post(body[:-3]), 400, "Failed to parse protobuf request")
    expect("broken JSON", post(b"{\"resourceProfiles\": [", "application/json"), 400, "Failed to parse JSON request")
    expect("broken gzip", post(b"\x1f\x8b\x08\x00garbage", extra={"Content-Encoding": "gzip"}), 400,
           "Failed to read request body")
    expect("stack index out of range", post(request("otlp-bad", now, [sample(9, 1)])), 400, "invalid stack index: 9")
    expect("attribute index out of range", post(request("otlp-bad", now, [sample(0, 1, attrs=[5])])), 400,
           "attribute index 5 out of range")
    expect("no dictionary", post(s(1, s(2, b""))), 400, "missing profile metadata dictionary")
    expect("no resource profiles", post(s(2, dictionary())), 400, "missing resource profiles")
    expect("too old for the ingestion window", post(request("otlp-old", now - 3 * 3600 * 10**9, [sample(0, 1)])), 400,
           "ingestion window")
    expect("GET", http("GET", URL), 405)
    status, r = render(cl.qry, tid, '{service_name="otlp-bad"}')
    c.check(status == 200 and r["flamebearer"]["numTicks"] == 0, f"nothing of the refused requests was stored: {status}")
    ticks, _ = flame('{service_name="otlp-a"}', tid)
    c.check(ticks == 12 * PERIOD, f"the cluster still answers after the bad inputs: {ticks}")
finally:
    cl.finish(c)
c.done()
