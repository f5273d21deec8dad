#!/usr/bin/env bash
# Storage benchmark, one run, side by side: raw block throughput and IOPS
# of the unikernel's `Block` API (examples/bench_block.rs) and of the same
# requests inside the minimal Linux VM (bench/linux-vm/, `bench_mode=block`:
# dd/fio on /dev/vda with O_DIRECT), in the same QEMU configuration
# (microvm, TCG, 1 vCPU, 128M, a virtio-blk-device on a sparse raw image);
# then key-value puts/gets with durability, and the power-cut test.
#
# Usage: bench/storage.sh
#   CUTS=100  power cuts in the crash test (0 to skip)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

die() { echo "bench/storage.sh: $*" >&2; exit 1; }
CUTS=${CUTS:-100}
LINUX=target/linux-vm/lighttpd

echo "building the images..." >&2
cargo build --quiet --release --example bench_block
cargo build --quiet --release -p unikernel-runner --target "$HOST"
IMAGE=target/x86_64-unknown-none/release/examples/bench_block
SERVER=lighttpd bench/linux-vm/build.sh "$LINUX" >&2

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DISK=$WORK/disk.img
truncate -s 64M "$DISK"

"$RUNNER" "$IMAGE" --accel tcg --memory 128M --disk "$DISK" >"$WORK/unikernel" 2>&1 || { cat "$WORK/unikernel" >&2; die "the unikernel run failed"; }
read -r -a QEMU <<<"$("$RUNNER" "$IMAGE" --print-command --accel tcg --memory 128M --disk "$DISK")"
mapfile -t LQEMU < <(linux_qemu "$LINUX" "bench_mode=block" "${QEMU[@]}")
timeout 600 "${LQEMU[@]}" >"$WORK/linux" 2>&1 || true
grep -q '^LINUX-BLOCK' "$WORK/linux" || { cat "$WORK/linux" >&2; die "the Linux VM printed no results"; }

# field FILE PREFIX NAME KEY: KEY=value from the line PREFIX name=NAME.
field() { awk -v p="$2" -v n="name=$3" -v k="$4=" '$1 == p && $2 == n { for (i = 3; i <= NF; i++) if (index($i, k) == 1) print substr($i, length(k) + 1) }' "$1" | tr -d '\r'; }

printf '\n%-12s %12s %12s %12s %12s %8s %8s\n' "" "uk MB/s" "linux MB/s" "uk IOPS" "linux IOPS" "MB/s" "IOPS"
for name in seq-write seq-read rand-write rand-read; do
    ub=$(field "$WORK/unikernel" BLOCK "$name" bytes) us=$(field "$WORK/unikernel" BLOCK "$name" seconds)
    lb=$(field "$WORK/linux" LINUX-BLOCK "$name" bytes) ls=$(field "$WORK/linux" LINUX-BLOCK "$name" seconds)
    umb=$(awk -v b="$ub" -v s="$us" 'BEGIN { printf "%.1f", b / s / 1e6 }')
    lmb=$(awk -v b="$lb" -v s="$ls" 'BEGIN { printf "%.1f", b / s / 1e6 }')
    ui=$(field "$WORK/unikernel" BLOCK "$name" iops) li=$(field "$WORK/linux" LINUX-BLOCK "$name" iops)
    printf '%-12s %12s %12s %12s %12s %8s %8s\n' "$name" "$umb" "$lmb" "$ui" "$li" "$(ratio "$umb" "$lmb")" "$(ratio "$ui" "$li")"
done
for op in put get; do
    printf 'kv %-4s %8s ops/s (durable puts: one flush each)\n' "$op" "$(field "$WORK/unikernel" KV "$op" ops_per_s)"
done
if [ "$CUTS" -gt 0 ]; then
    UNIKERNEL_KV_CUTS=$CUTS cargo test --quiet -p unikernel-runner --target "$HOST" --test storage -- kv_keeps --nocapture 2>&1 \
        | grep -E '^kv power cuts|panicked|lost' || die "the power-cut test failed"
fi
