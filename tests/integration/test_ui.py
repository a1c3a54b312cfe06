#!/usr/bin/env python3
"""The web UI in a real browser: a cluster whose querier serves the built
UI, two Go CPU profiles pushed as one service with env=prod and
env=staging (and 201 small ones of another service, for the profile
list's pages), then ui/test/browser/ui.test.mjs drives Debian's Chromium
(playwright-core) through every view and checks what it shows against
go tool pprof's figures for those profiles; the pprof the page downloads
must open in go tool pprof with the right total. Screenshots go to
ui-test-output/ in the test's working directory (the build tree)."""
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse

from harness import CORPUS, SRC, Checks, Cluster, http, multipart, ref_top, retime

c = Checks()
OUT = os.path.abspath(os.environ.get("HP_UI_TEST_OUT", "ui-test-output"))
UI = os.path.join(SRC, "ui")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PROD = os.path.join(CORPUS, "go", "go_mix.cpu.pb.gz")
STAGING = os.path.join(CORPUS, "go", "go_shasort_2s.cpu.pb.gz")
TYPE = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
PAGER_PROFILES = 201  # one more than the profile list's page
UNSYMBOLIZED = re.compile(r"^(<unknown>|\[.*\]|0x[0-9a-fA-F]+)$")


def ref(profile):
    """(total, [(function, flat, cum)] by flat) from the cpu sample type's references."""
    total, flat = ref_top(profile + ".ref/top.1.cpu.txt")
    cum = {}
    for line in open(profile + ".ref/top.1.cpu.txt"):
        m = re.match(r"\s*(\d+)ns\s+[\d.]+%\s+[\d.]+%\s+(\d+)ns\s+[\d.]+%\s+(.*)$", line)
        if m:
            cum[m.group(3).strip()] = int(m.group(2))
    rows = [(f, v, cum.get(f, 0)) for f, v in flat.items() if not UNSYMBOLIZED.match(f) and "(inline)" not in f]
    return total, sorted(rows, key=lambda r: -r[1])


