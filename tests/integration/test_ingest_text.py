#!/usr/bin/env python3
"""Profiles that arrive as text on /ingest, converted as Pyroscope does:
folded "groups" (the default; gzip too), `lines`, speedscope files (the
public goldens) and the legacy binary `tree` and `trie`, with the profile type from the app name's suffix and CPU
and wall counts turned into nanoseconds with sampleRate — then queried back
as flame graphs whose totals and per-function self values are exact. Bad
text bodies get their status and a message."""
import gzip
import json
import os
import time
import urllib.parse

from harness import PYRO, Checks, Cluster, connect_json, enc_varint, flame_self, http, render

c = Checks()
cl = Cluster(ingesters=1)
NOW = int(time.time())
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"


def ingest(body, name, extra=None, headers=None):
    q = {"name": name, "from": str(NOW), "until": str(NOW + 10)}
    q.update(extra or {})
    return http("POST", f"{cl.dist}/ingest?{urllib.parse.urlencode(q)}", body,
                headers or {"Content-Type": "text/plain"})


def flame(tid, selector):
    status, r = render(cl.qry, tid, selector)
    if status != 200:
        return None, {}
    return flame_self(r)


def types():
    now = int(time.time() * 1000)
    _, r = connect_json(cl.qry, "ProfileTypes", {"start": str(now - 3600_000), "end": str(now + 600_000)})
    return {t["ID"] for t in r.get("profileTypes", [])}


