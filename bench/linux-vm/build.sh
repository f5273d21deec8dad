#!/usr/bin/env bash
# Build the Linux baseline VM for the networking and block benchmarks:
#   OUTDIR/vmlinuz          Debian bookworm's stock amd64 kernel
#   OUTDIR/initrd.cpio.gz   static busybox + virtio-net/-blk modules + /init
#                           that serves a fixed page on :80 and prints
#                           LINUX-READY, or with `bench_mode=block` on the
#                           kernel command line benchmarks /dev/vda, prints
#                           LINUX-BLOCK lines and powers off
#   OUTDIR/build-info.txt   what went in (also the "already built" stamp)
#
# Usage: bench/linux-vm/build.sh OUTDIR
#   SERVER=busybox   (default) busybox httpd only
#   SERVER=lighttpd  also pack lighttpd (+ its shared libs) and make it the
#                    default server; `bench_server=busybox` on the kernel
#                    command line still selects busybox httpd at boot.
#   SERVER=lighttpd-tls  lighttpd as above plus lighttpd-mod-openssl (+ libssl3)
#                    serving examples/shared/page.rs's page over TLS 1.3 only
#                    on :443, with a self-signed ECDSA P-256 certificate made
#                    here by the host's openssl (in the initramfs only);
#                    `bench_server=lighttpd` serves plain HTTP on :80.
#   SERVER=nsd       Debian's NSD serving examples/dns/example.test.zone.
#   KERNEL_PKG=...   override the kernel package (default: whatever
#                    linux-image-amd64 depends on, resolved at run time).
#   IOPING=1         (default) pack Debian's ioping (libc only) for the random
#                    4 KiB block figures; IOPING=0 leaves it out and /init
#                    falls back to one busybox dd process per request.
#   FORCE=1          rebuild even if OUTDIR is up to date.
# There is no FIO=1: Debian's fio links ceph/gluster/rdma/pmem/nbd directly
# (about 41 MB of shared libraries, BIND_NOW), too big for the initramfs.
# See README.md next to this script for how to boot it.
set -euo pipefail

die() { echo "build.sh: error: $*" >&2; exit 1; }
note() { echo "build.sh: $*" >&2; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
OUT=$1
SERVER=${SERVER:-busybox}
case "$SERVER" in busybox|lighttpd|lighttpd-tls|nsd) ;; *) die "SERVER must be busybox, lighttpd, lighttpd-tls or nsd, got '$SERVER'";; esac
[ "${FIO:-0}" = 0 ] || die "FIO=1 is not supported: Debian's fio needs ~41 MB of shared libraries (librbd, libceph-common, gluster, rdma, ...); the block benchmark uses ioping and busybox dd"
IOPING=${IOPING:-1}
case "$IOPING" in 0|1) ;; *) die "IOPING must be 0 or 1, got '$IOPING'";; esac

for t in apt-get apt-cache dpkg dpkg-deb gzip find sha256sum awk; do
    command -v "$t" >/dev/null || die "'$t' not found (this script expects a Debian/Ubuntu host with apt)"
done

HERE=$(cd "$(dirname "$0")" && pwd)
SCRIPT_SUM=$(sha256sum "$HERE/build.sh" | cut -d' ' -f1)

# Candidate version of a package, or fail loudly (usually: no apt lists yet).
pkg_version() {
    local v
    v=$(apt-cache policy "$1" 2>/dev/null | awk '$1=="Candidate:"{print $2}')
    [ -n "$v" ] && [ "$v" != "(none)" ] \
        || die "apt has no candidate for '$1' (run 'apt-get update'; bookworm main must be in sources)"
    echo "$v"
}

# The metapackage only depends on the current ABI-versioned image package;
# follow it instead of hard-coding e.g. linux-image-6.1.0-NN-amd64.
if [ -z "${KERNEL_PKG:-}" ]; then
    pkg_version linux-image-amd64 >/dev/null
    KERNEL_PKG=$(apt-cache depends linux-image-amd64 \
        | awk '$1=="Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ {print $2; exit}')
    [ -n "$KERNEL_PKG" ] || die "could not resolve the kernel package behind linux-image-amd64"
