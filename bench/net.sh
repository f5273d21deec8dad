#!/usr/bin/env bash
# Networking benchmark, one run, side by side: the `http` unikernel and a
# minimal Linux VM (Debian's kernel + busybox initramfs, bench/linux-vm/)
# in the same QEMU configuration (microvm, TCG, 1 vCPU, same -m, virtio-net
# on a tap device in a network namespace this script creates), driven by
# the same wrk from inside the namespace.
#
# Usage (as root): bench/net.sh
#   MEM=128M        guest memory for both (Linux needs about 83 MiB)
#   DURATION=10     seconds per wrk run
#   CONNS="1 8 64"  wrk connection counts
#   SERVER=lighttpd the Linux VM's server: lighttpd (keep-alive) or busybox
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "bench/net.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root: it creates a network namespace and a tap device"
MEM=${MEM:-128M}
DURATION=${DURATION:-10}
CONNS=${CONNS:-"1 8 64"}
SERVER=${SERVER:-lighttpd}
. bench/common.sh

for tool in wrk curl ip qemu-system-x86_64; do
    command -v "$tool" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk curl iproute2 qemu-system-x86 >&2
done

echo "building the images..." >&2
cargo build --quiet --release --example http
cargo build --quiet --profile stripped --example http
cargo build --quiet --release -p unikernel-runner --target "$HOST"
IMAGE=target/x86_64-unknown-none/release/examples/http
LINUX=target/linux-vm/$SERVER
SERVER=$SERVER bench/linux-vm/build.sh "$LINUX" >&2

tap_namespace ukbench

# The runner's own QEMU command for the unikernel; the Linux VM gets the
# same one with its kernel, initramfs and command line swapped in.
read -r -a QEMU <<<"$("$RUNNER" "$IMAGE" --print-command --accel tcg --memory "$MEM" --tap tap0)"
now_ms() { date +%s%3N; }

# Starts a guest in the namespace and waits for its first HTTP response;
# prints the milliseconds that took.
boot() {
    local start=$(now_ms)
    in_ns "$@" >"$WORK/console" 2>&1 &
    for _ in $(seq 1 6000); do
        # A short limit: a SYN sent before the guest is up is retried only after 1 s.
        if in_ns curl -s -o /dev/null --max-time 0.2 http://10.10.0.2/; then
            echo $(( $(now_ms) - start )); return 0
        fi
        sleep 0.02
    done
    cat "$WORK/console" >&2
    die "no HTTP response from the guest"
}



declare -A RESULT
measure() {
    local name=$1; shift
    RESULT[$name,boot]=$(boot "$@")
    for c in $CONNS; do RESULT[$name,$c]=$(wrk_figures http://10.10.0.2/ "$c"); done
    stop
}

echo "unikernel: $IMAGE, Linux VM: $LINUX ($SERVER), -m $MEM, TCG, wrk ${DURATION}s per run" >&2
measure unikernel "$RUNNER" "$IMAGE" --accel tcg --memory "$MEM" --tap tap0 ip=10.10.0.2/24 gw=10.10.0.1
mapfile -t LQEMU < <(linux_qemu "$LINUX" "bench_ip=10.10.0.2/24 bench_gw=10.10.0.1" "${QEMU[@]}")
measure linux "${LQEMU[@]}"

# Smallest guest memory at which the unikernel still serves (`cargo xtask
# bench` bisects it in 16 KiB steps for every example).
MIN=none
for m in 1536K 1792K 2M 2560K 3M 4M 6M 8M; do
    # A guest with too little memory exits at once: stop waiting then.
    if timeout 60 bash -c "$(declare -f in_ns); NS=$NS; in_ns $RUNNER $IMAGE --accel tcg --memory $m --tap tap0 ip=10.10.0.2/24 >$WORK/min 2>&1 & guest=\$!
        for i in \$(seq 1 500); do in_ns curl -s -o /dev/null --max-time 1 http://10.10.0.2/ && exit 0; kill -0 \$guest 2>/dev/null || exit 1; sleep 0.05; done; exit 1"; then
        MIN=$m; stop; break
    fi
    stop
done

SIZE=$(stat -c %s target/x86_64-unknown-none/stripped/examples/http)
printf '\n%-28s %14s %14s %8s\n' "" unikernel "linux ($SERVER)" ratio
printf '%-28s %14s %14s %8s\n' "boot to first response, ms" "${RESULT[unikernel,boot]}" "${RESULT[linux,boot]}" \
    "$(ratio "${RESULT[unikernel,boot]}" "${RESULT[linux,boot]}")"
for c in $CONNS; do
    read -r ur u50 u99 <<<"${RESULT[unikernel,$c]}"
    read -r lr l50 l99 <<<"${RESULT[linux,$c]}"
    printf '%-28s %14s %14s %8s\n' "requests/s, $c conns" "$ur" "$lr" "$(ratio "$ur" "$lr")"
    printf '%-28s %14s %14s %8s\n' "  p50 latency ms" "$u50" "$l50" "$(ratio "$u50" "$l50")"
    printf '%-28s %14s %14s %8s\n' "  p99 latency ms" "$u99" "$l99" "$(ratio "$u99" "$l99")"
done
printf '%-28s %14s\n' "http image, stripped bytes" "$SIZE"
printf '%-28s %14s\n' "smallest -m that serves" "$MIN"
