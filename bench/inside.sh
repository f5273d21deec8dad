#!/usr/bin/env bash
# What each "seeing inside" tool costs, off and on, one run, side by side
# with the same image without it: image sizes, HTTP requests/s under the
# packet capture and the tracer, the executor's spawn and wake-up under the
# tracer, and a CPU-bound run under the profiler. TCG, user networking on
# loopback; traced images are built in target/trace, so the usual builds
# stay as they are.
#
# Usage: bench/inside.sh
#   DURATION=5   seconds per wrk run
#   RUNS=3       runs per timed figure (median)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
. bench/common.sh

for tool in wrk curl qemu-system-x86_64; do
    command -v "$tool" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk curl qemu-system-x86 >&2
done

echo "building the images..." >&2
cargo build --quiet --release -p unikernel-runner --target "$HOST"
cargo build --quiet --release --example http --example capture --example capture_fast --example bench_runtime --example bench_channel
# Debug: about a second of work under TCG, enough samples at 100 Hz.
cargo build --quiet --example hotspot
cargo build --quiet --profile stripped --example hello --example http --example capture
CARGO_TARGET_DIR=target/trace cargo build --quiet --release --features trace --example http --example bench_runtime
CARGO_TARGET_DIR=target/trace cargo build --quiet --profile stripped --features trace --example hello --example http
PLAIN=target/x86_64-unknown-none
TRACED=target/trace/x86_64-unknown-none
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

size() { stat -c %s "$1"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "## Image size, stripped (bytes)"
echo "| image | without | with | added |"
echo "|---|---:|---:|---:|"
for e in hello http; do
    a=$(size $PLAIN/stripped/examples/$e) b=$(size $TRACED/stripped/examples/$e)
    echo "| $e, --features trace | $a | $b | $((b - a)) |"
done
a=$(size $PLAIN/stripped/examples/http) b=$(size $PLAIN/stripped/examples/capture)
echo "| http → capture (pcap named; a smaller server) | $a | $b | $((b - a)) |"

# req_per_s IMAGE RUNNER-ARGS...: wrk's requests/s, one connection, kept alive.
req_per_s() {
    local image=$1 port
    shift
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$RUNNER" "$image" --accel tcg --forward "tcp:$port:80" "$@" >"$WORK/console" 2>&1 &
    local pid=$!
    for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
    wrk -t1 -c1 -d"${DURATION}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ { printf "%d", $2 }'
    kill -INT $pid
    wait $pid || true
}

echo
echo "## HTTP requests/s (wrk -t1 -c1, ${DURATION}s, median of $RUNS interleaved runs)"
plain=() pcap=() fast=() trace=()
for _ in $(seq "$RUNS"); do
    plain+=("$(req_per_s $PLAIN/release/examples/http)")
    pcap+=("$(req_per_s $PLAIN/release/examples/capture --pcap "$WORK/c.pcap")")
    fast+=("$(req_per_s $PLAIN/release/examples/capture_fast --pcap "$WORK/f.pcap")")
    trace+=("$(req_per_s $TRACED/release/examples/http --trace "$WORK/t.json")")
done
p=$(printf '%s\n' "${plain[@]}" | median)
c=$(printf '%s\n' "${pcap[@]}" | median)
f=$(printf '%s\n' "${fast[@]}" | median)
t=$(printf '%s\n' "${trace[@]}" | median)
echo "| image | req/s | ratio to http |"
echo "|---|---:|---:|"
echo "| http | $p | 1.00 |"
echo "| capture, --pcap (channel on the serial console) | $c | $(ratio "$c" "$p") |"
echo "| capture_fast, --pcap (channel on its virtio console) | $f | $(ratio "$f" "$p") |"
echo "| http --features trace, --trace | $t | $(ratio "$t" "$p") |"

echo
echo "## Host channel throughput (bench_channel, release, 4 MiB each way)"
"$RUNNER" $PLAIN/release/examples/bench_channel --accel tcg 2>/dev/null | grep '^bench_channel:'

echo
echo "## Executor (bench_runtime, release, median of $RUNS interleaved runs)"
for _ in $(seq "$RUNS"); do
    "$RUNNER" $PLAIN/release/examples/bench_runtime --accel tcg 2>/dev/null | grep '^bench:' >>"$WORK/plain"
    "$RUNNER" $TRACED/release/examples/bench_runtime --accel tcg --trace "$WORK/b.json" 2>/dev/null | grep '^bench:' >>"$WORK/traced"
done
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" "$2" | median; }
echo "| figure | without | with --features trace | ratio |"
echo "|---|---:|---:|---:|"
for f in spawn_join_ns wake_median_us wake_p99_us; do
    a=$(field $f "$WORK/plain") b=$(field $f "$WORK/traced")
    echo "| $f | $a | $b | $(ratio "$b" "$a") |"
done

echo
echo "## Profiler: hotspot (debug), start → exit, median of $RUNS interleaved runs"
for _ in $(seq "$RUNS"); do
    for hz in off 100 1000; do
        args=()
        [ $hz = off ] || args=(--profile "$WORK/p.svg" --profile-hz $hz)
        s=$(date +%s%N)
        "$RUNNER" $PLAIN/debug/examples/hotspot --accel tcg "${args[@]}" >/dev/null 2>&1
        echo $(( ($(date +%s%N) - s) / 1000000 )) >>"$WORK/profile-$hz"
    done
done
off=$(median <"$WORK/profile-off")
echo "| sampling | ms | ratio to off |"
echo "|---|---:|---:|"
for hz in off 100 1000; do
    m=$(median <"$WORK/profile-$hz")
    echo "| $hz | $m | $(ratio "$m" "$off") |"
done
