#!/usr/bin/env bash
# HTTPS benchmark, one run, side by side: the `https` unikernel and
# Debian's lighttpd + mod_openssl in a minimal Linux VM (bench/linux-vm/
# with SERVER=lighttpd-tls: TLS 1.3 only, a self-signed ECDSA P-256
# certificate like the unikernel's, the same page), in the same QEMU
# command line (the runner's, printed with --print-command; bench/net.sh's
# configuration: microvm, TCG, 1 vCPU, same -m, virtio-net on a tap device
# in a network namespace this script creates), clients inside the namespace:
#   - the negotiated protocol, checked with openssl s_client and curl,
#   - full TLS 1.3 handshakes/s (`openssl s_time -new`, C clients at once),
#   - requests/s with p50/p99 on kept-alive connections (`wrk` https),
#   - the stripped image size, and where its bytes go (TLS vs `http`),
#   - the smallest -m at which the unikernel still serves.
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
LINUX=$T/linux-vm/lighttpd-tls
SERVER=lighttpd-tls IOPING=0 bench/linux-vm/build.sh "$LINUX" >&2

tap_namespace uktls
URL=https://10.10.0.2/
read -r -a QEMU <<<"$("$RUNNER" "$IMAGE" --print-command --accel tcg --memory "$MEM" --tap tap0)"
now_ms() { date +%s%3N; }

# Starts a guest (the command in the arguments) in the namespace and waits
# for an HTTPS response; prints the milliseconds that took. Fails when the
# guest exits first or none comes in 60 s.
start() {
    local t0
    t0=$(now_ms)
    in_ns "$@" >"$WORK/console" 2>&1 &
    local guest=$!
    for _ in $(seq 1 600); do
        if in_ns curl -sk -o /dev/null --max-time 1 "$URL"; then echo $(( $(now_ms) - t0 )); return 0; fi
        kill -0 "$guest" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
# UK: the command that runs the unikernel with memory $1.
unikernel() { UK=("$RUNNER" "$IMAGE" --accel tcg --memory "$1" --tap tap0 ip=10.10.0.2/24 gw=10.10.0.1); }

# What was negotiated, as openssl s_client and curl see it, the page's
# size, and whether a TLS 1.2-only client gets in (both should refuse it).
tls_check() {
    local s c n t
    s=$(in_ns openssl s_client -connect 10.10.0.2:443 -brief </dev/null 2>&1 \
        | awk -F': ' '/^Protocol version/ {p=$2} /^Ciphersuite/ {c=$2} /^Signature type/ {g=$2}
                      /^Server Temp Key/ {k=$2} END {print p ", " c ", " k ", " g}')
    c=$(in_ns curl -sk -v -o /dev/null "$URL" 2>&1 | sed -n 's/^\* SSL connection using \([^ ]*\) .*/\1/p')
    n=$(in_ns curl -sk -o /dev/null -w '%{size_download}' "$URL")
    t=$(in_ns openssl s_client -connect 10.10.0.2:443 -tls1_2 </dev/null >/dev/null 2>&1 && echo accepted || echo refused)
    echo "s_client: $s; curl: ${c:-?}; page $n B; TLS 1.2 client $t"
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


declare -A R
measure() {
    local name=$1; shift
    R[$name,boot]=$(start "$@") || { cat "$WORK/console" >&2; die "no HTTPS response from $name"; }
    R[$name,tls]=$(tls_check)
    # Refuse to compare anything but TLS 1.3 on both sides.
    case "${R[$name,tls]}" in
        "s_client: TLSv1.3, "*"; curl: TLSv1.3; "*"; TLS 1.2 client refused") ;;
        *) stop; die "$name did not negotiate TLS 1.3 only: ${R[$name,tls]}" ;;
    esac
    for c in $CONNS; do R[$name,hs,$c]=$(handshakes "$c"); R[$name,rq,$c]=$(wrk_figures "$URL" "$c"); done
    stop
}

echo "unikernel: $IMAGE, Linux VM: $LINUX (lighttpd-tls), -m $MEM, TCG, ${DURATION}s per run" >&2
unikernel "$MEM"
measure unikernel "${UK[@]}"
mapfile -t LQEMU < <(linux_qemu "$LINUX" "bench_ip=10.10.0.2/24 bench_gw=10.10.0.1" "${QEMU[@]}")
measure linux "${LQEMU[@]}"

# Smallest guest memory at which the unikernel still serves.
MIN=none
for m in 2M 2560K 3M 4M 6M 8M 16M; do
    unikernel "$m"
    if start "${UK[@]}" >/dev/null; then MIN=$m; stop; break; fi
    stop
done

row() { printf '%-32s %14s %14s %8s\n' "$@"; }
echo
echo "unikernel: ${R[unikernel,tls]}"
echo "linux:     ${R[linux,tls]}"
row "(TCG, -m $MEM)" unikernel "linux lighttpd" ratio
row "boot to first response, ms" "${R[unikernel,boot]}" "${R[linux,boot]}" "$(ratio "${R[unikernel,boot]}" "${R[linux,boot]}")"
for c in $CONNS; do
    read -r ur up50 up99 <<<"${R[unikernel,rq,$c]}"
    read -r lr lp50 lp99 <<<"${R[linux,rq,$c]}"
    row "handshakes/s, $c conns" "${R[unikernel,hs,$c]}" "${R[linux,hs,$c]}" "$(ratio "${R[unikernel,hs,$c]}" "${R[linux,hs,$c]}")"
    row "requests/s, $c conns" "$ur" "$lr" "$(ratio "$ur" "$lr")"
    row "  p50 ms" "$up50" "$lp50" "$(ratio "$up50" "$lp50")"
    row "  p99 ms" "$up99" "$lp99" "$(ratio "$up99" "$lp99")"
done
S_HTTPS=$(stat -c %s "$T/x86_64-unknown-none/stripped/examples/https")
S_HTTP=$(stat -c %s "$T/x86_64-unknown-none/stripped/examples/http")
row "image bytes (stripped; kernel)" "$S_HTTPS" "$(stat -c %s "$LINUX/vmlinuz")" ""
row "  initramfs bytes" "" "$(stat -c %s "$LINUX/initrd.cpio.gz")" ""
row "http image, stripped bytes" "$S_HTTP" "" ""
row "smallest -m that serves" "$MIN" "" ""

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
