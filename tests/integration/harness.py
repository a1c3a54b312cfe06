"""Shared helpers for hotpath's integration tests.

Tests start real binaries through deploy/local/cluster on 127.0.0.1 with
free ports, talk to them only over HTTP, wait with bounds, and stop every
process they started. Each test file is a script that prints one line per
check and ends with "N passed, N failed" (exit status 1 on any failure).
"""
import gzip
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SRC = os.environ.get("HP_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TESTDATA = os.environ.get("HP_TESTDATA") or os.path.abspath(os.path.join(SRC, "..", "shared", "testdata"))
BIN = os.environ.get("HOTPATH_BIN") or os.path.join(SRC, "build", "bin")
CORPUS = os.path.join(TESTDATA, "corpus")
PYRO = os.path.join(TESTDATA, "pyroscope")


class Checks:
    """Counts checks and prints the closing line."""

    def __init__(self):
        self.ok = 0
        self.bad = 0

    def check(self, cond, what):
        if cond:
            self.ok += 1
        else:
            self.bad += 1
            print("FAIL: " + what, flush=True)
        return cond

    def done(self):
        print(f"{self.ok} passed, {self.bad} failed", flush=True)
        sys.exit(0 if self.bad == 0 and self.ok > 0 else 1)


# Ports are handed out in slots of SLOT ports between PORT_LOW and the
# kernel's ephemeral range, so an outgoing connection never takes a port a
# component is about to listen on. A slot is held with a lock file (flock),
# which the kernel releases when the test process ends, so tests running in
# parallel never get the same ports and nothing stale is left behind.
SLOT = 10
PORT_LOW = 10000
_held_slots = []  # open lock files, kept for the life of the process


def _ephemeral_low():
    try:
        return int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _lock_slot(slot):
    import fcntl
    d = os.path.join(tempfile.gettempdir(), "hotpath-test-ports")
    os.makedirs(d, exist_ok=True)
    f = open(os.path.join(d, str(slot)), "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return f
    except OSError:
        f.close()
        return None


def free_port_base(span=300):
    """A port base P such that P .. P+span-1 are free on 127.0.0.1 and held
    for this process: no other test using these helpers gets them."""
    n = (span + SLOT - 1) // SLOT
    top = (_ephemeral_low() - PORT_LOW) // SLOT - n
    for _ in range(400):
        first = random.randrange(0, top)
        locks = []
        for k in range(first, first + n):
            f = _lock_slot(k)
            if f is None:
                break
            locks.append(f)
        base = PORT_LOW + first * SLOT
        if len(locks) == n and all(_port_free(base + d) for d in range(span)):
            _held_slots.extend(locks)
            return base
        for f in locks:
            f.close()
    raise RuntimeError("no free port range found")


def _port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Cluster:
    """A local cluster started with deploy/local/cluster."""

    def __init__(self, ingesters=3, rf=1, flags=(), keep_logs_on_failure=True, gateways=1, compactors=0):
        self.tmp = tempfile.mkdtemp(prefix="hp-it-")
        self.data = os.path.join(self.tmp, "data")
        self.base = free_port_base()
        self.dist = f"http://127.0.0.1:{self.base}"
        self.qry = f"http://127.0.0.1:{self.base + 1}"
        args = [os.path.join(SRC, "deploy", "local", "cluster"), "--ingesters", str(ingesters),
                "--data", self.data, "--http-port-base", str(self.base),
                "--replication-factor", str(rf), "--bin", BIN,
                "--store-gateways", str(gateways), "--compactors", str(compactors)]
        if flags:
            args += ["--"] + list(flags)
        self._cmds = {}      # ingester index → command line, for restarts
        self._children = {}  # pid → Popen of ingesters this object restarted
        self.log = open(os.path.join(self.tmp, "cluster.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 120
        for url in [self.dist, self.qry]:
            while not self._ready(url):
                if time.time() > deadline or self.proc.poll() is not None:
                    self._print_log_tails()
                    self.stop()
                    raise RuntimeError("cluster did not become ready; logs in " + self.data)
                time.sleep(0.2)

    def _print_log_tails(self, lines=15):
        """Prints the end of the launcher's and every component's log, so a
        CI run shows why a cluster did not come up."""
        self.log.flush()
        paths = [os.path.join(self.tmp, "cluster.log")]
        logs = os.path.join(self.data, "logs")
        if os.path.isdir(logs):
            paths += [os.path.join(logs, n) for n in sorted(os.listdir(logs))]
        for path in paths:
            try:
                tail = open(path, errors="replace").read().splitlines()[-lines:]
            except OSError:
                continue
            print(f"--- {path} (last {len(tail)} lines)", flush=True)
            for line in tail:
                print("    " + line, flush=True)

    def ingester_url(self, i=0):
        return f"http://127.0.0.1:{self.base + 10 + i}"

    def ring_complete(self, n):
        """Whether the distributor and the querier both see n ingesters
        ACTIVE and healthy. Both become ready with a quorum, so a push made
        before this may reach fewer than RF ingesters."""
        for url in (self.dist, self.qry):
            status, body, _ = http("GET", url + "/ring", headers={"Accept": "application/json"})
            members = json.loads(body).get("members", []) if status == 200 else []
            if len(members) != n or not all(m.get("state") == "ACTIVE" and m.get("healthy") for m in members):
                return False
        return True

    def wait_ring(self, n, seconds=60):
        """Waits (bounded) for ring_complete(n); returns whether it came."""
        deadline = time.time() + seconds
        while not self.ring_complete(n):
            if time.time() > deadline:
                return False
            time.sleep(0.2)
        return True

    def gateway_url(self, i=0):
        return f"http://127.0.0.1:{self.base + 40 + i}"

    def compactor_url(self, i=0):
        return f"http://127.0.0.1:{self.base + 70 + i}"

    def stop_ingester(self, i=0, sig=signal.SIGKILL, seconds=30):
        """Sends sig to ingester i and waits (bounded) until it has exited.
        Returns True when it has."""
        pidf = os.path.join(self.data, "pids", f"ingester-{i}.pid")
        pid = int(open(pidf).read())
        if i not in self._cmds:
            raw = open(f"/proc/{pid}/cmdline", "rb").read()
            self._cmds[i] = [a.decode() for a in raw.split(b"\0")[:-1]]
        os.kill(pid, sig)
        for _ in range(seconds * 20):
            try:
                if open(f"/proc/{pid}/stat").read().split()[2] == "Z":
                    break
            except (FileNotFoundError, ProcessLookupError):  # gone (reaped) between open and read: ESRCH
                break
            time.sleep(0.05)
        else:
            return False
        if pid in self._children:
            self._children.pop(pid).wait()
        return True

    def start_ingester(self, i=0, ready_seconds=30):
        """Starts ingester i again with its last command line and waits
        (bounded) for /ready. Returns (process, ready)."""
        log = open(os.path.join(self.data, "logs", f"ingester-{i}.log"), "a")
        p = subprocess.Popen(self._cmds[i], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._children[p.pid] = p
        open(os.path.join(self.data, "pids", f"ingester-{i}.pid"), "w").write(str(p.pid))
        ready = False
        for _ in range(ready_seconds * 5):
            try:
                ready = http("GET", self.ingester_url(i) + "/ready", timeout=2)[0] == 200
            except Exception:
                ready = False
            if ready:
                break
            time.sleep(0.2)
        return p, ready

    def restart_ingester(self, i=0, between=None, ready_seconds=30):
        """SIGKILLs ingester i, calls between() while it is down, and starts
        it again (start_ingester). Returns (process, ready)."""
        self.stop_ingester(i, signal.SIGKILL)
        if between:
            between()
        return self.start_ingester(i, ready_seconds)

    # ---- extra components (added for the compactor test) ----

    _SKIP_FLAGS = ("-target=", "-server.http-listen-port=", "-server.rpc-listen-port=", "-ring.instance-id=",
                   "-ingester.data-dir=", "-ring.zone=")

    def common_flags(self):
        """The flags every component of this cluster was started with (the
        launcher's common flags and the cluster's extra flags), read from
        ingester 0's command line."""
        pid = int(open(os.path.join(self.data, "pids", "ingester-0.pid")).read())
        raw = open(f"/proc/{pid}/cmdline", "rb").read()
        args = [a.decode() for a in raw.split(b"\0")[:-1]][1:]
        return [a for a in args if not a.startswith(self._SKIP_FLAGS)]

    def start_component(self, name, binary, port, extra_flags=(), ready_seconds=30):
        """Starts BIN/<binary> as component `name` with common_flags(),
        HTTP on port, then extra_flags (a later flag wins); log in
        DATA/logs/<name>.log, pid in DATA/pids/<name>.pid. stop() stops
        it. Waits (bounded) for /ready; returns (process, ready)."""
        if not hasattr(self, "_component_cmds"):
            self._component_cmds = {}
        cmd = [os.path.join(BIN, binary), f"-target={name}"] + self.common_flags() + \
            [f"-server.http-listen-port={port}"] + list(extra_flags)
        self._component_cmds[name] = (cmd, port)
        return self._launch_component(name, ready_seconds)

    def _launch_component(self, name, ready_seconds):
        cmd, port = self._component_cmds[name]
        log = open(os.path.join(self.data, "logs", f"{name}.log"), "a")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._children[p.pid] = p
        open(os.path.join(self.data, "pids", f"{name}.pid"), "w").write(str(p.pid))
        ready = False
        for _ in range(ready_seconds * 5):
            ready = self._ready(f"http://127.0.0.1:{port}")
            if ready or p.poll() is not None:
                break
            time.sleep(0.2)
        return p, ready

    def stop_component(self, name, sig=signal.SIGTERM, seconds=30):
        """Sends sig to component `name` (started with start_component) and
        waits (bounded) for it to exit. Returns True when it has."""
        pid = int(open(os.path.join(self.data, "pids", f"{name}.pid")).read())
        p = self._children.get(pid)
        if p is None:
            return False
        p.send_signal(sig)
        try:
            p.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        self._children.pop(pid)
        os.remove(os.path.join(self.data, "pids", f"{name}.pid"))
        return True

    def restart_component(self, name, sig=signal.SIGKILL, between=None, ready_seconds=30):
        """Stops component `name` with sig, calls between() while it is
        down, and starts it again with the same command line. Returns
        (process, ready)."""
        self.stop_component(name, sig)
        if between:
            between()
        return self._launch_component(name, ready_seconds)

    @staticmethod
    def _ready(url):
        try:
            with urllib.request.urlopen(url + "/ready", timeout=2) as r:
                return r.status == 200
        except Exception:
            return False

    def logs(self):
        out = []
        d = os.path.join(self.data, "logs")
        for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            out.append("== " + f + "\n" + open(os.path.join(d, f), errors="replace").read()[-4000:])
        return "\n".join(out)

    def stop(self):
        """Stops every component, bounded: SIGTERM to the launcher (which
        stops the processes it started) and to the ingesters this object
        restarted itself, then SIGKILL to whatever is left."""
        pids = os.path.join(self.data, "pids")
        left = set(self._children)
        for f in os.listdir(pids) if os.path.isdir(pids) else []:
            try:
                left.add(int(open(os.path.join(pids, f)).read()))
            except ValueError:
                pass
        for p in self._children.values():
            if p.poll() is None:
                p.terminate()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for p in self._children.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self._children.values():
            p.wait()
        self.log.close()

    def finish(self, checks):
        """Checks the components' logs for sanitizer reports, stops the
        cluster, and prints the logs' tails when a check failed."""
        bad = self.sanitizer_reports()
        checks.check(not bad, "sanitizer reports: " + "; ".join(bad[:3]))
        self.stop()
        if checks.bad or sys.exc_info()[0] is not None:  # a failed check, or an exception on its way out
            print(self.logs()[-6000:])
            print(f"cluster data kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)  # ingesters preallocate ~75 MB of WAL each

    def sanitizer_reports(self):
        """Lines from the component logs that a sanitizer wrote."""
        bad = []
        d = os.path.join(self.data, "logs")
        for f in os.listdir(d) if os.path.isdir(d) else []:
            for line in open(os.path.join(d, f), errors="replace"):
                if "ERROR: AddressSanitizer" in line or "runtime error:" in line or "LeakSanitizer" in line:
                    bad.append(f + ": " + line.strip())
        return bad


def http(method, url, body=None, headers=None, timeout=60):
    """Returns (status, body bytes, headers dict)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def connect_json(base, method, msg, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    status, body, _ = http("POST", f"{base}/querier.v1.QuerierService/{method}", json.dumps(msg).encode(), h)
    try:
        return status, json.loads(body or b"{}")
    except ValueError:
        return status, {"raw": body.decode(errors="replace")}


# ---- pprof bytes ----

def varint(b, i):
    x = shift = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return x, i


def enc_varint(x):
    out = bytearray()
    while x >= 0x80:
        out.append((x & 0x7F) | 0x80)
        x >>= 7
    out.append(x)
    return bytes(out)


def labelled_pprof(samples, ts_ns):
    """A hand-encoded CPU pprof (cpu/nanoseconds, period 10 ms) at ts_ns:
    one sample per (leaf function, value, [(label key, value), ...]), its
    stack main → leaf; function and location i+1 for the i-th distinct name
    (main first, then the leaves as they come)."""
    def fv(f, v):
        return enc_varint(f << 3) + enc_varint(v)

    def fb(f, b):
        return enc_varint(f << 3 | 2) + enc_varint(len(b)) + b
    strings = [""]

    def s(x):
        if x not in strings:
            strings.append(x)
        return strings.index(x)
    funcs = {"main": 1}
    for leaf, _, _ in samples:
        funcs.setdefault(leaf, len(funcs) + 1)
    out = fb(1, fv(1, s("cpu")) + fv(2, s("nanoseconds")))
    for leaf, v, labels in samples:
        smp = fb(1, enc_varint(funcs[leaf]) + enc_varint(funcs["main"])) + fb(2, enc_varint(v))
        for k, x in labels:
            smp += fb(3, fv(1, s(k)) + fv(2, s(x)))
        out += fb(2, smp)
    for name, i in funcs.items():
        out += fb(4, fv(1, i) + fb(4, fv(1, i) + fv(2, 10 * i)))
        out += fb(5, fv(1, i) + fv(2, s(name)))
    out += fv(9, ts_ns) + fb(11, fv(1, s("cpu")) + fv(2, s("nanoseconds"))) + fv(12, 10_000_000)
    return b"".join(fb(6, x.encode()) for x in strings) + out


def retime(data, ts_ns):
    """The pprof (gzip or plain) with time_nanos set to ts_ns, gzipped."""
    raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    out = bytearray()
    i = 0
    while i < len(raw):
        key, j = varint(raw, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            _, k = varint(raw, j)
        elif wt == 1:
            k = j + 8
        elif wt == 2:
            n, k = varint(raw, j)
            k += n
        elif wt == 5:
            k = j + 4
        else:
            raise ValueError("bad wire type")
        if field != 9:
            out += raw[i:k]
        i = k
    out += enc_varint(9 << 3) + enc_varint(ts_ns)
    return gzip.compress(bytes(out), 1)


def multipart(parts, boundary="hotpathtestboundary0123456789"):
    """(body, content type) for [(name, filename, bytes), …]."""
    out = bytearray()
    for name, filename, data in parts:
        out += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n".encode()
        out += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), "multipart/form-data; boundary=" + boundary


# ---- reference figures from go tool pprof ----

UNSYMBOLIZED = re.compile(r"^(<unknown>|\[.*\]|0x[0-9a-fA-F]+)$")


def ref_types(profile):
    """[(index, type, unit, period_type, period_unit)] from summary.json."""
    s = json.load(open(profile + ".ref/summary.json"))
    pt = s.get("period_type") or {}
    return [(i, t["type"], t["unit"], pt.get("type", ""), pt.get("unit", "")) for i, t in enumerate(s["sample_types"])]


def ref_top(path):
    """(total, {function: flat}) from a `go tool pprof -top` output."""
    total, flat = None, {}
    for line in open(path):
        m = re.match(r"Showing nodes accounting for .*?of (\d+)\D*total", line)
        if m:
            total = int(m.group(1))
        m = re.match(r"\s*(\d+)[a-zA-Z]*\s+[\d.]+%\s+[\d.]+%\s+\d+[a-zA-Z]*\s+[\d.]+%\s+(.*)$", line)
        if m:
            fn = re.sub(r" \((partial-)?inline\)$", "", m.group(2).strip())
            flat[fn] = flat.get(fn, 0) + int(m.group(1))
    if total is None:
        total = sum(flat.values())
    return total, flat


def flame_self(render):
    """(numTicks, {name: sum of self}) from flamebearer JSON."""
    fb = render.get("flamebearer", render)
    names, selfs = fb["names"], {}
    for level in fb["levels"]:
        for i in range(0, len(level), 4):
            n = names[level[i + 3]]
            selfs[n] = selfs.get(n, 0) + level[i + 2]
    return fb["numTicks"], selfs


def compare_render(render, top_file, mult=1):
    """None when the flame graph matches the reference, else why not."""
    total, flat = ref_top(top_file)
    ticks, selfs = flame_self(render)
    bad = []
    if ticks != total * mult:
        bad.append(f"numTicks {ticks} != {total * mult}")
    for fn, v in flat.items():
        if UNSYMBOLIZED.match(fn):
            continue
        if selfs.get(fn, 0) != v * mult:
            bad.append(f"{fn}: self {selfs.get(fn, 0)} != {v * mult}")
    return "; ".join(bad[:5]) or None


def type_id(qry, st, su, pt, pu, headers=None):
    now = int(time.time() * 1000)
    status, resp = connect_json(qry, "ProfileTypes", {"start": str(now - 7200000), "end": str(now + 300000)}, headers)
    for t in resp.get("profileTypes", []):
        if [t.get("sampleType", ""), t.get("sampleUnit", ""), t.get("periodType", ""), t.get("periodUnit", "")] == [st, su, pt, pu]:
            return t["ID"]
    return None


def render(qry, tid, selector, headers=None, extra="", frm="now-2h", until="now+5m"):
    q = urllib.parse.urlencode({"query": tid + selector, "from": frm, "until": until, "maxNodes": "1000000"})
    status, body, _ = http("GET", f"{qry}/pyroscope/render?{q}{extra}", headers=headers)
    return status, (json.loads(body) if status == 200 else body.decode(errors="replace"))


def go_env(tmp):
    env = dict(os.environ)
    env.update({"GOPATH": "/usr/share/gocode", "GO111MODULE": "off", "GOCACHE": os.path.join(tmp, "gocache"),
                "GOFLAGS": "-mod=mod"})
    env.pop("GOFLAGS")
    return env


class S3rver:
    """A real S3-compatible server (s3rver, installed with npm on first use
    by tests/tools/s3rver/install) on 127.0.0.1 with a bucket "hotpath".
    stop() and start() keep the port and the stored objects, so a test can
    take the object store away and bring it back."""

    SECRET = "hp-test-secret-7f3a9c"  # s3rver checks no signature; tests look for leaks

    def __init__(self, directory):
        tools = os.path.join(SRC, "tests", "tools", "s3rver")
        out = subprocess.run([os.path.join(tools, "install")], capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError("cannot install s3rver: " + out.stderr[-2000:])
        self.module = out.stdout.strip().splitlines()[-1]
        self.script = os.path.join(tools, "serve.js")
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.port = 0
        self.proc = None
        self.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(["node", "--openssl-legacy-provider", self.script, self.module, self.dir,
                                      str(self.port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     start_new_session=True)
        line = b""
        deadline = time.time() + 30
        while time.time() < deadline and not line.endswith(b"\n"):
            line += self.proc.stdout.read(1) or b""
            if self.proc.poll() is not None:
                break
        if not line.startswith(b"PORT "):
            self.stop()
            raise RuntimeError("s3rver did not start")
        self.port = int(line.split()[1])

    def stop(self):
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc = None

    def keys(self, prefix=""):
        """Every key in the bucket under prefix (an unsigned ListObjectsV2,
        which s3rver accepts)."""
        keys, token = [], None
        while True:
            q = {"list-type": "2", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            status, body, _ = http("GET", f"{self.url}/hotpath?" + urllib.parse.urlencode(q), timeout=10)
            if status != 200:
                raise RuntimeError(f"s3rver list: {status} {body[:200]!r}")
            text = body.decode()
            keys += re.findall(r"<Key>([^<]*)</Key>", text)
            m = re.search(r"<NextContinuationToken>([^<]*)</NextContinuationToken>", text)
            if not m:
                return keys
            token = m.group(1)

    def flags(self):
        return ["-storage.backend=s3", f"-storage.s3.endpoint={self.url}", "-storage.s3.bucket-name=hotpath",
                "-storage.s3.access-key-id=S3RVER", f"-storage.s3.secret-access-key={self.SECRET}",
                "-storage.s3.force-path-style=true", "-storage.s3.insecure=true"]


def free_port():
    """A TCP port on 127.0.0.1 that is free and held for this process (see
    free_port_base)."""
    return free_port_base(1)


def metric(url, name):
    """The sum of a Prometheus metric's samples at url/metrics (0 if absent)."""
    status, body, _ = http("GET", url + "/metrics", timeout=10)
    total = 0.0
    for line in body.decode().splitlines() if status == 200 else []:
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total