fi
PKGS=("$KERNEL_PKG" busybox-static)
# Shared-library dependencies are unpacked next to a dynamic binary so the
# initramfs gets bookworm's libs even if the host lacks them.
add_pkg_with_libs() {
    local libs
    mapfile -t libs < <(apt-cache depends "$1" \
        | awk '$1=="Depends:" && $2 ~ /^lib/ {print $2}' | sort -u)
    PKGS+=("$1" "${libs[@]}")
}
case "$SERVER" in lighttpd|lighttpd-tls) add_pkg_with_libs lighttpd ;; esac
[ "$SERVER" = lighttpd-tls ] && add_pkg_with_libs lighttpd-mod-openssl
[ "$SERVER" = nsd ] && add_pkg_with_libs nsd
# NSD serves the zone the `dns` example compiles in (bench/dns.sh).
ZONE=$HERE/../../examples/dns/example.test.zone
# lighttpd-tls serves the page the `https` example serves (bench/https.sh).
PAGE_RS=$HERE/../../examples/shared/page.rs
if [ "$SERVER" = lighttpd-tls ]; then
    command -v openssl >/dev/null || die "'openssl' not found (SERVER=lighttpd-tls makes its certificate with it)"
fi
[ "$IOPING" = 1 ] && add_pkg_with_libs ioping
# Each package once, in a stable order (lighttpd and ioping share libc6).
mapfile -t PKGS < <(printf '%s\n' "${PKGS[@]}" | awk '!seen[$0]++')

# Everything that determines the output, so a rerun can skip the work.
INFO="server=$SERVER
ioping=$IOPING
zone_sha256=$([ "$SERVER" != nsd ] || sha256sum "$ZONE" | cut -d' ' -f1)
page_sha256=$([ "$SERVER" != lighttpd-tls ] || sha256sum "$PAGE_RS" | cut -d' ' -f1)
script_sha256=$SCRIPT_SUM"
for p in "${PKGS[@]}"; do INFO+=$'\n'"pkg $p=$(pkg_version "$p")"; done

if [ "${FORCE:-0}" != 1 ] && [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.cpio.gz" ] \
    && [ -f "$OUT/build-info.txt" ] \
    && [ "$(sed -n '/^# inputs/,/^# outputs/p' "$OUT/build-info.txt" | sed '1d;$d')" = "$INFO" ]; then
    note "$OUT is up to date ($KERNEL_PKG, SERVER=$SERVER); nothing to do (FORCE=1 to rebuild)"
    exit 0
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/linux-vm.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/debs" "$TMP/pkg" "$TMP/root"

note "downloading: ${PKGS[*]}"
APT_OPTS=()
# As root apt drops to user _apt, which cannot write into our 0700 mktemp dir.
[ "$(id -u)" = 0 ] && APT_OPTS=(-o APT::Sandbox::User=root)
(cd "$TMP/debs" && apt-get -q "${APT_OPTS[@]}" download "${PKGS[@]}" >&2) \
    || die "apt-get download failed (network? apt lists stale? try 'apt-get update')"
for d in "$TMP"/debs/*.deb; do dpkg -x "$d" "$TMP/pkg" || die "dpkg -x failed on $d"; done

PKG=$TMP/pkg
ROOT=$TMP/root
BB=$PKG/bin/busybox
[ -x "$BB" ] || die "busybox-static did not contain bin/busybox"

# --- kernel ---------------------------------------------------------------
VMLINUZ=$(find "$PKG/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n1)
[ -n "$VMLINUZ" ] || die "$KERNEL_PKG has no boot/vmlinuz-*"
KREL=${VMLINUZ##*/vmlinuz-}
KCONFIG=$PKG/boot/config-$KREL
MODDIR=$PKG/lib/modules/$KREL
[ -f "$KCONFIG" ] && [ -d "$MODDIR" ] || die "missing config or modules for $KREL"

# virtio_mmio has to find devices via ACPI on -M microvm: without this option
# the module has no `device=` parameter and ignores QEMU's virtio_mmio.device=.
CMDLINE_DEVS=$(grep -q '^CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y' "$KCONFIG" && echo yes || echo no)

