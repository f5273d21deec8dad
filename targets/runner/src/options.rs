//! Command line and environment of the runner. Options may also come from
//! `UNIKERNEL_*` variables, which is how `cargo test` (whose arguments go to
//! the guest) selects them.

use std::path::PathBuf;
use std::time::Duration;
use unikernel_core::forward::{self, Forward};

pub const HELP: &str = "\
usage: unikernel-runner IMAGE [OPTIONS] [--] [KERNEL ARGS...]

Boots a unikernel image in QEMU and exits with the guest's exit status.
Arguments that are not options below become the kernel command line.

options (environment variable in brackets):
  --accel auto|kvm|tcg     accelerator; auto uses KVM when /dev/kvm is usable [UNIKERNEL_ACCEL]
  --machine microvm|q35|pc|firecracker
                           QEMU machine; microvm boots fastest [UNIKERNEL_MACHINE]. firecracker is
                           microvm with Firecracker's device model: no ACPI, virtio devices announced
                           only on the kernel command line (interrupts from line 5), no exit device
                           (the guest prints its status and resets; the runner reads it back)
  --memory SIZE            guest RAM, e.g. 64M (default), 2M or 1536K [UNIKERNEL_MEMORY]
  --timeout SECONDS        stop the guest after this long, exit 124 (default: none) [UNIKERNEL_TIMEOUT]
  --qemu-arg ARG           extra QEMU argument, repeatable [UNIKERNEL_QEMU_ARGS, space-separated]
  --gdb [PORT]             start the guest halted, with QEMU's gdb server on 127.0.0.1:PORT (default
                           1234); the runner prints the command that attaches gdb
  --profile FILE           sample the guest's stack while it runs and write a flame graph (SVG) of
                           where its CPU time went to FILE at its exit; not with --gdb [UNIKERNEL_PROFILE]
  --profile-hz N           samples per second for --profile (default 100) [UNIKERNEL_PROFILE_HZ]
  --metrics                print the guest's metrics (Prometheus text) to standard error when its
                           main returns, for images that name `unikernel::metrics::at_exit`; adds
                           `metrics=exit` to the kernel command line [UNIKERNEL_METRICS=1]
  --merge-memory           let the host's same-page merging (KSM, when root runs it: echo 1 >
                           /sys/kernel/mm/ksm/run) share QEMU's identical pages with other instances':
                           all of QEMU's memory mergeable, no huge pages, and QEMU's addresses not
                           randomized (no ASLR for QEMU). Linux 6.4+; not with --print-command
                           [UNIKERNEL_MERGE_MEMORY=1]

for images that ask for a network device (a virtio-net device is added):
  --forward [tcp:|udp:]HOST:GUEST
                           forward host 127.0.0.1:HOST to the guest's port GUEST with QEMU's
                           user networking, repeatable [UNIKERNEL_FORWARD, comma-separated]; default:
                           the image's (#[unikernel(forward = ...)]), else tcp:8080:80.
                           The host port opens when the guest starts listening on GUEST (until then
                           it refuses connections), and the runner prints where to connect
  --tap IFNAME             attach to the existing tap device IFNAME instead of user networking [UNIKERNEL_TAP]
  --on-demand              listen on the TCP forwards' host ports with no guest running; the first
                           connection boots the guest and is served once it listens (held meanwhile).
                           The runner keeps running across guest lifetimes until a stop signal (128+N)
  --idle-exit SECONDS      with --on-demand: stop the guest after SECONDS without any connection; the
                           next connection boots it again (default: the guest keeps running)
  --boot-deadline SECONDS  with --on-demand: close the held connections of a guest that does not listen
                           within SECONDS of its start, and stop it (default 30)
  --warm                   with --on-demand (user networking): keep the next guest's QEMU started and
                           paused (or its --snapshot loaded), so a connection pays no QEMU start; costs
                           one idle QEMU process, and its memory, while no guest runs
  --snapshot FILE          start from a snapshot: when FILE is missing, boot, save the guest to FILE once it
                           listens on every forward (before any connection), and go on; else restore FILE
                           and tell the guest, which reseeds, re-reads the wall clock, drops the snapshot's
                           connections and renews its address. With --on-demand, every boot restores.
                           FILE records the image's sha256 and the run's options; a mismatch is refused
                           [UNIKERNEL_SNAPSHOT]

