#!/usr/bin/env python3
"""One configuration for the whole cluster: every binary accepts every
component's flags and the same YAML file, a flag overrides the file, an
unknown flag is an error naming it, -help lists the flags, /config shows the
effective configuration, and SIGTERM stops a process cleanly."""
import os
import signal
import subprocess
import tempfile
import time
import urllib.request

from harness import BIN, Checks, free_port_base, http

c = Checks()
tmp = tempfile.mkdtemp(prefix="hp-cfg-")
binaries = ["distributor", "ingester", "querier", "store-gateway", "compactor"]

for b in binaries:
    exe = os.path.join(BIN, "hotpath-" + b)
    r = subprocess.run([exe, "-no.such-flag=1"], capture_output=True, text=True, timeout=30)
    c.check(r.returncode == 2 and "unknown flag -no.such-flag" in r.stderr, f"{b}: unknown flag -> {r.returncode} {r.stderr[:200]}")
    r = subprocess.run([exe, "-help"], capture_output=True, text=True, timeout=30)
    c.check(r.returncode == 0 and "-distributor.replication-factor" in r.stdout and "-ingester.data-dir" in r.stdout,
            f"{b}: -help lists every component's flags")
    r = subprocess.run([exe, "-server.http-listen-port=notaport"], capture_output=True, text=True, timeout=30)
    c.check(r.returncode == 2 and "server.http-listen-port" in r.stderr, f"{b}: bad value -> {r.stderr[:200]}")

# A YAML file sets the port; a flag of another component is accepted.
base = free_port_base()
cfg = os.path.join(tmp, "hotpath.yaml")
open(cfg, "w").write(f"""server:
  http_listen_address: 127.0.0.1
  http_listen_port: {base}
  rpc_listen_address: 127.0.0.1
  rpc_listen_port: {base + 100}
log:
  level: debug
ingester:
  data_dir: {tmp}/data
""")
for b in ["ingester", "store-gateway", "compactor"]:
    p = subprocess.Popen([os.path.join(BIN, "hotpath-" + b), "-config.file=" + cfg, "-querier.query-timeout=7s",
                          "-log.level=warn"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ok = False
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{base}/ready", timeout=1) as r:
                ok = r.status == 200
                break
        except Exception:
            time.sleep(0.1)
    c.check(ok, f"{b}: serves /ready on the port from the YAML file")
    status, body, _ = http("GET", f"http://127.0.0.1:{base}/config")
    text = body.decode()
    c.check(status == 200 and f"http_listen_port: {base}" in text and 'level: "warn"' in text and "query_timeout: 7s" in text,
            f"{b}: /config shows the file's value and the flags' overrides: {text[:300]}")
    status, body, _ = http("GET", f"http://127.0.0.1:{base}/metrics")
    c.check(status == 200 and b"process_resident_memory_bytes" in body, f"{b}: /metrics")
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = -1
    err = p.stderr.read().decode(errors="replace")
    # a sanitizer report from its first line (the kind and the stacks), not its legend
    at = max(err.find("ERROR: "), err.find("runtime error"), 0)
    c.check(rc == 0, f"{b}: clean exit on SIGTERM (status {rc}) {err[at:at + 4000]}")
    c.check("runtime error" not in err and "Sanitizer" not in err, f"{b}: sanitizer report: {err[at:at + 4000]}")
    p.stdout.close()
    p.stderr.close()

# A missing config file is an error naming it.
r = subprocess.run([os.path.join(BIN, "hotpath-querier"), "-config.file=/nonexistent.yaml"], capture_output=True, text=True, timeout=30)
c.check(r.returncode == 2 and "/nonexistent.yaml" in r.stderr, f"missing config file -> {r.stderr[:200]}")
c.done()
