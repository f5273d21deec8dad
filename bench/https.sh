#!/usr/bin/env bash
# HTTPS benchmark of the `https` unikernel, in bench/net.sh's QEMU
# configuration (microvm, TCG, 1 vCPU, virtio-net on a tap device in a
# network namespace this script creates), clients inside the namespace:
#   - full TLS 1.3 handshakes/s (`openssl s_time -new`, C clients at once),
#   - requests/s with p50/p99 on kept-alive connections (`wrk` https),
#   - the stripped image size, and where its bytes go (TLS vs `http`),
#   - the smallest -m at which it still serves.
# The unikernel alone: no Linux VM side yet (its initramfs has no
# lighttpd-mod-openssl).
#
# Usage (as root): bench/https.sh
#   MEM=128M        guest memory
#   DURATION=10     seconds per run
#   CONNS="1 8 64"  concurrent clients
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "bench/https.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root: it creates a network namespace and a tap device"
MEM=${MEM:-128M}
DURATION=${DURATION:-10}
CONNS=${CONNS:-"1 8 64"}
. bench/common.sh
T=${CARGO_TARGET_DIR:-target}
RUNNER=$T/$HOST/release/unikernel-runner

for tool in wrk curl openssl ip qemu-system-x86_64; do
    command -v "$tool" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk curl openssl iproute2 qemu-system-x86 >&2
done

echo "building the images..." >&2
cargo build --quiet --release --example https --example http
cargo build --quiet --profile stripped --example https --example http
cargo build --quiet --release -p unikernel-runner --target "$HOST"
IMAGE=$T/x86_64-unknown-none/release/examples/https

tap_namespace uktls
URL=https://10.10.0.2/

# Starts the guest with memory $1 and waits for an HTTPS response; fails
# when the guest exits first or none comes in 60 s.
start() {
    in_ns "$RUNNER" "$IMAGE" --accel tcg --memory "$1" --tap tap0 ip=10.10.0.2/24 gw=10.10.0.1 >"$WORK/console" 2>&1 &
    local guest=$!
    for _ in $(seq 1 600); do
        in_ns curl -sk -o /dev/null --max-time 1 "$URL" && return 0
        kill -0 "$guest" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
stop() {
    for pid in $(ip netns pids "$NS"); do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
}

# Full handshakes/s with $1 clients: each client connects, handshakes and
# disconnects in a loop; the sum of connections over the wall-clock time.
handshakes() {
    local c=$1 i
    for i in $(seq 1 "$c"); do
        in_ns openssl s_time -connect 10.10.0.2:443 -new -time "$DURATION" >"$WORK/s_time.$i" 2>&1 &
    done
    wait
    cat "$WORK"/s_time.* | awk '/connections in [0-9.]+s;/ {n += $1} END {printf "%.1f", n / '"$DURATION"'}'
    rm -f "$WORK"/s_time.*
}

# Kept-alive requests/s, p50 and p99 in ms, with $1 connections.
requests() {
    in_ns wrk -t1 -c"$1" -d"${DURATION}s" --latency "$URL" >"$WORK/wrk" 2>&1 || { cat "$WORK/wrk" >&2; die "wrk failed"; }
    local rps p50 p99
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk")
    p50=$(awk '$1=="50%" {print $2}' "$WORK/wrk")
    p99=$(awk '$1=="99%" {print $2}' "$WORK/wrk")
    echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.2f", n }'; }

echo "unikernel: $IMAGE, -m $MEM, TCG, ${DURATION}s per run" >&2
start "$MEM" || { cat "$WORK/console" >&2; die "no HTTPS response from the guest"; }
declare -A HS RQ
for c in $CONNS; do HS[$c]=$(handshakes "$c"); RQ[$c]=$(requests "$c"); done
stop

# Smallest guest memory at which it still serves.
MIN=none
for m in 2M 2560K 3M 4M 6M 8M 16M; do
    if start "$m"; then MIN=$m; stop; break; fi
    stop
done

printf '\n%-36s %12s %12s %12s\n' "https unikernel (TCG)" "handshakes/s" "requests/s" "p50/p99 ms"
for c in $CONNS; do
    read -r r p50 p99 <<<"${RQ[$c]}"
    printf '%-36s %12s %12s %12s\n' "$c conns" "${HS[$c]}" "$r" "$p50/$p99"
done
S_HTTPS=$(stat -c %s "$T/x86_64-unknown-none/stripped/examples/https")
S_HTTP=$(stat -c %s "$T/x86_64-unknown-none/stripped/examples/http")
printf '%-36s %12s\n' "https image, stripped bytes" "$S_HTTPS"
printf '%-36s %12s\n' "http image, stripped bytes" "$S_HTTP"
printf '%-36s %12s\n' "smallest -m that serves" "$MIN"

# Where the bytes go: code and data by crate (sizes of the release image's
# symbols, demangled, grouped by their first path segment).
echo
echo "https release image, bytes by crate (symbols):"
nm -S --size-sort -C -t d "$IMAGE" | awk '
    NF >= 4 { size = $2 + 0; name = $4
              sub(/^</, "", name); sub(/^_</, "", name)
              split(name, p, "::"); krate = p[1]; sub(/ as .*/, "", krate)
              total[krate] += size; all += size }
    END { for (k in total) printf "%10d  %s\n", total[k], k; printf "%10d  (all symbols)\n", all }' \
    | sort -rn | head -20