for images that capture packets (`unikernel_net::pcap` in #[unikernel(...)]):
  --pcap FILE              write the frames the guest sends and receives to FILE (pcap, for tcpdump -r
                           or Wireshark); default: .unikernel/IMAGE.pcap next to the package's
                           Cargo.toml [UNIKERNEL_PCAP]

for images built with tracing (`cargo run --features trace`):
  --trace FILE             write what the runtime and the stacks did (task polls, interrupts, timers, TCP
                           states, block requests, the application's spans) to FILE as a Chrome trace
                           for ui.perfetto.dev; default: .unikernel/IMAGE.trace.json [UNIKERNEL_TRACE]

for images that ask for a disk (a virtio-blk device is added):
  --disk PATH|URL          the raw disk image; default: .unikernel/disk.img next to the package's
                           Cargo.toml (outside target/, so `cargo clean` keeps it), created (sparse)
                           on first use [UNIKERNEL_DISK]. A URL QEMU opens itself
                           (e.g. nbd+unix:///?socket=/run/disk.sock for an NBD server) is passed through
  --disk-size SIZE         size of a disk image the runner creates, e.g. 64M (default) [UNIKERNEL_DISK_SIZE]
  --print-command          print the QEMU command line instead of running it (its --forward ports
                           open at QEMU's start: no runner is there to open them when the guest listens)
  --print-firecracker-config
                           print the image as a Firecracker VM (`firecracker --config-file`): its
                           devices from the image, --tap for the network, --disk, --memory
  --oci-layout DIR         write the image as an OCI image layout in DIR for containerd + urunc
                           (Kubernetes `runtimeClassName: urunc`), instead of running it; takes no
                           kernel arguments (urunc passes the guest only its address)
  --oci-tag NAME           the tag in the layout (default latest), with --oci-layout
  --print-libvirt-xml      print the image as a libvirt domain (`virsh define`): direct kernel boot, its
                           devices from the image, --machine (not firecracker), --accel, --memory,
                           --forward or --tap, --disk; the serial console is `virsh console NAME`,
                           also logged to .unikernel/NAME.console.log
  --libvirt-name NAME      the domain's name (default: the image's file name)
  -h, --help               this text

exit status: the guest's (0 success, 1 error or failed test, 101 panic, 102 CPU exception);
124 after --timeout; 128+N when signal N stopped the run: SIGINT, SIGTERM and SIGHUP sent to
the runner are passed on to QEMU, which is waited for, and QEMU stopped by a signal from elsewhere
is reported too; 2 when the runner itself fails (bad arguments, QEMU missing, a --forward host port
already in use). On Linux QEMU never outlives the runner, even one killed with SIGKILL.
";

/// The kernel command-line word that makes the guest send its metrics at exit.
const METRICS_AT_EXIT: &str = "metrics=exit";

/// gdb's own default for `target remote :PORT` examples, and QEMU's `-s`.
const DEFAULT_GDB_PORT: u16 = 1234;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Auto,
    Kvm,
    Tcg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    Microvm,
    Q35,
    Pc,
    /// microvm with Firecracker's device model (see `HELP`).
    Firecracker,
}

impl Machine {
    pub fn name(self) -> &'static str {
        match self {
            Self::Microvm => "microvm",
            Self::Q35 => "q35",
            Self::Pc => "pc",
            Self::Firecracker => "firecracker",
        }
    }

    /// Whether QEMU's machine is microvm: virtio-mmio devices, no firmware.
    pub fn is_microvm(self) -> bool {
        matches!(self, Self::Microvm | Self::Firecracker)
    }
}

/// The guest's disk: an image file, or a URL that QEMU's block layer opens
/// (`nbd://`, `nbd+unix://`, ...), which the runner never creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disk {
    File(PathBuf),
    Url(String),
}