# --- modules: transports (mmio + pci), NIC and disk drivers, plus deps -------
modfile() { # module name -> path of its .ko* (names use _ or - interchangeably)
    local pat=${1//_/[_-]}
    find "$MODDIR" -name "$pat.ko" -o -name "$pat.ko.xz" -o -name "$pat.ko.zst" -o -name "$pat.ko.gz" | head -n1
}
modstate() { # y (built in), m (module) or n, from the package's config
    local v
    v=$(grep -E "^CONFIG_$1=" "$KCONFIG" | cut -d= -f2)
    echo "${v:-n}"
}
# Decompressed copy of a module, because busybox insmod only takes plain ELF.
unpack_mod() { # src dst
    case "$1" in
        *.ko) cp "$1" "$2" ;;
        *.ko.xz) "$BB" unxz -c "$1" >"$2" ;;
        *.ko.gz) gzip -dc "$1" >"$2" ;;
        *.ko.zst) command -v zstd >/dev/null || die "modules are zstd-compressed; install zstd"
                  zstd -qdc "$1" >"$2" ;;
    esac
}
mkdir -p "$ROOT/lib/modules" "$TMP/mods"
ORDER=()
declare -A SEEN=()
add_mod() { # depth-first over depends= so every module follows its deps
    local m=$1 f deps d
    m=${m//-/_}
    [ -n "${SEEN[$m]:-}" ] && return 0
    SEEN[$m]=1
    if grep -qE "/${m//_/[_-]}\.ko\$" "$MODDIR/modules.builtin" 2>/dev/null; then
        return 0 # built in: nothing to load
    fi
    f=$(modfile "$m")
    [ -n "$f" ] || die "module $m not found in $KERNEL_PKG"
    unpack_mod "$f" "$TMP/mods/$m.ko"
    deps=$(tr '\0' '\n' <"$TMP/mods/$m.ko" | sed -n 's/^depends=//p' | head -n1)
    for d in ${deps//,/ }; do add_mod "$d"; done
    cp "$TMP/mods/$m.ko" "$ROOT/lib/modules/$m.ko"
    ORDER+=("$m")
}
for want in virtio_mmio virtio_pci virtio_net virtio_blk; do add_mod "$want"; done
printf '%s\n' "${ORDER[@]}" >"$ROOT/lib/modules/load-order"

# --- busybox userland ------------------------------------------------------
mkdir -p "$ROOT"/{bin,sbin,etc,proc,sys,dev,tmp,run,www}
cp "$BB" "$ROOT/bin/busybox"
for a in $("$BB" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$ROOT/bin/$a"
done
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOT/etc/group"
printf 'hello from linux\n' >"$ROOT/www/index.html"

# --- block benchmark: random 4 KiB block numbers ----------------------------
# The same xorshift64 sequence (seed, shifts, 4096 draws over the first
# 32 MiB = 8192 blocks) as examples/bench_block.rs, so both sides touch the
# same offsets. Precomputed here so /init does no arithmetic while timing.
# Bash arithmetic is signed 64-bit: mask after >> to make it a logical shift;
# x % 8192 is x & 8191 for the unsigned value.
RAND_SEED=0x9e3779b97f4a7c15 RAND_COUNT=4096 RAND_BLOCKS=8192
x=$((RAND_SEED))
for ((i = 0; i < RAND_COUNT; i++)); do
    x=$(( x ^ (x << 13) ))
    x=$(( x ^ ((x >> 7) & 0x01ffffffffffffff) ))
    x=$(( x ^ (x << 17) ))
    echo $(( x & (RAND_BLOCKS - 1) ))
done >"$ROOT/etc/bench-rand-blocks"

# --- dynamically linked extras: binary + its shared libraries ---------------
pack_dynamic() { # path-in-package (e.g. usr/sbin/lighttpd, or a .so): copy it and its libs
    local bin=$PKG/$1 out l c
    [ -f "$bin" ] || die "no $1 in the unpacked packages"
    mkdir -p "$ROOT/${1%/*}" "$ROOT/lib64" "$ROOT/lib/x86_64-linux-gnu"
    cp "$bin" "$ROOT/$1"
    # ldd runs the host loader, but LD_LIBRARY_PATH makes it pick the libs we
    # just unpacked from bookworm packages first.
    out=$(LD_LIBRARY_PATH=$PKG/lib/x86_64-linux-gnu:$PKG/usr/lib/x86_64-linux-gnu ldd "$bin") \
        || die "ldd failed on $1"
    if grep -q 'not found' <<<"$out"; then
        die "$1 needs libraries that neither the unpacked packages nor the host have: $(grep 'not found' <<<"$out" | tr -s ' \t\n' ' ')"
    fi
    for l in $(awk '$2=="=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$out"); do
        # Prefer the unpacked bookworm copy (ldd reports the loader by its
        # host path, and the host may be a different release).
        for c in "$PKG/lib/x86_64-linux-gnu/${l##*/}" "$PKG/usr/lib/x86_64-linux-gnu/${l##*/}"; do
            [ -e "$c" ] && { l=$c; break; }
        done
        case "$l" in
            */ld-linux-x86-64.so.2) cp -L "$l" "$ROOT/lib64/ld-linux-x86-64.so.2" ;;
            *) cp -L "$l" "$ROOT/lib/x86_64-linux-gnu/" ;;
        esac
    done
    [ -e "$ROOT/lib64/ld-linux-x86-64.so.2" ] || die "no dynamic loader found for $1"
}

# ioping: one process doing pread/pwrite at random offsets, so the random
# block figures are not dominated by a fork per request.
[ "$IOPING" = 1 ] && pack_dynamic usr/bin/ioping

# --- optional lighttpd (keep-alive capable) ----------------------------------
DEFAULT_SERVER=busybox
if [ "$SERVER" = lighttpd ] || [ "$SERVER" = lighttpd-tls ]; then
    pack_dynamic usr/sbin/lighttpd
    mkdir -p "$ROOT/usr/lib/lighttpd"
    cat >"$ROOT/etc/lighttpd.conf" <<'EOF'
server.document-root = "/www"
server.port = 80
server.bind = "0.0.0.0"
server.username = "nobody"
server.groupname = "nogroup"
server.errorlog = "/tmp/lighttpd.err"
server.upload-dirs = ( "/tmp" )
index-file.names = ( "index.html" )
mimetype.assign = ( ".html" => "text/html" )
server.max-keep-alive-requests = 100000
server.max-keep-alive-idle = 60
EOF
    DEFAULT_SERVER=lighttpd
fi
if [ "$SERVER" = lighttpd-tls ]; then
    # mod_openssl is dlopen()ed from lighttpd's module directory; its libssl3
    # and libcrypto come along through ldd.
    pack_dynamic usr/lib/lighttpd/mod_openssl.so
    # The same page as the `https` example (the INDEX string of page.rs).
    page=$(sed -n 's/^pub const INDEX: &str = "\(.*\)";$/\1/p' "$PAGE_RS")
    [ -n "$page" ] || die "no INDEX string in $PAGE_RS"
    mkdir -p "$ROOT/www-tls"
    printf '%b' "$page" >"$ROOT/www-tls/index.html"
    # The same kind of certificate as the `https` example's (rcgen's
    # generate_simple_self_signed: ECDSA P-256 with SHA-256, SANs localhost
    # and 127.0.0.1), fresh per build and only ever inside the initramfs.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -nodes \
        -keyout "$TMP/tls.key" -out "$TMP/tls.crt" -days 3650 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null \
        || die "openssl could not make the certificate"
    cat "$TMP/tls.crt" "$TMP/tls.key" >"$ROOT/etc/lighttpd-tls.pem"
    # Production-style: lighttpd's defaults (one process, its own TLS
    # defaults: cipher list, groups, session tickets) plus TLS 1.3 only and
    # the same keep-alive settings as the plain configuration.
    sed -e 's|^server.document-root = .*|server.document-root = "/www-tls"|' \
        -e 's|^server.port = .*|server.port = 443|' \
        -e 's|^server.errorlog = .*|server.errorlog = "/tmp/lighttpd-tls.err"|' \
        "$ROOT/etc/lighttpd.conf" >"$ROOT/etc/lighttpd-tls.conf"
    cat >>"$ROOT/etc/lighttpd-tls.conf" <<'EOF'
server.modules += ( "mod_openssl" )
ssl.engine = "enable"
ssl.pemfile = "/etc/lighttpd-tls.pem"
ssl.openssl.ssl-conf-cmd = ( "MinProtocol" => "TLSv1.3" )
EOF
    DEFAULT_SERVER=lighttpd-tls
fi
if [ "$SERVER" = nsd ]; then
    # NSD, authoritative for the dns example's zone, on UDP and TCP; no
    # privilege drop, chroot or database (state under /tmp).
    pack_dynamic usr/sbin/nsd
    mkdir -p "$ROOT/etc/nsd"
    cp "$ZONE" "$ROOT/etc/nsd/example.test.zone"
    cat >"$ROOT/etc/nsd/nsd.conf" <<'EOF'
server:
    ip-address: 0.0.0.0
    port: 53
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "/etc/nsd"
    database: ""
    pidfile: "/tmp/nsd.pid"
    xfrdfile: "/tmp/xfrd.state"
    zonelistfile: "/tmp/zone.list"
    logfile: "/tmp/nsd.log"
    verbosity: 1
    # Response rate limiting off: one benchmark client is one source, and
    # Debian's NSD would otherwise drop most of its queries past 200/s.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    # NSD allocates and zeroes the (here unused) RRL table in shared memory
    # at start whatever the rate: the default 1,000,000 buckets are ~30 MB,
    # and in a 128 MiB VM (about 38 MB free once the initramfs is unpacked)
    # the OOM killer then took NSD down under the first burst of queries.
    rrl-size: 1024
remote-control:
    control-enable: no
zone:
    name: example.test
    zonefile: example.test.zone
EOF
    DEFAULT_SERVER=nsd
fi

# --- /init -----------------------------------------------------------------
cat >"$ROOT/init" <<EOF
#!/bin/sh
# Generated by bench/linux-vm/build.sh ($KERNEL_PKG, kernel $KREL).
DEFAULT_SERVER=$DEFAULT_SERVER
EOF
cat >>"$ROOT/init" <<'EOF'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs dev /dev 2>/dev/null
# The initramfs has no /dev/console node, so the kernel could not give us
# stdio; take the console (ttyS0 with console=ttyS0) now.
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp

fail() { echo "LINUX-FAILED: $*"; reboot -f; sleep 5; exit 1; }

# Options come from the kernel command line:
#   bench_ip=ADDR/PREFIX (default 10.0.2.15/24, slirp)
#   bench_gw=ADDR        (default 10.0.2.2; "none" for no default route)
#   bench_server=busybox|lighttpd|lighttpd-tls|nsd
#   bench_port=N         (default 443 for lighttpd-tls, 53 for nsd, else 80)
#   bench_mode=net|block (default net; block: benchmark a disk, then power off)
#   bench_dev=vda        (block mode: the disk, /dev/NAME; its first 32 MiB
#                         are overwritten)
#   bench_block_tool=ioping|dd (random 4 KiB figures; default ioping if packed)
#   bench_shell=1        a shell on the console once ready (for debugging)
BENCH_IP=10.0.2.15/24 BENCH_GW=10.0.2.2 BENCH_SERVER=$DEFAULT_SERVER BENCH_PORT=
BENCH_MODE=net BENCH_DEV=vda BENCH_BLOCK_TOOL=dd BENCH_SHELL=0
[ -x /usr/bin/ioping ] && BENCH_BLOCK_TOOL=ioping
for w in $(cat /proc/cmdline); do
    case "$w" in
        bench_ip=*) BENCH_IP=${w#*=} ;;
        bench_gw=*) BENCH_GW=${w#*=} ;;
        bench_server=*) BENCH_SERVER=${w#*=} ;;
        bench_port=*) BENCH_PORT=${w#*=} ;;
        bench_mode=*) BENCH_MODE=${w#*=} ;;
        bench_dev=*) BENCH_DEV=${w#*=} ;;
        bench_block_tool=*) BENCH_BLOCK_TOOL=${w#*=} ;;
        bench_shell=*) BENCH_SHELL=${w#*=} ;;
    esac
done
case "$BENCH_MODE" in net|block) ;; *) fail "unknown bench_mode=$BENCH_MODE" ;; esac
case "$BENCH_PORT,$BENCH_SERVER" in
    ,lighttpd-tls) BENCH_PORT=443 ;;
    ,nsd) BENCH_PORT=53 ;;
    ,*) BENCH_PORT=80 ;;