try:
    # folded at 100 Hz: 15 samples → 150 ms of CPU; repeated stacks summed
    st, body, _ = ingest(b"main;work;spin 10\nmain;io 5\nmain;work;spin 2\n", "tx_folded.cpu",
                         {"sampleRate": "100", "spyName": "gospy"})
    c.check(st == 200, f"folded: {st} {body[:200]!r}")
    ticks, selfs = flame(CPU, '{service_name="tx_folded"}')
    c.check(ticks == 170_000_000 and selfs.get("spin") == 120_000_000 and selfs.get("io") == 50_000_000,
            f"folded: total {ticks}, self {selfs}")

    # gzip body, no suffix (CPU), sampleRate 250: period 4 ms
    st, body, _ = ingest(gzip.compress(b"a;b 3\na 1\n"), "tx_gzip", {"sampleRate": "250"})
    ticks, selfs = flame(CPU, '{service_name="tx_gzip"}')
    c.check(st == 200 and ticks == 16_000_000 and selfs.get("b") == 12_000_000,
            f"gzip folded: {st}, total {ticks}, self {selfs}")

    # lines: every line one sample; an allocation type keeps its counts
    st, body, _ = ingest(b"a;b\na;b\na;c\n", "tx_lines.alloc_objects", {"format": "lines"})
    ticks, selfs = flame("memory:alloc_objects:count::", '{service_name="tx_lines"}')
    c.check(st == 200 and ticks == 3 and selfs.get("b") == 2 and selfs.get("c") == 1,
            f"lines: {st}, total {ticks}, self {selfs}")

    # wall with the default sampleRate (100)
    st, body, _ = ingest(b"main;sleep 7\n", "tx_wall.wall")
    ticks, _ = flame("wall:wall:nanoseconds:cpu:nanoseconds", '{service_name="tx_wall"}')
    c.check(st == 200 and ticks == 70_000_000, f"wall: {st}, total {ticks}")

    # an app name with labels keeps them; the suffix is not part of service_name
    st, body, _ = ingest(b"x 1\n", "tx_labels.cpu{env=prod,region=eu}")
    ticks, _ = flame(CPU, '{service_name="tx_labels",env="prod",region="eu"}')
    c.check(st == 200 and ticks == 10_000_000, f"labels: {st}, total {ticks}")

    # speedscope: one evented profile (unit none: 1/100 of a 10 ms sample per unit)
    ss = os.path.join(PYRO, "speedscope")
    st, body, _ = ingest(open(os.path.join(ss, "simple.speedscope.json"), "rb").read(), "tx_ss_simple",
                         {"format": "speedscope"}, {"Content-Type": "application/json"})
    ticks, selfs = flame(CPU, '{service_name="tx_ss_simple",profile_name="simple.txt"}')
    c.check(st == 200 and ticks == 140_000_000 and selfs.get("c") == 50_000_000 and selfs.get("d") == 40_000_000,
            f"speedscope evented: {st} {body[:200]!r}, total {ticks}, self {selfs}")

    # two sampled profiles in seconds: each its own wall series, named by profile_name
    st, body, _ = ingest(open(os.path.join(ss, "two-sampled.speedscope.json"), "rb").read(), "tx_ss_two{x=y}",
                         {"format": "speedscope"}, {"Content-Type": "application/json"})
    t1, s1 = flame("wall:wall:nanoseconds:cpu:nanoseconds", '{service_name="tx_ss_two",profile_name="one",x="y"}')
    t2, _ = flame("wall:wall:nanoseconds:cpu:nanoseconds", '{service_name="tx_ss_two",profile_name="two"}')
    c.check(st == 200 and t1 == 14_000_000_000 and t2 == 14_000_000_000 and s1.get("b") == 5_000_000_000,
            f"speedscope two profiles: {st} {body[:200]!r}, totals {t1} {t2}, self {s1}")

    # duplicates merge into one profile
    st, body, _ = ingest(open(os.path.join(ss, "duplicates.speedscope.json"), "rb").read(), "tx_ss_dup",
                         {"format": "speedscope"}, {"Content-Type": "application/json"})
    ticks, _ = flame(CPU, '{service_name="tx_ss_dup",profile_name="one"}')
    c.check(st == 200 and ticks == 42_000_000_000, f"speedscope duplicates: {st}, total {ticks}")

    # bytes units: memory, unscaled
    st, body, _ = ingest(open(os.path.join(ss, "two-sampled-bytes.speedscope.json"), "rb").read(), "tx_ss_bytes",
                         {"format": "speedscope"}, {"Content-Type": "application/json"})
    ticks, _ = flame("memory:samples:bytes::", '{service_name="tx_ss_bytes",profile_name="one"}')
    c.check(st == 200 and ticks == 14, f"speedscope bytes: {st} {body[:200]!r}, total {ticks}")

    # Pyroscope's legacy binary formats: a tree (frames) and a trie (key fragments)
    def node(name, value, children):
        return enc_varint(len(name)) + name + enc_varint(value) + enc_varint(children)

    tree = node(b"", 0, 2) + node(b"main", 0, 1) + node(b"work", 4, 0) + node(b"gc", 1, 0)
    st, body, _ = ingest(tree, "tx_tree.cpu", {"format": "tree"}, {"Content-Type": "application/octet-stream"})
    ticks, selfs = flame(CPU, '{service_name="tx_tree"}')
    c.check(st == 200 and ticks == 50_000_000 and selfs.get("work") == 40_000_000,
            f"tree: {st} {body[:200]!r}, total {ticks}, self {selfs}")
    trie = node(b"", 0, 1) + node(b"main;", 0, 2) + node(b"work", 4, 0) + node(b"io", 2, 0)
    st, body, _ = ingest(trie, "tx_trie.cpu", {}, {"Content-Type": "binary/octet-stream+trie"})
    ticks, selfs = flame(CPU, '{service_name="tx_trie"}')
    c.check(st == 200 and ticks == 60_000_000 and selfs.get("io") == 20_000_000,
            f"trie (by Content-Type): {st} {body[:200]!r}, total {ticks}, self {selfs}")
    st, body, _ = ingest(node(b"", 0, 3), "tx_trie.cpu", {"format": "trie"})
    c.check(st == 422 and b"trie" in body, f"a truncated trie: {st} {body[:200]!r}")

    ts = types()
    for want in (CPU, "memory:alloc_objects:count::", "wall:wall:nanoseconds:cpu:nanoseconds", "memory:samples:bytes::"):
        c.check(want in ts, f"ProfileTypes lists {want}: {sorted(ts)}")

    # bad text bodies
    def expect(what, resp, status, needle):
        st, body, _ = resp
        text = body.decode(errors="replace")
        c.check(st == status and needle in text, f"{what}: {st} {text[:200]!r} (want {status}, '{needle}')")

    expect("a count that is not an integer", ingest(b"a;b 1\na;c x\n", "tx_bad.cpu"), 422, "line 2")
    expect("a negative count", ingest(b"a;b -4\n", "tx_bad.cpu"), 422, "not a sample count")
    expect("an unknown profile type suffix", ingest(b"a 1\n", "tx_bad.parsecs"), 400, "unknown profile type")
    expect("an unknown format", ingest(b"a 1\n", "tx_bad", {"format": "flamegraph"}), 400, "unknown format")
    expect("speedscope that is not JSON", ingest(b"{", "tx_bad", {"format": "speedscope"}), 422, "not JSON")
    expect("speedscope with another schema", ingest(b'{"$schema":"x"}', "tx_bad", {"format": "speedscope"}), 422,
           "unknown schema")
    expect("a bad gzip body", ingest(b"\x1f\x8b\x08\x00garbage", "tx_bad"), 400, "gzip")
    st, body, _ = ingest(b"no-count-at-all\n\n", "tx_empty")
    c.check(st == 200, f"a body without any stack is accepted and stores nothing: {st} {body[:100]!r}")
    c.check(http("GET", f"{cl.dist}/ready")[0] == 200, "the distributor is ready after the bad bodies")
finally:
    cl.finish(c)
c.done()