fn disk(value: String) -> Disk {
    // `scheme://`: a QEMU URL (a file path with `://` in it can be given as `./PATH`).
    let scheme = value.split_once("://").map(|(s, _)| s);
    match scheme {
        Some(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) => {
            Disk::Url(value)
        }
        _ => Disk::File(PathBuf::from(value)),
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub image: PathBuf,
    pub accel: Accel,
    pub machine: Machine,
    pub memory: String,
    pub timeout: Option<Duration>,
    pub qemu_args: Vec<String>,
    pub print_command: bool,
    /// Print the image as a Firecracker VM config instead of running it.
    pub print_firecracker_config: bool,
    /// Print the image as a libvirt domain instead of running it, and its name.
    pub print_libvirt_xml: bool,
    pub libvirt_name: Option<String>,
    pub kernel_args: Vec<String>,
    /// The port of QEMU's gdb server, which holds the guest until gdb
    /// attaches and continues it.
    pub gdb: Option<u16>,
    /// Where `--profile` writes its flame graph, and its samples per second.
    pub profile: Option<PathBuf>,
    pub profile_hz: u32,
    /// Whether the guest's metrics are printed at its exit.
    pub metrics: bool,
    /// `--merge-memory`: QEMU's pages shareable with other instances' (`crate::merge`).
    pub merge_memory: bool,
    /// The user's forwards; empty: the image's (`qemu::forwards`).
    pub forwards: Vec<Forward>,
    pub tap: Option<String>,
    /// `--on-demand`: boot on the first connection (`crate::on_demand`).
    pub on_demand: Option<crate::on_demand::Settings>,
    pub disk: Option<Disk>,
    pub disk_size: u64,
    /// Where the packet capture goes, for images that capture.
    pub pcap: Option<PathBuf>,
    /// Where the trace goes, for images built with tracing.
    pub trace: Option<PathBuf>,
    /// The OCI image layout to write the image into instead of running it.
    pub oci_layout: Option<PathBuf>,
    pub oci_tag: Option<String>,
    /// `--snapshot`: the file a run restores, or saves when missing (`crate::snapshot`).
    pub snapshot: Option<PathBuf>,
}

pub enum Parsed {
    Run(Box<Options>),
    Help,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn accel(value: &str) -> Result<Accel, String> {
    match value {
        "auto" => Ok(Accel::Auto),
        "kvm" => Ok(Accel::Kvm),
        "tcg" => Ok(Accel::Tcg),
        other => Err(format!("unknown accelerator `{other}`: expected auto, kvm or tcg")),
    }
}

fn machine(value: &str) -> Result<Machine, String> {
    match value {
        "microvm" => Ok(Machine::Microvm),
        "q35" => Ok(Machine::Q35),
        "pc" => Ok(Machine::Pc),
        "firecracker" => Ok(Machine::Firecracker),
        other => Err(format!("unknown machine `{other}`: expected microvm, q35, pc or firecracker")),
    }
}

/// Bytes in `1536K`, `64M`, `1G` (a bare number is MiB, as QEMU's -m reads it).
fn bytes(value: &str) -> Option<u64> {
    let unit = |suffix: char| match suffix.to_ascii_uppercase() {
        'K' => Some(1 << 10),
        'M' => Some(1 << 20),
        'G' => Some(1 << 30),
        _ => None,
    };
    let (digits, unit) = match value.chars().last().and_then(unit) {
        Some(unit) => (&value[..value.len() - 1], unit),
        None => (value, 1 << 20),
    };
    digits.parse::<u64>().ok().filter(|n| *n > 0).and_then(|n| n.checked_mul(unit))
}

fn memory(value: &str) -> Result<String, String> {
    match bytes(value) {
        Some(_) => Ok(value.to_string()),
        None => Err(format!("invalid memory size `{value}`: expected e.g. 64M, 1G or 1536K")),
    }
}

impl Options {
    /// Guest RAM in bytes (`memory` was checked by `parse`).
    pub fn memory_bytes(&self) -> u64 {
        bytes(&self.memory).unwrap_or(0)
    }
}

fn disk_size(value: &str) -> Result<u64, String> {
    bytes(value).ok_or_else(|| format!("invalid disk size `{value}`: expected e.g. 64M or 1G"))
}

fn forward(value: &str) -> Result<Forward, String> {
    Forward::parse(value).map_err(|e| e.to_string())
}

/// A positive number of seconds, for `flag`.
fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    match value.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("{flag}: invalid `{value}`: expected a positive number of seconds")),
    }
}

fn hz(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err(format!("invalid sampling rate `{value}`: expected samples per second, 1 to 10000")),
    }
}