esac

# Transports first then virtio_net/virtio_blk; whichever transport finds no
# device (mmio on a PCI machine or the reverse) just sits idle, and so does
# a driver without a device.
for m in $(cat /lib/modules/load-order); do
    insmod /lib/modules/$m.ko || fail "insmod $m"
done

# Wall clock in microseconds (busybox date has no %N; adjtimex shows tv_usec).
now_us() {
    adjtimex | awk '$1=="time.tv_sec:" {s=$2} $1=="time.tv_usec:" {u=$2}
                    END {printf "%d%06d\n", s, u}'
}
report() { # name bytes requests t0_us t1_us
    awk -v n="$1" -v b="$2" -v r="$3" -v t0="$4" -v t1="$5" 'BEGIN {
        s = (t1 - t0) / 1e6
        printf "LINUX-BLOCK name=%s bytes=%d seconds=%.4f iops=%.1f\n", n, b, s, r / s }'
}

# bench_mode=block: the figures of examples/bench_block.rs. Every request is
# O_DIRECT and queue depth 1; writes end with an fsync of the device (a
# virtio-blk FLUSH) inside the timed interval. Sequential: one busybox dd,
# 1 MiB requests. Random 4 KiB: one ioping process (pread/pwrite at seeded
# random 4 KiB-aligned offsets in the first 32 MiB), or with
# bench_block_tool=dd (or an IOPING=0 build) one busybox dd process per
# request over the precomputed offsets; the dd path then also prints
# LINUX-BLOCK-OVERHEAD, the same loop with no I/O, i.e. the fork cost.
block_bench() {
    dev=/dev/$BENCH_DEV
    i=0
    while [ ! -b "$dev" ]; do
        i=$((i + 1)); [ $i -gt 200 ] && fail "no block device $dev after 20 s"
        sleep 0.1
    done
    size=$(blockdev --getsize64 "$dev") || fail "blockdev $dev"
    [ "$size" -ge 33554432 ] || fail "$dev has $size bytes, needs at least 32 MiB"
    case "$BENCH_BLOCK_TOOL" in
        ioping) [ -x /usr/bin/ioping ] || fail "ioping not in this initrd (build with IOPING=1)" ;;
        dd) ;;
        *) fail "unknown bench_block_tool=$BENCH_BLOCK_TOOL" ;;
    esac
    sched=$(sed 's/.*\[\(.*\)\].*/\1/' "/sys/block/$BENCH_DEV/queue/scheduler" 2>/dev/null)
    echo "LINUX-BLOCK-INFO dev=$dev bytes=$size scheduler=${sched:-?} seq_tool=dd rand_tool=$BENCH_BLOCK_TOOL direct=1 iodepth=1"
    stat0=$(cat "/sys/block/$BENCH_DEV/stat")
    blocks=$(cat /etc/bench-rand-blocks)
    nrand=$(echo "$blocks" | wc -l)
    flush() { dd if=/dev/null of="$dev" count=0 conv=notrunc,fsync 2>/dev/null || fail "fsync $dev"; }
    # -C: no per-request fdatasync/fadvise (we flush once), -D: O_DIRECT,
    # -i 0: back to back, -a 0: no warm-up request, -B: raw statistics.
    ioping_rand() { # name, extra ioping flags
        n=$1; shift
        ioping -C -D -i 0 -a 0 -c "$nrand" -s 4k -S 32m -e 1 -B "$@" "$dev" >/tmp/ioping.out 2>&1 \
            || fail "$n: ioping: $(cat /tmp/ioping.out)"
    }
    ioping_detail() { # name: ioping's own view (sum of request times, per request)
        awk -v n="$1" '{ printf "LINUX-BLOCK-DETAIL name=%s tool=ioping requests=%d io_seconds=%.4f avg_us=%.1f min_us=%.1f max_us=%.1f wall_seconds=%.4f\n",
            n, $1, $2 / 1e9, $6 / 1e3, $5 / 1e3, $7 / 1e3, $10 / 1e9 }' /tmp/ioping.out
    }

    t0=$(now_us)
    dd if=/dev/zero of="$dev" bs=1048576 count=32 oflag=direct conv=notrunc,fsync 2>/tmp/dd.err \
        || fail "seq-write: $(cat /tmp/dd.err)"
    t1=$(now_us)
    report seq-write 33554432 32 "$t0" "$t1"

    echo 3 >/proc/sys/vm/drop_caches
    t0=$(now_us)
    dd if="$dev" of=/dev/null bs=1048576 count=32 iflag=direct 2>/tmp/dd.err \
        || fail "seq-read: $(cat /tmp/dd.err)"
    t1=$(now_us)
    report seq-read 33554432 32 "$t0" "$t1"

    t0=$(now_us)
    if [ "$BENCH_BLOCK_TOOL" = ioping ]; then
        ioping_rand rand-write -WWW
    else
        for b in $blocks; do
            dd if=/dev/zero of="$dev" bs=4096 count=1 seek="$b" oflag=direct conv=notrunc 2>/dev/null \
                || fail "rand-write at block $b"
        done
    fi
    flush
    t1=$(now_us)
    report rand-write $((nrand * 4096)) "$nrand" "$t0" "$t1"
    [ "$BENCH_BLOCK_TOOL" = ioping ] && ioping_detail rand-write

    echo 3 >/proc/sys/vm/drop_caches
    t0=$(now_us)
    if [ "$BENCH_BLOCK_TOOL" = ioping ]; then
        ioping_rand rand-read
    else
        for b in $blocks; do
            dd if="$dev" of=/dev/null bs=4096 count=1 skip="$b" iflag=direct 2>/dev/null \
                || fail "rand-read at block $b"
        done
    fi
    t1=$(now_us)
    report rand-read $((nrand * 4096)) "$nrand" "$t0" "$t1"
    [ "$BENCH_BLOCK_TOOL" = ioping ] && ioping_detail rand-read

    if [ "$BENCH_BLOCK_TOOL" = dd ]; then
        # Same processes and device open/seek, zero bytes moved.
        t0=$(now_us)
        for b in $blocks; do
            dd if="$dev" of=/dev/null bs=4096 count=0 skip="$b" iflag=direct 2>/dev/null
        done
        t1=$(now_us)
        awk -v r="$nrand" -v t0="$t0" -v t1="$t1" 'BEGIN { s = (t1 - t0) / 1e6
            printf "LINUX-BLOCK-OVERHEAD name=dd-loop requests=%d seconds=%.4f per_request_us=%.1f\n", r, s, s * 1e6 / r }'
    fi
    # What reached the device (from /sys/block/DEV/stat): a self-check that
    # reads were not served from a cache and that the flushes happened.
    echo "$stat0 $(cat "/sys/block/$BENCH_DEV/stat")" | awk '{ n = NF / 2
        printf "LINUX-BLOCK-STATS reads=%d read_bytes=%d writes=%d write_bytes=%d flushes=%d\n",
            $(n+1) - $1, ($(n+3) - $3) * 512, $(n+5) - $5, ($(n+7) - $7) * 512, $(n+16) - $16 }'
    echo "LINUX-BLOCK-DONE"
    reboot -f
    sleep 5
    exit 0
}
[ "$BENCH_MODE" = block ] && block_bench