def push(cl, path, labels, ts):
    data = retime(open(path, "rb").read(), ts)
    mp, ct = multipart([("profile", "profile.pprof", data)])
    q = urllib.parse.urlencode({"name": f"uiapp{{{labels}}}", "from": str(ts // 10**9), "spyName": "gospy"})
    status, body, _ = http("POST", f"{cl.dist}/ingest?{q}", mp, {"Content-Type": ct})
    return c.check(status == 200, f"push {os.path.basename(path)} {labels} -> {status} {body[:200]!r}")


def share_change(left, left_total, right, right_total):
    """The relative change, in percent, of a value's share of its side's total."""
    return (right / right_total - left / left_total) / (left / left_total) * 100


def push_folded(cl, service, ts, samples):
    """A one-stack profile of `samples` samples at 100 Hz, at ts (ns)."""
    q = urllib.parse.urlencode({"name": f"{service}.cpu", "from": str(ts // 10**9), "sampleRate": "100"})
    status, _, _ = http("POST", f"{cl.dist}/ingest?{q}", f"main;work {samples}\n".encode(), {"Content-Type": "text/plain"})
    return status == 200


def pprof_total(path):
    """The total go tool pprof prints for a file, in ns."""
    out = subprocess.run(["go", "tool", "pprof", "-top", "-unit=ns", "-symbolize=none", path],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, GOFLAGS="", HOME=os.environ.get("HOME", "/tmp")))
    m = re.search(r"of (\d+)ns total", out.stdout)
    return (int(m.group(1)) if m else None), out.stdout[-400:] + out.stderr[-400:]


if not c.check(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is installed (scripts/install-deps installs chromium)"):
    c.done()
deps = subprocess.run([os.path.join(UI, "scripts", "deps")], capture_output=True, text=True, timeout=600)
if not c.check(deps.returncode == 0, "ui/scripts/deps installs playwright-core: " + deps.stderr[-500:]):
    c.done()
shutil.rmtree(OUT, ignore_errors=True)
os.makedirs(OUT)

cl = Cluster(ingesters=3, rf=3, gateways=0)
try:
    c.check(cl.wait_ring(3), "the ring has 3 ACTIVE ingesters")
    status, body, hdrs = http("GET", cl.qry + "/")
    c.check(status == 200 and b"<div id=\"app\">" in body,
            f"the querier serves the UI at / ({status}; build it with make build: {body[:200]!r})")
    etag = {k.lower(): v for k, v in hdrs.items()}.get("etag", "")
    status, body, _ = http("GET", cl.qry + "/", headers={"If-None-Match": etag})
    c.check(etag and status == 304 and body == b"", f"/ answers 304 to its own ETag {etag} ({status})")
    status, body, _ = http("HEAD", cl.qry + "/")
    c.check(status == 200 and body == b"", f"HEAD / answers without a body ({status})")
    status, _, _ = http("POST", cl.qry + "/", b"x")
    c.check(status == 405, f"POST / is 405 ({status})")
    assets = re.findall(rb'(?:src|href)="\./(assets/[^"]+)"', http("GET", cl.qry + "/")[1])
    for a in assets:
        status, _, h = http("GET", cl.qry + "/" + a.decode())
        h = {k.lower(): v for k, v in h.items()}
        want = "text/css" if a.endswith(b".css") else "text/javascript"
        c.check(status == 200 and h.get("content-type", "").startswith(want) and
                h.get("cache-control") == "public, max-age=31536000, immutable",
                f"{a.decode()}: {status} {h.get('content-type')}, {h.get('cache-control')}")
    c.check(len(assets) >= 2, f"index.html names its script and stylesheet: {assets}")
    for bad in ["/assets/..%2f..%2fetc%2fpasswd", "/assets/../index.html", "/assets/.hidden", "/assets/a//b.js"]:
        status, _, _ = http("GET", cl.qry + bad)
        c.check(status in (400, 404), f"{bad} is refused ({status})")
    status, body, _ = http("GET", cl.qry + "/assets/missing-00000000.js")
    c.check(status == 404, f"a missing asset is 404 ({status})")
    now = time.time_ns()
    push(cl, PROD, "env=prod", now - 600 * 10**9)
    push(cl, STAGING, "env=staging", now - 300 * 10**9)
    prod_total, prod_top = ref(PROD)
    staging_total, staging_top = ref(STAGING)
    # a function on both sides of the diff whose self and total differ, with what its table row must show
    staging_by_fn = {f: (flat, cum) for f, flat, cum in staging_top}
    fn, l_self, l_total = next(r for r in prod_top if r[1] != r[2] and staging_by_fn.get(r[0], (0, 0))[0] > 0)
    r_self, r_total = staging_by_fn[fn]
    pushed = sum(push_folded(cl, "uipager", now - (PAGER_PROFILES - i) * 10**9, i + 1) for i in range(PAGER_PROFILES))
    c.check(pushed == PAGER_PROFILES, f"{pushed} of {PAGER_PROFILES} small profiles pushed for the profile list's pages")
    expect = {
        "prodQuery": f'{TYPE}{{service_name="uiapp",env="prod"}}',
        "stagingQuery": f'{TYPE}{{service_name="uiapp",env="staging"}}',
        "serviceQuery": f'{TYPE}{{service_name="uiapp"}}',
        "badRegexQuery": f'{TYPE}{{service_name=~"(unclosed"}}',
        "prodTotal": prod_total,
        "stagingTotal": staging_total,
        "prodTop": [{"name": f, "flat": v, "cum": cum} for f, v, cum in prod_top[:5]],
        "searchTerm": "sort.",
        "diffFn": {"name": fn, "lSelf": l_self, "rSelf": r_self,
                   "lSelfShare": l_self / prod_total * 100, "rSelfShare": r_self / staging_total * 100,
                   "selfChange": share_change(l_self, prod_total, r_self, staging_total),
                   "totalChange": share_change(l_total, prod_total, r_total, staging_total)},
        "pagerQuery": f'{TYPE}{{service_name="uipager"}}',
        "pagerProfiles": PAGER_PROFILES,
    }
    json.dump(expect, open(os.path.join(OUT, "expect.json"), "w"), indent=1)
    node = subprocess.run(["node", os.path.join(UI, "test", "browser", "ui.test.mjs"), cl.qry,
                           os.path.join(OUT, "expect.json"), OUT],
                          cwd=UI, capture_output=True, text=True, timeout=240)
    print(node.stdout, end="", flush=True)
    if node.stderr.strip():
        print(node.stderr[-3000:], flush=True)
    for line in node.stdout.splitlines():
        if line.startswith("ok - "):
            c.check(True, line)
        elif line.startswith("FAIL - "):
            c.check(False, "browser: " + line[7:])
    c.check(node.returncode == 0 and " passed, 0 failed" in node.stdout, f"the browser test passed (exit {node.returncode})")
    merged = os.path.join(OUT, "merged.pb.gz")
    if c.check(os.path.exists(merged), "the page's pprof download was saved"):
        total, why = pprof_total(merged)
        c.check(total == prod_total, f"go tool pprof opens the downloaded pprof with the total {total} == {prod_total}: {why}")
    print(f"screenshots: {OUT}", flush=True)
finally:
    cl.finish(c)
c.done()
