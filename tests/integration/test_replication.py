#!/usr/bin/env python3
"""Ring and replication, RF=3 over three ingesters: one ingester SIGKILLed
during a steady push load loses nothing and counts nothing twice; queries
give the same answers with a replica gone; a retried push is stored once;
the killed ingester restarts with the same ID, rejoins and takes writes;
with two of three gone, pushes fail with 503 and a clear message."""
import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse

from harness import CORPUS, Checks, Cluster, http, multipart, ref_top, render, retime

c = Checks()
F = os.path.join(CORPUS, "go", "go_shasort_2s.cpu.pb.gz")
TOTAL, FLAT = ref_top(F + ".ref/top.1.cpu.txt")
TID = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
cl = Cluster(ingesters=3, rf=3, flags=["-ring.heartbeat-period=500ms", "-ring.heartbeat-timeout=3s"])


def push(svc, ts, data=None):
    data = data or retime(open(F, "rb").read(), ts)
    body, ct = multipart([("profile", "profile.pprof", data)])
    status, resp, _ = http("POST", f"{cl.dist}/ingest?" + urllib.parse.urlencode({"name": svc}), body,
                           {"Content-Type": ct}, timeout=30)
    return status, resp, data


def total(svc):
    status, r = render(cl.qry, TID, f'{{service_name="{svc}"}}')
    return (r["flamebearer"]["numTicks"] if status == 200 else None), r


def pidfile(name):
    return os.path.join(cl.data, "pids", name + ".pid")


def ring_state():
    status, body, _ = http("GET", f"{cl.dist}/ring", headers={"Accept": "application/json"})
    return json.loads(body)["members"] if status == 200 else []


try:
    base = time.time_ns()
    # Before any failure: a reference answer.
    for i in range(6):
        c.check(push("rep.before", base + i * 1000)[0] == 200, "push before the failure")
    before_total, before = total("rep.before")
    c.check(before_total == 6 * TOTAL, f"before: total {before_total} != {6 * TOTAL}")

    # Steady load while ingester-0 is SIGKILLed.
    victim = int(open(pidfile("ingester-0")).read())
    cmdline = open(f"/proc/{victim}/cmdline", "rb").read().split(b"\0")[:-1]
    acked, failed, sent = [], [], 0
    stop = threading.Event()

    def load():
        global sent
        k = 0
        while not stop.is_set():
            status, resp, data = push("rep.load", base + 10**9 + k * 1000)
            (acked if status == 200 else failed).append((status, resp[:200], data))
            k += 1
            time.sleep(0.1)

    th = threading.Thread(target=load)
    th.start()
    time.sleep(1.5)
    os.kill(victim, signal.SIGKILL)
    t_kill = time.time()
    time.sleep(4)
    stop.set()
    th.join()
    c.check(len(acked) >= 20 and not failed, f"pushes during the outage: {len(acked)} acked, {len(failed)} failed {failed[:2]}")
    got, r = total("rep.load")
    c.check(got == len(acked) * TOTAL, f"load: total {got} != {len(acked)} acked x {TOTAL}")
    if got is not None:
        fb = r["flamebearer"]
        selfs = {}
        for lvl in fb["levels"]:
            for i in range(0, len(lvl), 4):
                selfs[fb["names"][lvl[i + 3]]] = selfs.get(fb["names"][lvl[i + 3]], 0) + lvl[i + 2]
        bad = [fn for fn, v in FLAT.items() if selfs.get(fn, 0) != v * len(acked)]
        c.check(not bad, f"per-function values not exactly x{len(acked)}: {bad[:3]}")

    # The same answer as before the failure.
    after_total, after = total("rep.before")
    c.check(after["flamebearer"] == before["flamebearer"], f"with a replica gone the flame graph changed: {after_total} vs {before_total}")

    # A client retrying an acked push is not counted twice.
    c.check(push("rep.load", 0, acked[0][2])[0] == 200, "a retried push is accepted")
    c.check(total("rep.load")[0] == len(acked) * TOTAL, "a retried push is counted once")

    # The victim restarts with the same instance ID, rejoins, takes writes.
    p = subprocess.Popen([x.decode() for x in cmdline], stdout=open(os.path.join(cl.tmp, "restart.log"), "w"),
                         stderr=subprocess.STDOUT)
    open(pidfile("ingester-0"), "w").write(str(p.pid))
    rejoined = False
    for _ in range(100):
        if any(m["id"] == "ingester-0" and m["state"] == "ACTIVE" and m["healthy"] for m in ring_state()):
            rejoined = True
            break
        time.sleep(0.1)
    c.check(rejoined, f"ingester-0 rejoined the ring: {ring_state()}")
    port = int([a for a in cmdline if a.startswith(b"-server.http-listen-port=")][0].split(b"=")[1])
    for i in range(6):
        c.check(push("rep.after", base + 2 * 10**9 + i * 1000)[0] == 200, "push after the restart")
    status, body, _ = http("GET", f"http://127.0.0.1:{port}/metrics")
    stored = [l for l in body.decode().splitlines() if l.startswith("hotpath_ingester_profiles_total")]
    c.check(stored and float(stored[0].split()[-1]) > 0, f"the restarted ingester takes writes: {stored}")
    c.check(total("rep.after")[0] == 6 * TOTAL, "after the restart: exact totals")
    c.check(total("rep.load")[0] == len(acked) * TOTAL, "after the restart: the outage's data is still exact")

    # Two of three down: no quorum, so nothing is acked.
    for name in ("ingester-1", "ingester-2"):
        os.kill(int(open(pidfile(name)).read()), signal.SIGKILL)
    status, resp, _ = push("rep.lost", base + 3 * 10**9)
    c.check(status == 503 and b"quorum" in resp, f"two of three down: push -> {status} {resp[:200]!r}")
    status, r = render(cl.qry, TID, '{service_name="rep.before"}')
    c.check(status == 503, f"two of three down: query -> {status}")
    p.terminate()
    p.wait(timeout=20)
finally:
    cl.finish(c)
c.done()