# Probing is asynchronous: wait for the NIC to show up.
i=0
while [ ! -e /sys/class/net/eth0 ]; do
    i=$((i + 1)); [ $i -gt 200 ] && fail "no eth0 after 20 s"
    sleep 0.1
done
ip link set lo up
ip addr add "$BENCH_IP" dev eth0 || fail "bad bench_ip=$BENCH_IP"
ip link set eth0 up
[ "$BENCH_GW" = none ] || ip route add default via "$BENCH_GW" || fail "bad bench_gw=$BENCH_GW"

case "$BENCH_SERVER" in
    busybox) httpd -p "$BENCH_PORT" -h /www -u nobody:nogroup || fail "httpd" ;;
    lighttpd)
        [ -x /usr/sbin/lighttpd ] || fail "lighttpd not in this initrd (build with SERVER=lighttpd)"
        sed -i "s/^server.port = .*/server.port = $BENCH_PORT/" /etc/lighttpd.conf
        lighttpd -f /etc/lighttpd.conf || fail "lighttpd" ;;
    lighttpd-tls)
        [ -f /etc/lighttpd-tls.conf ] || fail "lighttpd-tls not in this initrd (build with SERVER=lighttpd-tls)"
        sed -i "s/^server.port = .*/server.port = $BENCH_PORT/" /etc/lighttpd-tls.conf
        lighttpd -f /etc/lighttpd-tls.conf || fail "lighttpd-tls: $(cat /tmp/lighttpd-tls.err 2>/dev/null)" ;;
    nsd)
        [ -x /usr/sbin/nsd ] || fail "nsd not in this initrd (build with SERVER=nsd)"
        nsd -c /etc/nsd/nsd.conf -p "$BENCH_PORT" || fail "nsd: $(cat /tmp/nsd.log)" ;;
    *) fail "unknown bench_server=$BENCH_SERVER" ;;
