# Shared by bench/net.sh and bench/storage.sh (sourced, not run).

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
