# Shared by the bench scripts (sourced, not run).

HOST=x86_64-unknown-linux-gnu
RUNNER=target/$HOST/release/unikernel-runner

# linux_qemu LINUX_DIR KERNEL_ARGS WORD...: the runner's QEMU command (the
# words) for the Linux VM in LINUX_DIR: its kernel instead of the image, its
# initramfs, and a command line ending in KERNEL_ARGS; one word per line.
linux_qemu() {
    local dir=$1 args=$2 words=() skip=0 khz
    shift 2
    for w in "$@"; do
        if [ $skip = 1 ]; then words+=("$dir/vmlinuz"); skip=0; continue; fi
        [ "$w" = -kernel ] && skip=1
        words+=("$w")
    done
    # ACPI stays on: Debian's kernel finds virtio-mmio devices only through
    # it. microvm has no HPET, and calibrating the TSC against the PIT
    # sometimes fails under TCG and hangs the boot: give the host's rate.
    khz=$(awk '/^cpu MHz/ {printf "%d", $4 * 1000; exit}' /proc/cpuinfo)
    words+=(-initrd "$dir/initrd.cpio.gz" -append "console=ttyS0 quiet reboot=t panic=-1 tsc_early_khz=$khz $args")
    printf '%s\n' "${words[@]}"
}

# ratio A B: A/B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }

# tap_namespace TAG: a network namespace $NS (TAG-PID) holding tap0 at
# 10.10.0.1/24, for a guest at 10.10.0.2, and a scratch directory $WORK;
# both go at exit, with whatever still runs in the namespace.
tap_namespace() {
    NS=$1-$$
    WORK=$(mktemp -d)
    trap tap_namespace_cleanup EXIT
    ip netns add "$NS"
    ip -n "$NS" link set lo up
    ip -n "$NS" tuntap add dev tap0 mode tap
    ip -n "$NS" addr add 10.10.0.1/24 dev tap0
    ip -n "$NS" link set tap0 up
}

tap_namespace_cleanup() {
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    sleep 0.2
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}

# in_ns CMD...: runs CMD inside $NS.
in_ns() { ip netns exec "$NS" "$@"; }

# stop: ends every process in $NS (the guest), and lets its tap go idle.
stop() {
    for pid in $(ip netns pids "$NS"); do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
}

# wrk_figures URL CONNS: `wrk --latency` for $DURATION s from $NS;
# prints requests/s, p50 and p99 in ms.
wrk_figures() {
    in_ns wrk -t1 -c"$2" -d"${DURATION}s" --latency "$1" >"$WORK/wrk" 2>&1 || { cat "$WORK/wrk" >&2; die "wrk failed"; }
    local rps p50 p99
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk")
    p50=$(awk '$1=="50%" {print $2}' "$WORK/wrk")
    p99=$(awk '$1=="99%" {print $2}' "$WORK/wrk")
    echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}

# to_ms VALUE: wrk's latency (e.g. 812.00us, 1.20ms, 2.01s) in ms.
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.2f", n }'; }