fn timeout(value: &str) -> Result<Option<Duration>, String> {
    match value.parse::<f64>() {
        Ok(0.0) => Ok(None),
        Ok(s) if s > 0.0 && s.is_finite() => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(format!("invalid timeout `{value}`: expected seconds")),
    }
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut opts = Options {
        image: PathBuf::new(),
        accel: env("UNIKERNEL_ACCEL").as_deref().map_or(Ok(Accel::Auto), accel)?,
        machine: env("UNIKERNEL_MACHINE").as_deref().map_or(Ok(Machine::Microvm), machine)?,
        memory: env("UNIKERNEL_MEMORY").as_deref().map_or(Ok("64M".to_string()), memory)?,
        timeout: env("UNIKERNEL_TIMEOUT").as_deref().map_or(Ok(None), timeout)?,
        qemu_args: env("UNIKERNEL_QEMU_ARGS")
            .map(|a| a.split_whitespace().map(String::from).collect())
            .unwrap_or_default(),
        print_command: false,
        print_firecracker_config: false,
        print_libvirt_xml: false,
        libvirt_name: None,
        kernel_args: Vec::new(),
        gdb: None,
        profile: env("UNIKERNEL_PROFILE").map(PathBuf::from),
        profile_hz: env("UNIKERNEL_PROFILE_HZ").as_deref().map_or(Ok(crate::profile::DEFAULT_HZ), hz)?,
        metrics: env("UNIKERNEL_METRICS").is_some_and(|v| v != "0"),
        merge_memory: env("UNIKERNEL_MERGE_MEMORY").is_some_and(|v| v != "0"),
        forwards: match env(forward::ENV) {
            Some(list) => Forward::parse_list(&list).collect::<Result<_, _>>().map_err(|e| e.to_string())?,
            None => Vec::new(),
        },
        tap: env("UNIKERNEL_TAP"),
        on_demand: None,
        disk: env("UNIKERNEL_DISK").map(disk),
        disk_size: env("UNIKERNEL_DISK_SIZE").as_deref().map_or(Ok(64 << 20), disk_size)?,
        pcap: env("UNIKERNEL_PCAP").map(PathBuf::from),
        trace: env("UNIKERNEL_TRACE").map(PathBuf::from),
        oci_layout: None,
        oci_tag: None,
        snapshot: env("UNIKERNEL_SNAPSHOT").map(PathBuf::from),
    };
    let mut image = None;
    let (mut on_demand, mut idle_exit, mut boot_deadline, mut warm) = (false, None, None, false);
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--accel" => opts.accel = accel(&value("--accel")?)?,
            "--machine" => opts.machine = machine(&value("--machine")?)?,
            "--memory" => opts.memory = memory(&value("--memory")?)?,
            "--timeout" => opts.timeout = timeout(&value("--timeout")?)?,
            "--qemu-arg" => opts.qemu_args.push(value("--qemu-arg")?),
            "--print-command" => opts.print_command = true,
            "--print-firecracker-config" => opts.print_firecracker_config = true,
            "--print-libvirt-xml" => opts.print_libvirt_xml = true,
            "--libvirt-name" => opts.libvirt_name = Some(value("--libvirt-name")?),
            // The port is optional: a number after `--gdb` is one.
            "--gdb" => {
                let port = args.peek().and_then(|p| p.parse::<u16>().ok()).filter(|p| *p != 0);
                if port.is_some() {
                    args.next();
                }
                opts.gdb = Some(port.unwrap_or(DEFAULT_GDB_PORT));
            }
            "--profile" => opts.profile = Some(PathBuf::from(value("--profile")?)),
            "--profile-hz" => opts.profile_hz = hz(&value("--profile-hz")?)?,
            "--metrics" => opts.metrics = true,
            "--merge-memory" => opts.merge_memory = true,
            "--forward" => opts.forwards.push(forward(&value("--forward")?)?),
            "--tap" => opts.tap = Some(value("--tap")?),
            "--on-demand" => on_demand = true,
            "--warm" => warm = true,
            "--idle-exit" => idle_exit = Some(seconds("--idle-exit", &value("--idle-exit")?)?),
            "--boot-deadline" => boot_deadline = Some(seconds("--boot-deadline", &value("--boot-deadline")?)?),
            "--disk" => opts.disk = Some(disk(value("--disk")?)),
            "--disk-size" => opts.disk_size = disk_size(&value("--disk-size")?)?,
            "--pcap" => opts.pcap = Some(PathBuf::from(value("--pcap")?)),
            "--trace" => opts.trace = Some(PathBuf::from(value("--trace")?)),
            "--oci-layout" => opts.oci_layout = Some(PathBuf::from(value("--oci-layout")?)),
            "--snapshot" => opts.snapshot = Some(PathBuf::from(value("--snapshot")?)),
            "--oci-tag" => opts.oci_tag = Some(crate::oci::tag(&value("--oci-tag")?)?),
            "--" => opts.kernel_args.extend(args.by_ref()),
            _ if image.is_none() => image = Some(PathBuf::from(arg)),
            _ => opts.kernel_args.push(arg),
        }
    }
    opts.image = image.ok_or("missing IMAGE")?;
    if opts.oci_tag.is_some() && opts.oci_layout.is_none() {
        return Err("--oci-tag names the image in an --oci-layout DIR: give that too".into());
    }
    opts.on_demand = crate::on_demand::Settings::of(on_demand, idle_exit, boot_deadline, warm)?;
    if opts.metrics {
        // Last: the runtime reads the last `metrics=` word.
        opts.kernel_args.push(METRICS_AT_EXIT.into());
    }
    if opts.gdb.is_some() && opts.profile.is_some() {
        return Err(
            "--profile samples through QEMU's gdb server, which serves one client: drop --gdb or --profile".into()
        );
    }
    Ok(Parsed::Run(Box::new(opts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse(args.iter().map(|s| s.to_string())) {
            Ok(Parsed::Run(o)) => *o,
            Ok(Parsed::Help) => panic!("help"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn options_and_kernel_args_mix() {
        let o = run(&["img", "log=debug", "--accel", "tcg", "--memory", "32M", "--", "--accel", "x"]);
        assert_eq!(o.image, PathBuf::from("img"));
        assert_eq!(o.accel, Accel::Tcg);
        assert_eq!(o.memory, "32M");
        assert_eq!(o.kernel_args, ["log=debug", "--accel", "x"]);
    }

    #[test]
    fn metrics_asks_the_guest_for_its_metrics_at_exit() {
        let o = run(&["img", "--metrics", "log=debug", "--", "metrics=off"]);
        assert!(o.metrics);
        assert_eq!(o.kernel_args, ["log=debug", "metrics=off", METRICS_AT_EXIT]);
        let o = run(&["img", "metrics=exit"]);
        assert!(!o.metrics, "the word alone sends metrics nobody prints");
    }

    #[test]
    fn memory_takes_kib_mib_and_gib() {
        assert_eq!(run(&["img", "--memory", "1536K"]).memory_bytes(), 1536 << 10);
        assert_eq!(run(&["img", "--memory", "2m"]).memory_bytes(), 2 << 20);
        assert_eq!(run(&["img", "--memory", "3"]).memory_bytes(), 3 << 20);
        assert_eq!(run(&["img", "--memory", "1G"]).memory_bytes(), 1 << 30);
    }

    #[test]
    fn bad_values_are_errors() {
        let err = |args: &[&str]| parse(args.iter().map(|s| s.to_string())).err().expect("should fail");
        assert!(err(&["img", "--accel", "hvf"]).contains("unknown accelerator"));
        assert!(err(&["img", "--memory", "lots"]).contains("invalid memory size"));
        assert!(err(&["img", "--memory", "2T"]).contains("invalid memory size"));
        assert!(err(&["img", "--timeout"]).contains("needs a value"));
        assert!(err(&[]).contains("missing IMAGE"));
        assert!(err(&["img", "--forward", "8080"]).contains("invalid forward"));
        assert!(err(&["img", "--forward", "sctp:1:2"]).contains("invalid forward"));
        assert!(err(&["img", "--disk-size", "0"]).contains("invalid disk size"));
        assert_eq!(run(&["img", "--disk-size", "2G"]).disk_size, 2 << 30);
    }

    #[test]
    fn gdb_takes_an_optional_port() {
        assert_eq!(run(&["img"]).gdb, None);
        assert_eq!(run(&["img", "--gdb"]).gdb, Some(1234));
        let o = run(&["img", "--gdb", "4321", "log=debug"]);
        assert_eq!((o.gdb, o.kernel_args.as_slice()), (Some(4321), &["log=debug".to_string()][..]));
        let o = run(&["img", "--gdb", "log=debug"]);
        assert_eq!((o.gdb, o.kernel_args.as_slice()), (Some(1234), &["log=debug".to_string()][..]));
    }

    #[test]
    fn profile_takes_a_file_and_a_rate_and_refuses_gdb() {
        let o = run(&["img", "--profile", "out.svg", "--profile-hz", "250"]);
        assert_eq!((o.profile, o.profile_hz), (Some(PathBuf::from("out.svg")), 250));
        assert_eq!(run(&["img"]).profile_hz, crate::profile::DEFAULT_HZ);
        let err = |args: &[&str]| parse(args.iter().map(|s| s.to_string())).err().expect("should fail");
        assert!(err(&["img", "--profile", "p.svg", "--gdb"]).contains("one client"));
        assert!(err(&["img", "--profile"]).contains("needs a value"));
        assert!(err(&["img", "--profile-hz", "0"]).contains("invalid sampling rate"));
        assert!(err(&["img", "--profile-hz", "fast"]).contains("invalid sampling rate"));
    }

    #[test]
    fn forwards_take_a_protocol_and_default_to_the_images() {
        use unikernel_core::forward::Protocol::{Tcp, Udp};
        assert_eq!(run(&["img"]).forwards, []);
        let o = run(&["img", "--forward", "udp:5555:7", "--forward", "tcp:2222:22"]);
        assert_eq!(
            o.forwards,
            [Forward { protocol: Udp, host: 5555, guest: 7 }, Forward { protocol: Tcp, host: 2222, guest: 22 }]
        );
    }

    #[test]
    fn an_oci_tag_needs_a_layout_and_is_a_tag() {
        let o = run(&["img", "--oci-layout", "out", "--oci-tag", "v1"]);
        assert_eq!((o.oci_layout, o.oci_tag), (Some(PathBuf::from("out")), Some("v1".into())));
        let err = |args: &[&str]| parse(args.iter().map(|s| s.to_string())).err().expect("should fail");
        assert!(err(&["img", "--oci-tag", "v1"]).contains("--oci-layout"));
        assert!(err(&["img", "--oci-layout", "out", "--oci-tag", "a:b"]).contains("invalid tag"));
    }

    #[test]
    fn on_demand_takes_an_idle_exit_and_a_boot_deadline() {
        assert_eq!(run(&["img"]).on_demand, None);
        let o = run(&["img", "--on-demand", "--idle-exit", "5", "--boot-deadline", "0.5"]).on_demand.expect("on");
        assert_eq!((o.idle_exit, o.boot_deadline), (Some(Duration::from_secs(5)), Duration::from_millis(500)));
        let o = run(&["img", "--on-demand"]).on_demand.expect("on");
        assert_eq!((o.idle_exit, o.boot_deadline), (None, crate::on_demand::BOOT_DEADLINE));
        let err = |args: &[&str]| parse(args.iter().map(|s| s.to_string())).err().expect("should fail");
        assert!(err(&["img", "--idle-exit", "5"]).contains("only with --on-demand"));
        assert!(err(&["img", "--boot-deadline", "5"]).contains("only with --on-demand"));
        assert!(err(&["img", "--warm"]).contains("only with --on-demand"));
        assert!(run(&["img", "--on-demand", "--warm"]).on_demand.expect("on").warm);
        for bad in ["0", "-1", "soon", "inf", "NaN"] {
            assert!(err(&["img", "--on-demand", "--idle-exit", bad]).contains("positive number of seconds"), "{bad}");
        }
    }

    #[test]
    fn a_disk_is_a_file_or_a_url_passed_through() {
        let d = |v: &str| run(&["img", "--disk", v]).disk.expect("a disk");
        assert_eq!(d("nbd+unix:///?socket=/tmp/d.sock"), Disk::Url("nbd+unix:///?socket=/tmp/d.sock".into()));
        assert_eq!(d("nbd://127.0.0.1:10809/x"), Disk::Url("nbd://127.0.0.1:10809/x".into()));
        assert_eq!(d("disk.img"), Disk::File("disk.img".into()));
        assert_eq!(d("./a://b"), Disk::File("./a://b".into()));
        assert_eq!(d("/tmp/x://y"), Disk::File("/tmp/x://y".into()));
    }
}
