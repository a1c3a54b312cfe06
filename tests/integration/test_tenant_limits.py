#!/usr/bin/env python3
"""Per-tenant limits from the runtime config file, applied while the
cluster runs: GET /api/v1/tenant_limits shows each tenant's effective
limits; the ingestion rate (a token bucket per tenant) answers 429 with the
limit in the message and counts reason="rate_limited"; profiles outside the
ingestion window get 400 with the window, unless the tenant's override
widens it; a tenant's own label limit applies to it alone (in the
ingesters too); the active-series limit answers 429; and editing the file
changes the limits without a restart. Tenants never see each other's
data."""
import json
import os
import tempfile
import time
import urllib.parse

from harness import CORPUS, Checks, Cluster, http, metric, multipart, render, retime

c = Checks()
F = os.path.join(CORPUS, "go", "go_mix.cpu.pb.gz")
RAW = open(F, "rb").read()
TID = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
fd, RUNTIME = tempfile.mkstemp(prefix="hp-runtime-", suffix=".yaml")
os.close(fd)


def write_overrides(text):
    tmp = RUNTIME + ".tmp"
    open(tmp, "w").write(text)
    os.replace(tmp, RUNTIME)


write_overrides("""overrides:
  slow:
    ingestion_rate_mb: 0.05
    ingestion_burst_size_mb: 0.1
  strict:
    max_label_names_per_series: 4
  history:
    reject_older_than: 3h
  roomy:
    max_label_names_per_series: 40
  few:
    max_global_series_per_tenant: 3
    reject_older_than: 3h
  narrow:
    max_query_length: 1h
    max_flamegraph_nodes_default: 3
  tiny:
    ingestion_body_limit_bytes: 1000
""")
cl = Cluster(ingesters=1, flags=["-auth.multitenancy-enabled=true", f"-runtime-config.file={RUNTIME}",
                                 "-distributor.ingestion-rate-limit-mb=4",  # the default; the launcher sets 0
                                 "-runtime-config.reload-period=200ms"])


def push(tenant, svc, ts_ns=None, labels=""):
    body, ct = multipart([("profile", "p.pprof", retime(RAW, ts_ns or time.time_ns()))])
    q = urllib.parse.urlencode({"name": svc + "{" + labels + "}"})
    return http("POST", f"{cl.dist}/ingest?{q}", body, {"Content-Type": ct, "X-Scope-OrgID": tenant})


def limits(tenant):
    st, body, _ = http("GET", f"{cl.dist}/api/v1/tenant_limits", headers={"X-Scope-OrgID": tenant})
    return st, (json.loads(body) if st == 200 else body)


