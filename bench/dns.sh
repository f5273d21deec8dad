#!/usr/bin/env bash
# DNS benchmark, one run, side by side: the `dns` unikernel and NSD in a
# minimal Linux VM (Debian's kernel + busybox initramfs + Debian's nsd,
# bench/linux-vm/ with SERVER=nsd) serving the same zone
# (examples/dns/example.test.zone), in the same QEMU configuration as
# bench/net.sh (microvm, TCG, 1 vCPU, same -m, virtio-net on a tap device
# in a network namespace this script creates), driven by the same dnsperf
# (Debian) from inside the namespace, over UDP.
#
# Usage (as root): bench/dns.sh
#   MEM=128M            guest memory for both (the NSD VM needs 100 MiB)
#   DURATION=10         seconds per dnsperf run
#   OUTSTANDING="1 32"  dnsperf's queries in flight (-q). At 1, dnsperf's own
#                       wait between queries dominates (its queries/s moved
#                       from 54 to 4,088 between identical runs against the
#                       same guest): read the latency there, not queries/s.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "bench/dns.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root: it creates a network namespace and a tap device"
MEM=${MEM:-128M}
DURATION=${DURATION:-10}
OUTSTANDING=${OUTSTANDING:-"1 32"}
. bench/common.sh
# Cargo's target directory, as cargo picks it.
T=${CARGO_TARGET_DIR:-target}
RUNNER=$T/$HOST/release/unikernel-runner

for tool in dnsperf dig ip qemu-system-x86_64; do
    command -v "$tool" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q dnsperf bind9-dnsutils iproute2 qemu-system-x86 >&2
done

echo "building the images..." >&2
# The stripped profile is the release one without symbols: it is both the
# image run and the size reported.
cargo build --quiet --profile stripped --example dns
cargo build --quiet --release -p unikernel-runner --target "$HOST"
IMAGE=$T/x86_64-unknown-none/stripped/examples/dns
LINUX=$T/linux-vm/nsd
SERVER=nsd IOPING=0 bench/linux-vm/build.sh "$LINUX" >&2

tap_namespace ukdns

# The mix dnsperf cycles through: answers, a CNAME chain, NXDOMAIN, NODATA.
cat >"$WORK/queries" <<'QUERIES'
www.example.test A
mail.example.test AAAA
example.test MX
example.test NS
alias.example.test A
nope.example.test A
www.example.test MX
example.test TXT
QUERIES

read -r -a QEMU <<<"$("$RUNNER" "$IMAGE" --print-command --accel tcg --memory "$MEM" --tap tap0)"
now_ms() { date +%s%3N; }
answers() { in_ns dig +short +time=1 +tries=1 @10.10.0.2 www.example.test A 2>/dev/null | grep -qx 192.0.2.80; }

# Starts a guest in the namespace and waits for its first answer; prints
# the milliseconds that took.
boot() {
    local start=$(now_ms)
    in_ns "$@" >"$WORK/console" 2>&1 &
    for _ in $(seq 1 3000); do
        if answers; then echo $(( $(now_ms) - start )); return 0; fi
        sleep 0.02
    done
    cat "$WORK/console" >&2
    die "no DNS answer from the guest"
}


# dnsperf figures: queries/s, average latency in ms, queries lost.
load() {
    in_ns dnsperf -s 10.10.0.2 -d "$WORK/queries" -l "$DURATION" -q "$1" -t 2 >"$WORK/perf" 2>&1 \
        || { cat "$WORK/perf" >&2; die "dnsperf failed"; }
    awk '/Queries per second:/ {q=$4} /Average Latency \(s\):/ {l=$4 * 1000} /Queries lost:/ {lost=$3}
         END {printf "%s %.2f %s\n", q, l, lost}' "$WORK/perf"
}

declare -A RESULT
measure() {
    local name=$1; shift
    RESULT[$name,boot]=$(boot "$@")
    for q in $OUTSTANDING; do RESULT[$name,$q]=$(load "$q"); done
    stop
}

echo "unikernel: $IMAGE, Linux VM: $LINUX (nsd), -m $MEM, TCG, dnsperf ${DURATION}s per run" >&2
measure unikernel "$RUNNER" "$IMAGE" --accel tcg --memory "$MEM" --tap tap0 ip=10.10.0.2/24 gw=10.10.0.1
mapfile -t LQEMU < <(linux_qemu "$LINUX" "bench_ip=10.10.0.2/24 bench_gw=10.10.0.1 bench_port=53" "${QEMU[@]}")
measure linux "${LQEMU[@]}"

# Smallest guest memory at which the unikernel still answers.
MIN=none
for m in 1280K 1536K 1792K 2M 2560K 3M 4M 6M 8M; do
    # A guest with too little memory exits at once: stop waiting then.
    if timeout 60 bash -c "$(declare -f in_ns answers); NS=$NS; in_ns $RUNNER $IMAGE --accel tcg --memory $m --tap tap0 ip=10.10.0.2/24 >$WORK/min 2>&1 & guest=\$!
        for i in \$(seq 1 500); do answers && exit 0; kill -0 \$guest 2>/dev/null || exit 1; sleep 0.05; done; exit 1"; then
        MIN=$m; stop; break
    fi
    stop
done

SIZE=$(stat -c %s "$IMAGE")
printf '\n%-30s %12s %12s %8s\n' "" unikernel "linux (nsd)" ratio
printf '%-30s %12s %12s %8s\n' "boot to first answer, ms" "${RESULT[unikernel,boot]}" "${RESULT[linux,boot]}" \
    "$(ratio "${RESULT[unikernel,boot]}" "${RESULT[linux,boot]}")"
for q in $OUTSTANDING; do
    read -r uq ul ulost <<<"${RESULT[unikernel,$q]}"
    read -r lq ll llost <<<"${RESULT[linux,$q]}"
    printf '%-30s %12s %12s %8s\n' "queries/s, $q in flight" "$uq" "$lq" "$(ratio "$uq" "$lq")"
    printf '%-30s %12s %12s %8s\n' "  average latency ms" "$ul" "$ll" "$(ratio "$ul" "$ll")"
    printf '%-30s %12s %12s\n' "  queries lost" "$ulost" "$llost"
    if [ "$q" = 1 ]; then echo "  (1 in flight: dnsperf paces itself; compare the latency, not queries/s)"; fi
done
printf '%-30s %12s\n' "dns image, stripped bytes" "$SIZE"
printf '%-30s %12s\n' "smallest -m that answers" "$MIN"
# For context only (other hardware, Xen, 2013; not run here): the MirageOS
# paper (Madhavapeddy et al., ASPLOS'13, §4) reports its DNS appliance at
# 184 KB, and with response memoization ahead of BIND 9 and NSD on Linux.
echo "MirageOS (ASPLOS'13, not run here): 184 KB DNS appliance; with memoization faster than NSD and BIND 9 in its own Xen setup"
