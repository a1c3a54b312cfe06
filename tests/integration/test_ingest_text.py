#!/usr/bin/env python3
"""Profiles that arrive as text on /ingest, converted as Pyroscope does:
folded "groups" (the default; gzip too), `lines`, speedscope files (the
public goldens) and the legacy binary `tree` and `trie`, with the profile type from the app name's suffix and CPU
and wall counts turned into nanoseconds with sampleRate — then queried back
as flame graphs whose totals and per-function self values are exact. Bad
text bodies get their status and a message; bodies built to cost work out
of proportion to their size (a trie or tree whose stacks share a long
prefix, thousands of speedscope profiles) are refused quickly, naming the
limit. A multipart body with format=pprof is read as multipart, and with
no profile size limit a gzip text body is bounded by the decompressed-body
limit."""
import gzip
import json
import os
import time
import urllib.parse

from harness import (CORPUS, PYRO, Checks, Cluster, compare_render, connect_json, enc_varint, flame_self, http,
                     multipart, ref_types, render, retime, type_id)

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
    expect("a count that overflows int64", ingest(b"a;b 9999999999999999999\n", "tx_bad.cpu"), 422,
           "line 1: count too large")

    # bodies built to be slow: refused quickly, naming the limit
    chain = node(b"", 0, 1) + b"".join(node(b"f;", 0, 1) for _ in range(1999)) + node(b"f;", 0, 198000)
    trie = chain + node(b"x", 1, 0) * 198000  # 800 KB: a 2000-frame key, then 198 000 leaves
    t0 = time.time()
    expect("a trie whose leaves share a long key", ingest(gzip.compress(trie), "tx_hostile.cpu", {"format": "trie"}),
           413, "frame budget: more than 16777216 frames")
    print(f"  (trie refused in {time.time() - t0:.2f} s)")
    tree = node(b"", 0, 1) + b"".join(node(b"f", 1, 1) for _ in range(199999)) + node(b"f", 1, 0)
    t0 = time.time()
    expect("a tree chain with a value at every node", ingest(gzip.compress(tree), "tx_hostile.cpu", {"format": "tree"}),
           413, "frame budget")
    print(f"  (tree refused in {time.time() - t0:.2f} s)")
    many = {"$schema": "https://www.speedscope.app/file-format-schema.json", "shared": {"frames": [{"name": "a"}]},
            "profiles": [{"type": "sampled", "name": f"p{i}", "unit": "seconds", "startValue": i % 7,
                          "samples": [[0]], "weights": [1]} for i in range(20000)]}
    expect("a speedscope file of 20 000 profiles",
           ingest(json.dumps(many).encode(), "tx_hostile", {"format": "speedscope"}), 422,
           "20000 profiles in one file, at most 1024")
    folded_many = b"".join(b"s%d 1\n" % i for i in range(16001))
    expect("more distinct stacks than max_profile_stacktrace_samples", ingest(folded_many, "tx_hostile.cpu"), 422,
           "samples count limit (max_profile_stacktrace_samples, limit: 16000)")
    st, body, _ = ingest(b"same;stack 1\n" * 20000, "tx_repeats", {"format": "groups"})
    ticks, _ = flame(CPU, '{service_name="tx_repeats"}')
    c.check(st == 200 and ticks == 20000 * 10_000_000,
            f"a repeated stack counts once against the samples limit: {st} {body[:200]!r}, total {ticks}")

    # speedscope: several profiles in unit none name no profile type (Pyroscope: "unknown profile type: none")
    two_none = {"$schema": "https://www.speedscope.app/file-format-schema.json", "shared": {"frames": [{"name": "a"}]},
                "profiles": [{"type": "sampled", "name": n, "unit": "none", "samples": [[0]], "weights": [1]}
                             for n in ("one", "two")]}
    expect("two speedscope profiles in unit none", ingest(json.dumps(two_none).encode(), "tx_ss_none",
                                                          {"format": "speedscope"}), 400, "has unit none")

    # the Go SDK's multipart body, with format=pprof as some clients add it
    f = os.path.join(CORPUS, "go", "go_mix.cpu.pb.gz")
    mp, ct = multipart([("profile", "profile.pprof", retime(open(f, "rb").read(), time.time_ns()))])
    st, body, _ = ingest(mp, "tx_mp_pprof", {"format": "pprof", "spyName": "gospy"}, {"Content-Type": ct})
    c.check(st == 200, f"multipart with format=pprof: {st} {body[:200]!r}")
    for idx, stype, sunit, ptype, punit in ref_types(f):
        tid = type_id(cl.qry, stype, sunit, ptype, punit)
        status, r = render(cl.qry, tid, '{service_name="tx_mp_pprof"}') if tid else (None, None)
        why = compare_render(r, f"{f}.ref/top.{idx}.{stype}.txt") if status == 200 else f"render {status} {r}"
        c.check(why is None, f"multipart with format=pprof, {stype}: {why}")

    st, body, _ = ingest(b"no-count-at-all\n\n", "tx_empty")
    c.check(st == 200, f"a body without any stack is accepted and stores nothing: {st} {body[:100]!r}")
    c.check(http("GET", f"{cl.dist}/ready")[0] == 200, "the distributor is ready after the bad bodies")
finally:
    cl.finish(c)

# Without a profile size limit, a text body is bounded by the decompressed-body limit.
cl = Cluster(ingesters=1, flags=["-validation.max-profile-size-bytes=0",
                                 "-distributor.ingestion-decompressed-body-limit-bytes=1MiB"])
try:
    st, body, _ = ingest(gzip.compress(b"a;b 1\n" * 400000), "tx_unbounded.cpu")  # 2.4 MB inflated, 10 KB sent
    text = body.decode(errors="replace")
    c.check(st == 413 and "exceeds 1048576 bytes after decompression (ingestion_decompressed_body_limit_bytes)" in text,
            f"a gzip text body over the decompressed-body limit: {st} {text[:200]!r}")
    st, body, _ = ingest(gzip.compress(b"a;b 1\n" * 1000), "tx_unbounded.cpu")
    c.check(st == 200, f"a gzip text body under it: {st} {body[:200]!r}")
finally:
    cl.finish(c)
c.done()