def wait_for(what, cond, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


try:
    st, lim = limits("anyone")
    c.check(st == 200 and lim.get("ingestion_rate_mb") == 4 and lim.get("reject_older_than") == "1h",
            f"tenant_limits of a tenant without overrides: the defaults: {st} {lim}")
    st, lim = limits("slow")
    c.check(st == 200 and lim.get("ingestion_rate_mb") == 0.05 and lim.get("ingestion_burst_size_mb") == 0.1
            and lim.get("max_label_names_per_series") == 30,
            f"tenant_limits of 'slow': its overrides over the defaults: {st} {lim}")
    st, _ = limits("")
    c.check(http("GET", f"{cl.dist}/api/v1/tenant_limits")[0] == 401, "tenant_limits without a tenant: 401")

    # The rate: 100 KB of burst, 50 KB/s; a go_mix profile is ~37 KB decompressed.
    # Pushes until the first refusal (a slow machine refills the bucket
    # between pushes, so the refusal's place is not fixed; it must come).
    codes, refusal = [], b""
    for _ in range(20):
        st, body, _ = push("slow", "rate")
        codes.append(st)
        if st == 429:
            refusal = body
            break
    c.check(codes[:2] == [200, 200] and 429 in codes, f"'slow' is rate limited after its burst: {codes}")
    c.check(b"ingestion_rate_mb" in refusal, f"the 429 names the limit: {refusal[:200]!r}")
    dropped = metric(cl.dist, 'hotpath_discarded_profiles_total{reason="rate_limited",tenant="slow"}')
    c.check(dropped >= 1, f"refusals counted as rate_limited: {dropped}")
    c.check(all(push("fast", "rate")[0] == 200 for _ in range(6)), "another tenant is not slowed down")
    time.sleep(1.5)
    c.check(push("slow", "rate")[0] == 200, "'slow' may push again once its bucket refilled")

    # The ingestion window: 1 h back and 10 min ahead by default.
    st, body, _ = push("anyone", "window", time.time_ns() - 2 * 3600 * 10**9)
    c.check(st == 400 and b"ingestion window" in body, f"a profile 2 h old: {st} {body[:200]!r}")
    st, body, _ = push("anyone", "window", time.time_ns() + 3600 * 10**9)
    c.check(st == 400 and b"ingestion window" in body, f"a profile 1 h ahead: {st} {body[:200]!r}")
    st, body, _ = push("history", "window", time.time_ns() - 2 * 3600 * 10**9)
    c.check(st == 200, f"'history' has a 3 h window: {st} {body[:200]!r}")
    c.check(metric(cl.dist, 'hotpath_discarded_profiles_total{reason="not_in_ingestion_window",tenant="anyone"}') == 2,
            "refusals counted as not_in_ingestion_window")

    # A tenant's own label limit (service_name, __name__, pyroscope_spy + these)
    many = "a=1,b=2"
    st, body, _ = push("strict", "labels", labels=many)
    c.check(st == 422 and b"label" in body, f"'strict' (4 labels at most) refuses 5: {st} {body[:200]!r}")
    c.check(metric(cl.dist, 'hotpath_discarded_profiles_total{reason="max_label_names_per_series",tenant="strict"}')
            == 1, "counted under Pyroscope's reason max_label_names_per_series")
    c.check(push("anyone", "labels", labels=many)[0] == 200, "the default (30) takes them")

    # A raised limit holds end to end: the ingesters apply the tenant's limits too.
    wide = ",".join(f"l{i}={i}" for i in range(30))
    st, body, _ = push("roomy", "wide", labels=wide)
    c.check(st == 200, f"'roomy' (40 labels) stores 33: {st} {body[:200]!r}")
    st, r = render(cl.qry, TID, '{service_name="wide",l29="29"}', headers={"X-Scope-OrgID": "roomy"})
    c.check(st == 200 and r["flamebearer"]["numTicks"] > 0, f"and its series is queryable: {st}")
    c.check(push("anyone", "wide", labels=wide)[0] == 422, "the default (30) refuses them")

    # Active series: 3 for 'few' (1 ingester, RF 1); go_mix.cpu is 2 series per service.
    c.check(push("few", "s1")[0] == 200, "'few': the first service's 2 series fit")
    st, body, _ = push("few", "s2")
    c.check(st == 429 and b"series limit" in body, f"'few': 2 more would make 4 > 3: {st} {body[:200]!r}")
    c.check(push("few", "s1")[0] == 200, "'few': more profiles of existing series still fit")
    hour_ago = time.time_ns() - 3600 * 10**9  # always the previous 1 h head window
    st, body, _ = push("few", "s2", hour_ago)
    c.check(st == 429 and b"series limit" in body,
            f"'few': another time window's head does not reset the count: {st} {body[:200]!r}")
    c.check(push("few", "s1", hour_ago)[0] == 200, "'few': its active series fit in another window too")
    c.check(metric(cl.dist, 'hotpath_discarded_profiles_total{reason="series_limit",tenant="few"}') == 2,
            "the refusal is counted as series_limit")
    c.check(push("anyone", "s2")[0] == 200, "other tenants are not limited by it")

    # A tenant's own body limit, lower than the configuration's.
    st, body, _ = push("tiny", "body")
    c.check(st == 413 and b"ingestion_body_limit_bytes" in body, f"'tiny' (1000 bytes) refuses a profile: {st} {body[:200]!r}")
    c.check(metric(cl.dist, 'hotpath_discarded_profiles_total{reason="body_size_limit",tenant="tiny"}') == 1,
            "counted as body_size_limit")

    # Query limits are the tenant's too, in the querier.
    c.check(push("narrow", "q")[0] == 200 and push("anyone", "q")[0] == 200, "pushes for the query limits")
    now = int(time.time())
    st, r = render(cl.qry, TID, '{service_name="q"}', frm=str(now - 7200), until=str(now),
                   headers={"X-Scope-OrgID": "narrow"})
    c.check(st == 400 and "max_query_length" in str(r), f"'narrow' (1h) may not query 2h: {st} {str(r)[:200]}")
    st, r = render(cl.qry, TID, '{service_name="q"}', frm=str(now - 7200), until=str(now),
                   headers={"X-Scope-OrgID": "anyone"})
    c.check(st == 200, f"the default (no limit) may: {st}")
    def names_by_default(tenant):  # no maxNodes: the tenant's max_flamegraph_nodes_default
        q = urllib.parse.urlencode({"query": TID + '{service_name="q"}', "from": "now-30m", "until": "now+5m"})
        st, body, _ = http("GET", f"{cl.qry}/pyroscope/render?{q}", headers={"X-Scope-OrgID": tenant})
        return st, (json.loads(body)["flamebearer"]["names"] if st == 200 else body[:200])
    st, names = names_by_default("narrow")
    c.check(st == 200 and 0 < len(names) <= 5 and "other" in names,  # total, 3 nodes, other
            f"'narrow' gets 3 nodes and 'other' by default: {st} {names}")
    st, names = names_by_default("anyone")
    c.check(st == 200 and len(names) > 10, f"the default gives more: {st} {len(names)}")

    # Editing the file: the new limit applies without a restart.
    write_overrides("""overrides:
  strict:
    max_label_names_per_series: 10
""")
    ok = wait_for("the new overrides", lambda: limits("strict")[1].get("max_label_names_per_series") == 10)
    c.check(ok, f"tenant_limits shows the edited file: {limits('strict')}")
    # the ingesters read the file on their own timers: allow them a moment
    ok = wait_for("every process on the new limit", lambda: push("strict", "labels", labels=many)[0] == 200, 5)
    c.check(ok, "'strict' now takes 5 labels")
    c.check(limits("slow")[1].get("ingestion_rate_mb") == 4, "'slow', gone from the file, is back to the defaults")

    # A broken edit: the last good overrides stay.
    write_overrides("overrides:\n  strict:\n    max_label_names_per_series: many\n")
    ok = wait_for("a failed reload", lambda: metric(cl.dist, "hotpath_runtime_config_reload_failures_total") >= 1)
    c.check(ok and limits("strict")[1].get("max_label_names_per_series") == 10,
            "a broken file is counted and the last good overrides stay")

    # A file that disappears: counted once, the last good overrides stay.
    before = metric(cl.dist, "hotpath_runtime_config_reload_failures_total")
    os.unlink(RUNTIME)
    ok = wait_for("a missing file", lambda: metric(cl.dist, "hotpath_runtime_config_reload_failures_total") > before)
    time.sleep(1)
    after = metric(cl.dist, "hotpath_runtime_config_reload_failures_total")
    c.check(ok and after == before + 1 and limits("strict")[1].get("max_label_names_per_series") == 10,
            f"a missing file is counted once ({before} → {after}) and the last good overrides stay")
    write_overrides("overrides:\n  strict:\n    max_label_names_per_series: 11\n")
    ok = wait_for("the file back", lambda: limits("strict")[1].get("max_label_names_per_series") == 11)
    c.check(ok, "once the file is back, it is read again")

    # Tenants are isolated.
    st, r = render(cl.qry, TID, '{service_name="labels"}', headers={"X-Scope-OrgID": "strict"})
    mine = r["flamebearer"]["numTicks"] if st == 200 else None
    st, r = render(cl.qry, TID, '{service_name="labels"}', headers={"X-Scope-OrgID": "nobody"})
    theirs = r["flamebearer"]["numTicks"] if st == 200 else None
    c.check(mine and mine > 0 and theirs == 0, f"'nobody' sees none of 'strict''s profiles: {mine} vs {theirs}")
finally:
    cl.finish(c)
    os.unlink(RUNTIME)
c.done()