esac

# Announce only once the socket is really listening.
i=0
until netstat -ltn | grep -q ":$BENCH_PORT "; do
    i=$((i + 1)); [ $i -gt 100 ] && fail "server not listening on $BENCH_PORT"
    sleep 0.1
done
echo "LINUX-READY server=$BENCH_SERVER ip=$BENCH_IP port=$BENCH_PORT"

# bench_shell=1: look inside the running guest from the console (e.g.
# `cat /tmp/nsd.log`, `netstat -su`); respawned, since PID 1 must stay.
[ "$BENCH_SHELL" = 1 ] && while :; do sh; done
# PID 1 must never exit (that would panic the kernel).
while :; do sleep 3600; done
EOF
chmod 755 "$ROOT/init"

# --- pack -------------------------------------------------------------------
# busybox's cpio writes newc with owner forced to root, so no fakeroot needed.
(cd "$ROOT" && find . | LC_ALL=C sort | "$BB" cpio -o -H newc -R 0:0 2>/dev/null) \
    | gzip -9 >"$TMP/initrd.cpio.gz" || die "creating the cpio archive failed"
cp "$VMLINUZ" "$TMP/vmlinuz"
mv "$TMP/vmlinuz" "$OUT/vmlinuz"
mv "$TMP/initrd.cpio.gz" "$OUT/initrd.cpio.gz"

{
    echo "# inputs"
    echo "$INFO"
    echo "# outputs"
    echo "kernel_release=$KREL"
    echo "virtio_mmio=$(modstate VIRTIO_MMIO) virtio_pci=$(modstate VIRTIO_PCI) virtio_net=$(modstate VIRTIO_NET) virtio_blk=$(modstate VIRTIO_BLK)"
    echo "virtio_mmio_cmdline_devices=$CMDLINE_DEVS"
    echo "modules=${ORDER[*]}"
    echo "vmlinuz_bytes=$(stat -c %s "$OUT/vmlinuz")"
    echo "initrd_bytes=$(stat -c %s "$OUT/initrd.cpio.gz")"
} >"$OUT/build-info.txt"

note "built $OUT: kernel $KREL, modules: ${ORDER[*]}, server: $DEFAULT_SERVER"
[ "$CMDLINE_DEVS" = yes ] || note "note: kernel lacks VIRTIO_MMIO_CMDLINE_DEVICES; on -M microvm keep ACPI on (no acpi=off)"
cat "$OUT/build-info.txt"
