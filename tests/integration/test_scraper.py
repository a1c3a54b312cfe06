#!/usr/bin/env python3
"""Pull mode: hotpath-scraper scrapes a real Go program serving
net/http/pprof (tests/tools/pprofserver, built with Debian's Go) — once by
a static URL, once through a dns+ name — and pushes CPU, memory,
goroutine, mutex and block profiles to the distributor; the querier then
answers for the program's own functions under the service name and
instance the scraper gave them. A target that is down is counted and
logged, and the scraper keeps going; a bad target list is refused at start."""
import os
import subprocess
import tempfile
import time

from harness import SRC, BIN, Checks, Cluster, connect_json, flame_self, free_port, http, metric, render

c = Checks()
tmp = tempfile.mkdtemp(prefix="hp-scrape-")
exe = os.path.join(tmp, "pprofserver")
env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off", GOCACHE=os.path.join(tmp, "gocache"))
subprocess.run(["go", "build", "-o", exe, os.path.join(SRC, "tests", "tools", "pprofserver", "main.go")],
               check=True, env=env)
app = subprocess.Popen([exe, "-addr", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
line = app.stdout.readline().strip()
addr = line.split()[-1] if line.startswith("listening") else None
c.check(addr is not None, f"the Go program serves net/http/pprof: {line!r}")
port = addr.rsplit(":", 1)[1]

cl = Cluster(ingesters=1)
try:
    dead = free_port()  # nothing listens there
    targets = f"pull-app=http://{addr},pull-dns=dns+localhost:{port},http://127.0.0.1:{dead}"
    sport = free_port()
    p, ready = cl.start_component("scraper", "hotpath-scraper", sport,
                                  [f"-scrape.targets={targets}", "-scrape.interval=2s", "-scrape.cpu-seconds=1",
                                   "-scrape.timeout=5s", f"-scrape.push-url={cl.dist}"])
    c.check(ready, "the scraper becomes ready after its first cycle")
    surl = f"http://127.0.0.1:{sport}"

    def types(svc):
        now = int(time.time() * 1000)
        _, r = connect_json(cl.qry, "ProfileTypes", {"start": str(now - 600_000), "end": str(now + 60_000)})
        return {t["ID"] for t in r.get("profileTypes", [])}

    want = {"process_cpu:cpu:nanoseconds:cpu:nanoseconds", "memory:alloc_space:bytes:space:bytes",
            "goroutines:goroutine:count:goroutine:count", "mutex:delay:nanoseconds:contentions:count",
            "block:delay:nanoseconds:contentions:count"}  # block and mutex told apart as the Go SDK does
    deadline = time.time() + 60
    while time.time() < deadline and not want <= types("pull-app"):
        time.sleep(0.5)
    got = types("pull-app")
    c.check(want <= got, f"CPU, memory, goroutine, mutex and block profiles arrive: missing {sorted(want - got)} "
            f"of {sorted(got)}")

    def flame_until(tid, selector, fn, seconds=60):
        """The flame graph once it shows a function containing fn (bounded)."""
        deadline = time.time() + seconds
        while True:
            st, r = render(cl.qry, tid, selector, frm="now-10m")
            ticks, selfs = flame_self(r) if st == 200 else (0, {})
            if (ticks > 0 and any(fn in n for n in selfs)) or time.time() > deadline:
                return ticks, selfs
            time.sleep(0.5)

    ticks, selfs = flame_until("process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                               f'{{service_name="pull-app",instance="{addr}"}}', "hotpathScrapeBurn")
    c.check(ticks > 0 and any("hotpathScrapeBurn" in n for n in selfs),
            f"the CPU flame graph of pull-app shows the program's own function: {ticks}, "
            f"{sorted(selfs, key=selfs.get)[-3:]}")
    ticks, selfs = flame_until("memory:alloc_space:bytes:space:bytes", '{service_name="pull-app"}',
                               "hotpathScrapeAlloc")
    c.check(ticks > 0 and any("hotpathScrapeAlloc" in n for n in selfs),
            f"the allocation flame graph shows its allocating function: {ticks}")
    ticks, _ = flame_until("goroutines:goroutine:count:goroutine:count", '{service_name="pull-dns"}', "main")
    c.check(ticks > 0, f"the dns+ entry's target is scraped under its own service name: {ticks}")
    ticks, selfs = flame_until("block:delay:nanoseconds:contentions:count", '{service_name="pull-app"}', "Lock")
    c.check(ticks > 0, f"block profiles arrive as block, not mutex: {ticks}")

    fails = metric(surl, 'hotpath_scraper_fetches_total{profile="goroutine",result="error"}')
    oks = metric(surl, 'hotpath_scraper_pushes_total{profile="goroutine",result="ok"}')
    c.check(fails >= 1 and oks >= 2, f"the dead target is counted as failing, the live ones push: {fails} {oks}")
    c.check(p.poll() is None and http("GET", surl + "/ready")[0] == 200, "the scraper keeps running")
    log = open(os.path.join(cl.data, "logs", "scraper.log")).read()
    c.check(f"127.0.0.1:{dead}" in log and "scrape failed" in log, "the failing target is logged with its address")

    cl.stop_component("scraper")
    bad, _ = cl.start_component("scraper-bad", "hotpath-scraper", free_port(),
                                ["-scrape.targets=ftp://x:1", f"-scrape.push-url={cl.dist}"], ready_seconds=5)
    bad.wait(timeout=30)
    c.check(bad.returncode == 1 and "want [service=]http://host:port" in
            open(os.path.join(cl.data, "logs", "scraper-bad.log")).read(),
            f"a bad target is refused at start, naming the form: exit {bad.returncode}")
finally:
    cl.finish(c)
    app.kill()
    app.wait()
c.done()
