#!/bin/sh
# Records Busy.java with the JDK's own Flight Recorder and checks hotpath's
# JFR converter against the JDK's `jfr` tool: the CPU profile holds exactly
# the jdk.ExecutionSample events `jfr summary` counts, its stacks and counts
# are those of `jfr print --json` (frames named "<class>.<method>" with
# Pyroscope's merging of generated names applied), and they name
# Busy.spinA and Busy.spinB; the allocation-sample profile counts the
# jdk.ObjectAllocationSample events and sums their weights.
#
# Usage: tests/tools/jfr/check.sh [build dir]  (default: build; needs
# unit_jfr built there, a JDK 11+ with java, javac and jfr on PATH, and
# python3). Not part of ctest: the recording takes about 7 s and its
# samples differ from run to run, so only the comparison is deterministic.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=${1:-$root/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

javac -d "$tmp" "$here/Busy.java"
java -XX:StartFlightRecording=duration=5s,filename="$tmp/busy.jfr",settings=profile \
    -cp "$tmp" Busy 6 >/dev/null 2>&1
samples=$(jfr summary "$tmp/busy.jfr" | awk '$1 == "jdk.ExecutionSample" { print $2 }')

# The JDK's view: each sample's frames root first, counted.
jfr print --json --stack-depth 4096 --events jdk.ExecutionSample,jdk.ObjectAllocationSample "$tmp/busy.jfr" | python3 -c '
import collections, json, re, sys
# grafana/jfr-parser symbols.go, applied to every symbol.
rules = [
    (r"^(jdk/internal/reflect/GeneratedMethodAccessor)(\d+)$", r"\1_"),
    (r"^(.+\$\$Lambda)(\$?\d*[./](0x)?[\da-f]+|\d+)$", r"\1_"),
    (r"^(\.?/tmp/)?(libzstd-jni-\d+\.\d+\.\d+-)(\d+)(\.so)( \(deleted\))?$", "libzstd-jni-_.so"),
    (r"^(\.?/tmp/)?(lib)?(amazonCorrettoCryptoProvider)(NativeLibraries\.)?([0-9a-f]{16})"
     r"(/libcrypto|/libamazonCorrettoCryptoProvider)?(\.so)( \(deleted\))?$", "libamazonCorrettoCryptoProvider_.so"),
    (r"^(\.?/tmp/)?(libasyncProfiler)-(linux-arm64|linux-musl-x64|linux-x64|macos)-"
     r"(17b9a1d8156277a98ccc871afa9a8f69215f92)(\.so)( \(deleted\))?$", "libasyncProfiler-_.so"),
]
def merge(s):
    for pat, rep in rules:
        s = re.sub(pat, rep, s, flags=re.ASCII)
    return s
count = collections.Counter()
events = json.load(sys.stdin)["recording"]["events"]
allocs = [e for e in events if e["type"] == "jdk.ObjectAllocationSample" and e["values"]["stackTrace"]]
print("#alloc_samples", len(allocs), sum(e["values"]["weight"] for e in allocs))
for ev in events:
    if ev["type"] != "jdk.ExecutionSample":
        continue
    st = ev["values"]["stackTrace"]
    if st is None:
        continue
    frames = [merge(f["method"]["type"]["name"]) + "." + merge(f["method"]["name"]) for f in st["frames"]]
    count[";".join(reversed(frames))] += 1
for s, n in sorted(count.items()):
    print(s, n)
' | sort >"$tmp/want"

HP_TESTDATA="$root/../shared/testdata" HP_JFR_FUZZ_ITERS=0 HP_JFR_RECORDING="$tmp/busy.jfr" \
    HP_JFR_EXPECT=Busy.spinA,Busy.spinB HP_JFR_EXPECT_SAMPLES="$samples" \
    "$build/bin/unit_jfr" >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
sed -n 's/^stack //p; s/^alloc_samples/#alloc_samples/p' "$tmp/out" | sort >"$tmp/got"

if ! diff "$tmp/want" "$tmp/got" >"$tmp/diff"; then
    echo "FAIL: the converted CPU stacks differ from jfr print's:" >&2
    head -20 "$tmp/diff" >&2
    exit 1
fi
echo "ok: $samples execution samples, $(grep -vc '^#' "$tmp/got") distinct stacks equal jfr print --json's;" \
    "allocation samples (count, bytes): $(sed -n 's/^#alloc_samples //p' "$tmp/got")"
grep '^leaf ' "$tmp/out"
