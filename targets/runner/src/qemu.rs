//! Finding (or installing) QEMU, building its command line, running it.

mod firecracker;
mod libvirt;
pub mod monitor;

pub use firecracker::config as firecracker_config;
pub use libvirt::domain as libvirt_domain;

use crate::channel::{Router, Sinks};
use crate::image::{Arch, Image};
use crate::options::{Accel, Disk, Machine, Options};
use crate::signals::{self, Stops};
use crate::snapshot::{Plan, Take};
use monitor::Monitor;
use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};
use unikernel_core::channel::stream;
use unikernel_core::exit;
use unikernel_core::forward::{self, Forward, Listening, Protocol, Reachable};
use unikernel_core::vmm::{Kind, Record, virtio};

/// QEMU's emulator for a guest architecture, and Debian's package for it.
struct Emulator {
    binary: &'static str,
    package: &'static str,
}

fn emulator(arch: Arch) -> Emulator {
    match arch {
        Arch::X86_64 => Emulator { binary: "qemu-system-x86_64", package: "qemu-system-x86" },
        Arch::Aarch64 => Emulator { binary: "qemu-system-aarch64", package: "qemu-system-arm" },
    }
}

/// The machine aarch64 images boot on: `virt` with a GICv3, which the
/// target drives (as Firecracker's and current Arm servers' interrupt
/// controller).
const AARCH64_MACHINE: &str = "virt,gic-version=3";
/// qboot: skips SeaBIOS, which takes seconds under nested KVM.
const QBOOT: &str = "/usr/share/qemu/bios-microvm.bin";
/// Status for a guest stopped by `--timeout`, as timeout(1) uses.
const TIMED_OUT: u8 = 124;
/// The runner's data directory, next to the package's `Cargo.toml`: outside
/// `target/`, so `cargo clean` leaves the disk image alone.
const DATA_DIR: &str = ".unikernel";
/// microvm's options. It leaves the RTC out under KVM unless asked; it is
/// the guest's wall clock. Without the second I/O APIC, virtio-mmio
/// devices interrupt on the first one, which the guest drives.
const MICROVM_OPTIONS: &str = "rtc=on,ioapic2=off";
/// Modern (virtio 1.x) virtio-mmio devices rather than QEMU's legacy
/// default, as Firecracker.
const MODERN_MMIO: &str = "virtio-mmio.force-legacy=false";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chosen {
    Kvm,
    Tcg { why: TcgReason },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcgReason {
    Requested,
    NoKvm,
    NoHardwareVirtualization,
    KvmFailed,
    ForeignArchitecture,
}

impl Chosen {
    pub fn name(self) -> &'static str {
        match self {
            Self::Kvm => "KVM",
            Self::Tcg { .. } => "TCG",
        }
    }

    pub fn why(self) -> &'static str {
        match self {
            Self::Kvm => "accelerated by the host kernel",
            Self::Tcg { why: TcgReason::Requested } => "software emulation, as requested",
            Self::Tcg { why: TcgReason::NoKvm } => "software emulation: /dev/kvm is not usable here",
            Self::Tcg { why: TcgReason::NoHardwareVirtualization } => {
                "software emulation: /dev/kvm here is paravirtual (no VT-x/AMD-V), slower than TCG; --accel kvm forces it"
            }
            Self::Tcg { why: TcgReason::KvmFailed } => "software emulation: KVM failed to start the guest",
            Self::Tcg { why: TcgReason::ForeignArchitecture } => "software emulation: the image is not for this CPU",
        }
    }
}

fn kvm_usable() -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

/// Whether the CPU has hardware virtualization (VT-x or AMD-V). Without
/// it, a /dev/kvm comes from a paravirtual module such as `kvm_pvm`, which
/// here boots slower than TCG and stops the guest on software interrupts.
fn hardware_virtualization() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
        info.lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|flag| flag == "vmx" || flag == "svm"))
    })
}

pub fn choose_accel(requested: Accel, arch: Arch) -> Result<Chosen, String> {
    let native = cfg!(target_arch = "x86_64") == (arch == Arch::X86_64);
    match requested {
        Accel::Kvm if !native => Err("--accel kvm: KVM runs only images for this machine's own CPU".into()),
        _ if !native => Ok(Chosen::Tcg { why: TcgReason::ForeignArchitecture }),
        Accel::Tcg => Ok(Chosen::Tcg { why: TcgReason::Requested }),
        Accel::Kvm if kvm_usable() => Ok(Chosen::Kvm),
        Accel::Kvm => Err("--accel kvm: /dev/kvm is missing or not accessible".into()),
        Accel::Auto if !kvm_usable() => Ok(Chosen::Tcg { why: TcgReason::NoKvm }),
        Accel::Auto if !hardware_virtualization() => Ok(Chosen::Tcg { why: TcgReason::NoHardwareVirtualization }),
        Accel::Auto => Ok(Chosen::Kvm),
    }
}

/// A forward whose guest side listens, and the address that reaches it:
/// QEMU's host port on loopback (user networking), or the guest's own
/// address (a tap).
pub type Ready = (Forward, SocketAddrV4);

/// A QEMU command line, and the port forwards to open while it runs.
pub struct Qemu {
    command: Command,
    forwarding: Option<Forwarding>,
    /// On a tap: the forwards the runner serves itself (`--on-demand`), and
    /// where to say that the guest listens behind one.
    tap: Option<(Vec<Forward>, Option<Sender<Ready>>)>,
    /// Where the guest's channel streams go.
    sinks: Sinks,
    /// The channel's own console, when the image has one: the runner's
    /// end of the socket pair, and QEMU's until QEMU has it.
    channel: Option<(UnixStream, UnixStream)>,
    /// The `--snapshot` this run restores, open for QEMU until it started.
    restore: Option<(PathBuf, std::fs::File)>,
    /// `--warm`: the guest stays paused until this says go.
    gate: Option<Receiver<()>>,
}

/// Lets the QEMU `command` will start inherit `fd` (Rust opens every
/// descriptor close-on-exec).
pub fn inherit(command: &mut Command, fd: RawFd) {
    // SAFETY: runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: fcntl is one. The caller keeps
    // `fd` open in the parent until QEMU started, which follows the fork.
    unsafe {
        command.pre_exec(move || match libc::fcntl(fd, libc::F_SETFD, 0) {
            -1 => Err(io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
}

impl Qemu {
    /// For a caller that adds its own arguments (`--profile`'s gdb server).
    pub fn command_mut(&mut self) -> &mut Command {
        &mut self.command
    }

    /// Sends each forward to `ready` once the guest listens behind it;
    /// false when the run has no network device.
    pub fn on_ready(&mut self, ready: Sender<Ready>) -> bool {
        match (&mut self.forwarding, &mut self.tap) {
            (Some(forwarding), _) => forwarding.ready = Some(ready),
            (None, Some((_, tap))) => *tap = Some(ready),
            (None, None) => return false,
        }
        true
    }

    /// Starts QEMU with the guest paused (before its first instruction, or
    /// with its snapshot loaded) until `gate` says go. Needs the monitor
    /// of user networking: does nothing without it (`--warm` refuses that).
    pub fn paused_until(&mut self, gate: Receiver<()>) {
        if self.forwarding.is_none() {
            return;
        }
        if self.restore.is_none() {
            // A restore is paused already: the guest was stopped when saved.
            self.command.arg("-S");
        }
        self.gate = Some(gate);
    }
}

/// Whether `machine` boots through SeaBIOS: pc and q35 when qboot is not
/// installed.
pub fn seabios(machine: Machine) -> bool {
    !machine.is_microvm() && !Path::new(QBOOT).exists()
}

/// Whether the guest reports its status on the console rather than through
/// an exit device (see `exit::ConsoleLine`).
fn status_on_console(opts: &Options, image: &Image) -> bool {
    opts.machine == Machine::Firecracker || image.arch == Arch::Aarch64
}

/// The machine's name for the user: `virt` for aarch64 images.
pub fn machine_name(opts: &Options, image: &Image) -> &'static str {
    match image.arch {
        Arch::X86_64 => opts.machine.name(),
        Arch::Aarch64 => "virt",
    }
}

/// QEMU's machine for the image.
fn machine(opts: &Options, image: &Image) -> Result<String, String> {
    Ok(match (image.arch, opts.machine) {
        (Arch::Aarch64, Machine::Microvm) => AARCH64_MACHINE.into(),
        (Arch::Aarch64, other) => {
            return Err(format!(
                "--machine {}: an x86 machine; aarch64 images boot on QEMU's virt (leave --machine out)",
                other.name()
            ));
        }
        (Arch::X86_64, Machine::Microvm) => format!("microvm,{MICROVM_OPTIONS}"),
        // As Firecracker builds a VM: without ACPI, QEMU announces the
        // virtio-mmio devices on the kernel command line, with interrupts
        // from line 5 as Firecracker's, and nothing else says where they are.
        (Arch::X86_64, Machine::Firecracker) => format!("microvm,{MICROVM_OPTIONS},acpi=off,auto-kernel-cmdline=on"),
        (Arch::X86_64, Machine::Q35 | Machine::Pc) => opts.machine.name().to_string(),
    })
}

pub fn command(opts: &Options, image: &Image, accel: Chosen) -> Result<Qemu, String> {
    let machine = machine(opts, image)?;
    let mut cmd = Command::new(find_or_install(image.arch)?);
    cmd.args(["-M", &machine, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]);
    if image.arch == Arch::X86_64 && !opts.machine.is_microvm() && !seabios(opts.machine) {
        cmd.args(["-bios", QBOOT]);
    }
    match accel {
        // Nested kvm_pvm rejects the ARCH_CAPABILITIES MSR that `host`
        // implies; the guest does not use it.
        Chosen::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host,-arch-capabilities"]),
        // `max` emulates every feature TCG has, RDRAND included.
        Chosen::Tcg { .. } => cmd.args(["-accel", "tcg", "-cpu", "max"]),
    };
    let devices = Devices::of(&image.records)?;
    cmd.args(["-m", &opts.memory, "-serial", "stdio"]);
    // Firecracker and aarch64 have no exit device: the guest prints its
    // status and stops, and `run` reads the status back from the console.
    if !status_on_console(opts, image) {
        cmd.args(["-device", &devices.exit_device()?]);
    }
    cmd.arg("-kernel").arg(&opts.image);
    if let Some(port) = opts.gdb {
        // Halted at the first instruction until gdb continues it.
        cmd.args(["-gdb", &format!("tcp:{}:{port}", forward::HOST_ADDRESS), "-S"]);
    }
    if !opts.kernel_args.is_empty() {
        cmd.arg("-append").arg(opts.kernel_args.join(" "));
    }
    for notice in &devices.ignored {
        eprintln!("unikernel-runner: {notice}");
    }
    let transport = Transport::of(opts.machine, image.arch);
    if transport == Transport::Mmio && !devices.attached.is_empty() {
        cmd.args(["-global", MODERN_MMIO]);
    }
    let (mut forwarding, mut tap) = (None, None);
    let mut channel = None;
    for device in devices.attached {
        let backend = match device.backend {
            Backend::Network => {
                let forwards = forwards(opts, &image.records);
                if opts.tap.is_some() {
                    tap = Some((forwards.clone(), None));
                }
                forwarding = network(&mut cmd, opts, forwards)?;
                "netdev=net0"
            }
            Backend::Disk => {
                disk(&mut cmd, opts)?;
                "drive=disk0"
            }
            Backend::Entropy => {
                cmd.args(["-object", "rng-random,id=rng0,filename=/dev/urandom"]);
                "rng=rng0"
            }
            Backend::LogFile => {
                let log = data_file(&opts.image, package_dir().as_deref(), "-console.log")?;
                eprintln!("unikernel-runner: the guest's log goes to {}", log.display());
                cmd.args(["-chardev", &format!("file,id=log0,path={}", escaped(&log.display().to_string()))]);
                "id=serial0"
            }
            Backend::Channel => {
                let chardev = if opts.print_command {
                    // No runner to read it: the lines go to a file.
                    let lines = data_file(&opts.image, package_dir().as_deref(), "-channel")?;
                    format!("file,id=channel0,path={}", escaped(&lines.display().to_string()))
                } else {
                    let (ours, theirs) =
                        UnixStream::pair().map_err(|e| format!("cannot make the channel's socket: {e}"))?;
                    inherit(&mut cmd, theirs.as_raw_fd());
                    let chardev = format!("socket,id=channel0,fd={},server=off", theirs.as_raw_fd());
                    channel = Some((ours, theirs));
                    chardev
                };
                cmd.args(["-chardev", &chardev]);
                // The driver tells this console from the log's by its ports.
                &format!("id=serial1,max_ports={}", virtio::CHANNEL_CONSOLE_PORTS)
            }
        };
        cmd.args(["-device", &format!("{},{backend}", device.model(transport))]);
        // The console port on the serial bus just added.
        match device.backend {
            Backend::LogFile => cmd.args(["-device", "virtconsole,bus=serial0.0,chardev=log0"]),
            // A serial port, not a console: QEMU holds the guest's buffer
            // while the socket is full instead of dropping its bytes.
            Backend::Channel => cmd.args(["-device", "virtserialport,bus=serial1.0,nr=1,chardev=channel0"]),
            Backend::Network | Backend::Disk | Backend::Entropy => &mut cmd,
        };
    }
    let mut restore = None;
    match crate::snapshot::plan(opts, image, accel)? {
        Some(Plan::Restore { path, offset }) => {
            let stream = crate::snapshot::incoming(&mut cmd, &path, offset)?;
            restore = Some((path, stream));
        }
        // `plan` refuses runs without user networking.
        Some(Plan::Take(take)) => {
            if let Some(forwarding) = &mut forwarding {
                forwarding.take = Some(take);
            }
        }
        None => {}
    }
    cmd.args(&opts.qemu_args);
    if opts.merge_memory {
        crate::merge::mergeable(&mut cmd);
    }
    let sinks = sinks(opts, image)?;
    Ok(Qemu { command: cmd, forwarding, tap, sinks, channel, restore, gate: None })
}

/// The files the guest's channel streams go to: its trace when it was
/// built with tracing (`--trace FILE`, by default
/// `.unikernel/IMAGE.trace.json`), its packet capture when the image has
/// the `pcap` component (`--pcap FILE`, by default `.unikernel/IMAGE.pcap`);
/// its metrics, printed at exit with `--metrics`.
fn sinks(opts: &Options, image: &Image) -> Result<Sinks, String> {
    let mut sinks = Sinks::default();
    let sends = |id: u16| image.records.iter().any(|r| r.kind == Kind::Stream && r.arg0 == u64::from(id));
    let trace = match &opts.trace {
        Some(_) if !sends(stream::TRACE) => {
            return Err(format!(
                "--trace: {} was built without tracing; build it with the `trace` feature \
                 (`cargo run --features trace` here, `--features unikernel/trace` in a crate depending on unikernel)",
                opts.image.display()
            ));
        }
        Some(path) => Some(path.clone()),
        None if sends(stream::TRACE) => Some(data_file(&opts.image, package_dir().as_deref(), ".trace.json")?),
        None => None,
    };
    if let Some(path) = trace {
        eprintln!("unikernel-runner: the guest's trace goes to {}", path.display());
        sinks.trace(&path)?;
    }
    if opts.metrics {
        if !sends(stream::METRICS) {
            return Err(format!(
                "--metrics: {} does not export its metrics; name `unikernel::metrics::at_exit` in its \
                 #[unikernel(...)] (an image that does not carries no exporter)",
                opts.image.display()
            ));
        }
        sinks.at_exit(stream::METRICS);
    }
    let captures = sends(stream::PCAP);
    let pcap = match &opts.pcap {
        Some(_) if !captures => {
            return Err(format!(
                "--pcap: {} does not capture packets; name `unikernel_net::pcap` in its #[unikernel(...)] \
                 (an image that does not carries no capture code)",
                opts.image.display()
            ));
        }
        Some(path) => path.clone(),
        None if captures => data_file(&opts.image, package_dir().as_deref(), ".pcap")?,
        None => return Ok(sinks),
    };
    eprintln!("unikernel-runner: the guest's packets go to {}", pcap.display());
    sinks.file(stream::PCAP, &pcap)?;
    Ok(sinks)
}

/// What backs a device on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// A tap, or user networking with the `--forward`s.
    Network,
    /// The `--disk`.
    Disk,
    /// The host's `/dev/urandom`.
    Entropy,
    /// A console port writing to a file ([`data_file`]).
    LogFile,
    /// A serial port carrying the host channel to the runner.
    Channel,
}

/// A virtio device type the runner can attach: a device id of the virtio
/// specification, the QEMU model, and its host side.
#[derive(Debug, PartialEq, Eq)]
struct VirtioType {
    id: u16,
    /// The instance of `id` (`Record::index`).
    index: u16,
    model: &'static str,
    backend: Backend,
}

/// Every device type this runner attaches, in the order it adds them.
const VIRTIO: &[VirtioType] = &[
    VirtioType { id: virtio::NET, index: 0, model: "virtio-net", backend: Backend::Network },
    VirtioType { id: virtio::BLOCK, index: 0, model: "virtio-blk", backend: Backend::Disk },
    VirtioType { id: virtio::CONSOLE, index: 0, model: "virtio-serial", backend: Backend::LogFile },
    VirtioType {
        id: virtio::CONSOLE,
        index: virtio::CHANNEL_CONSOLE,
        model: "virtio-serial",
        backend: Backend::Channel,
    },
    VirtioType { id: virtio::ENTROPY, index: 0, model: "virtio-rng", backend: Backend::Entropy },
];

/// How virtio devices attach: to microvm's and virt's virtio-mmio slots,
/// or to the PCI bus of q35 and pc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Mmio,
    Pci,
}

impl Transport {
    fn of(machine: Machine, arch: Arch) -> Self {
        match (arch, machine) {
            (Arch::Aarch64, _) | (Arch::X86_64, Machine::Microvm | Machine::Firecracker) => Self::Mmio,
            (Arch::X86_64, Machine::Q35 | Machine::Pc) => Self::Pci,
        }
    }
}

impl VirtioType {
    /// QEMU's device on `transport`.
    fn model(&self, transport: Transport) -> String {
        let suffix = match transport {
            Transport::Mmio => "device",
            Transport::Pci => "pci",
        };
        format!("{}-{suffix}", self.model)
    }
}

/// The devices an image's records ask for.
#[derive(Debug, PartialEq, Eq)]
struct Devices {
    /// Each type once, in [`VIRTIO`] order.
    attached: Vec<&'static VirtioType>,
    /// What was asked for but is optional and unknown here, to tell the user.
    ignored: Vec<String>,
    /// The I/O port of the exit device the target asked for.
    exit_port: Option<u16>,
}

impl Devices {
    /// Refuses a required record this runner cannot satisfy, naming the
    /// component that wrote it.
    fn of(records: &[Record]) -> Result<Self, String> {
        let mut ids = Vec::new();
        let mut ignored = Vec::new();
        let mut exit_port = None;
        for record in records {
            let (component, required) = (record.requester(), record.is_required());
            let unmet = match record.kind {
                // Read by `forwards`, when a network device is attached.
                Kind::Component | Kind::Forward => continue,
                Kind::ExitPort => {
                    let port = u16::try_from(record.arg0).map_err(|_| {
                        format!(
                            "`{component}` asks for an exit device at I/O port {:#x}, which does not exist",
                            record.arg0
                        )
                    })?;
                    exit_port = Some(port);
                    continue;
                }
                Kind::Virtio if VIRTIO.iter().any(|t| (t.id, t.index) == (record.device, record.index)) => {
                    ids.push((record.device, record.index));
                    continue;
                }
                Kind::Virtio if record.index != 0 => {
                    format!("a second virtio device of type {} (instance {})", record.device, record.index)
                }
                Kind::Virtio => format!("a virtio device of type {}", record.device),
                // Given a place by `sinks`.
                Kind::Stream if crate::channel::STREAMS.iter().any(|&s| u64::from(s) == record.arg0) => continue,
                Kind::Stream => format!("a place for host-channel stream {}", record.arg0),
                Kind::Unknown(kind) => format!("a VMM feature of record kind {kind}"),
            };
            if required {
                return Err(format!(
                    "component `{component}` needs {unmet}, which this unikernel-runner does not provide: update it"
                ));
            }
            ignored.push(format!("ignoring {unmet}, asked for by component `{component}` (optional)"));
        }
        let attached = VIRTIO.iter().filter(|t| ids.contains(&(t.id, t.index))).collect();
        Ok(Self { attached, ignored, exit_port })
    }

    /// QEMU's exit device where the target's record put it. Without one the
    /// guest could not report its status.
    fn exit_device(&self) -> Result<String, String> {
        let port = self.exit_port.ok_or(
            "the image asks for no exit device, so it could not report its exit status: rebuild it with the unikernel crates of this runner's version",
        )?;
        Ok(format!("isa-debug-exit,iobase={port:#x},iosize=0x04"))
    }
}

/// The disk image, which is created (sparse) when missing, or a URL QEMU
/// opens itself.
fn disk(cmd: &mut Command, opts: &Options) -> Result<(), String> {
    cmd.args(["-drive", &drive(&disk_file(opts)?)]);
    Ok(())
}

/// The `--disk` (created when it is a missing file), or the default disk.
fn disk_file(opts: &Options) -> Result<String, String> {
    match &opts.disk {
        Some(Disk::Url(url)) => Ok(url.clone()),
        Some(Disk::File(path)) => created(path, opts.disk_size),
        None => default_disk(&opts.image, package_dir().as_deref(), opts.disk_size),
    }
}

/// The `-drive` value for `file`.
fn drive(file: &str) -> String {
    format!("file={},if=none,format=raw,id=disk0", escaped(file))
}

/// `value` inside a QEMU option, whose syntax reads `,,` as a comma.
fn escaped(value: &str) -> String {
    value.replace(',', ",,")
}

/// `path`, created (sparse, `size` bytes) when missing.
fn created(path: &Path, size: u64) -> Result<String, String> {
    if !path.exists() {
        let file =
            std::fs::File::create(path).map_err(|e| format!("cannot create disk image {}: {e}", path.display()))?;
        file.set_len(size).map_err(|e| format!("cannot size disk image {}: {e}", path.display()))?;
        eprintln!("unikernel-runner: created disk image {} ({} MiB)", path.display(), size >> 20);
    }
    Ok(path.display().to_string())
}

/// The package whose image this is, as cargo names it to a target runner
/// (`CARGO_MANIFEST_DIR`). Not when cargo started the runner itself
/// (`runner = "cargo run -p unikernel-runner --"`, as in this workspace): the
/// directory is then the runner's, and the image's own place decides.
fn package_dir() -> Option<PathBuf> {
    let started_by_cargo_run = std::env::var("CARGO_PKG_NAME").is_ok_and(|p| p == env!("CARGO_PKG_NAME"));
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    dir.filter(|_| !started_by_cargo_run)
}

/// The disk image used without `--disk`, created when missing:
/// `.unikernel/disk.img` in the `package` directory (cargo names it to runners
/// in `CARGO_MANIFEST_DIR`); run by hand, in the directory holding the
/// image's `target` directory, else in the current one. Never inside a
/// target directory, which `cargo clean` deletes.
fn default_disk(image: &Path, package: Option<&Path>, size: u64) -> Result<String, String> {
    created(&data_dir(image, package)?.join("disk.img"), size)
}

/// The runner's data directory (see [`default_disk`]), created when missing.
fn data_dir(image: &Path, package: Option<&Path>) -> Result<PathBuf, String> {
    let home = package.unwrap_or_else(|| {
        let mut dirs = image.ancestors().skip(1);
        dirs.find(|d| d.file_name().is_some_and(|n| n == "target")).and_then(Path::parent).unwrap_or(Path::new(""))
    });
    let dir = home.join(DATA_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// A file of the image's, rewritten each run: `.unikernel/IMAGESUFFIX`
/// beside the default disk (a virtio console's log, a packet capture).
fn data_file(image: &Path, package: Option<&Path>, suffix: &str) -> Result<PathBuf, String> {
    let name = image.file_name().map_or("image".into(), |n| n.to_string_lossy());
    Ok(data_dir(image, package)?.join(format!("{name}{suffix}")))
}

/// The forwards to open: the user's (`--forward`, `UNIKERNEL_FORWARD`), else
/// the image's records (`#[unikernel(forward = "...")]`; `"none"` is one
/// record that forwards nothing), else `forward::DEFAULT`, as the hosted
/// target decides.
pub fn forwards(opts: &Options, records: &[Record]) -> Vec<Forward> {
    if !opts.forwards.is_empty() {
        return opts.forwards.clone();
    }
    if records.iter().any(|r| r.kind == Kind::Forward) {
        return records.iter().filter_map(Record::as_forward).collect();
    }
    vec![forward::DEFAULT]
}

/// A tap, or user networking with a monitor that opens the port forwards
/// (returned) when the guest listens. A printed command, which runs without
/// the runner, has its forwards open from the start instead.
fn network(cmd: &mut Command, opts: &Options, forwards: Vec<Forward>) -> Result<Option<Forwarding>, String> {
    let (netdev, forwarding) = match &opts.tap {
        Some(tap) => (format!("tap,id=net0,ifname={tap},script=no,downscript=no"), None),
        None if opts.print_command => (user_netdev(&forwards), None),
        None => {
            let monitor = Monitor::attach(cmd).map_err(|e| format!("cannot make QEMU's monitor socket: {e}"))?;
            ("user,id=net0".to_string(), Some(Forwarding::new(forwards, monitor)))
        }
    };
    cmd.args(["-netdev", &netdev]);
    Ok(forwarding)
}

/// User networking with `forwards` open from QEMU's start.
fn user_netdev(forwards: &[Forward]) -> String {
    forwards.iter().fold("user,id=net0".to_string(), |spec, f| format!("{spec},hostfwd={}", rule(f)))
}

/// QEMU's rule for `forward`, e.g. `tcp:127.0.0.1:8080-:80`.
fn rule(forward: &Forward) -> String {
    format!("{}:{}-:{}", forward.protocol.name(), forward.host_address(), forward.guest)
}

/// The `--forward`s of a run on user networking. QEMU starts without them;
/// each opens when the guest prints that it listens on the forward's guest
/// port. A host port that QEMU accepted connections on before the guest
/// listened would hand them to a guest that drops or resets them, and
/// slirp retries a lost SYN only after a second.
struct Forwarding {
    forwards: Vec<Forward>,
    monitor: Monitor,
    /// Forwards opened, and guest ports no forward reaches (told once).
    opened: HashSet<Forward>,
    unreached: HashSet<(Protocol, u16)>,
    /// Told each forward as it opens (`--on-demand`).
    ready: Option<Sender<Ready>>,
    /// `--snapshot` to take once the guest listens behind every forward,
    /// before any opens; the ports it listens on meanwhile.
    take: Option<Take>,
    announced: Vec<Listening>,
}

impl Forwarding {
    fn new(forwards: Vec<Forward>, monitor: Monitor) -> Self {
        Self {
            forwards,
            monitor,
            opened: HashSet::new(),
            unreached: HashSet::new(),
            ready: None,
            take: None,
            announced: Vec::new(),
        }
    }

    /// Fails, as QEMU would have at start, when a host port is taken
    /// (or below 1024 without root).
    fn check_ports(&self) -> Result<(), String> {
        for forward in &self.forwards {
            let free = match forward.protocol {
                Protocol::Tcp => std::net::TcpListener::bind(forward.host_address()).map(drop),
                Protocol::Udp => std::net::UdpSocket::bind(forward.host_address()).map(drop),
            };
            free.map_err(|_| refused(forward))?;
        }
        Ok(())
    }

    /// The guest listens: opens the forward to that port and says where to
    /// connect. Returns the forward QEMU refused to open.
    fn open(&mut self, listening: Listening) -> Result<(), Forward> {
        if self.take.is_some() {
            self.announced.push(listening);
            if !crate::snapshot::ready(&self.forwards, &self.announced) {
                return Ok(());
            }
            if let Some(take) = self.take.take()
                && let Err(e) = take.save(&mut self.monitor)
            {
                eprintln!("unikernel-runner: --snapshot: {e}; going on without one");
            }
            return std::mem::take(&mut self.announced).into_iter().try_for_each(|l| self.open(l));
        }
        let Some(&forward) = forward::to_guest(&self.forwards, listening.protocol, listening.port) else {
            if self.unreached.insert((listening.protocol, listening.port)) {
                let (name, udp) = match listening.protocol {
                    Protocol::Tcp => ("TCP", ""),
                    Protocol::Udp => ("UDP", "udp:"),
                };
                let port = listening.port;
                eprintln!(
                    "unikernel-runner: the guest listens on {name} port {port}, which no forward reaches: add --forward {udp}HOST:{port}"
                );
            }
            return Ok(());
        };
        if self.opened.contains(&forward) {
            return Ok(());
        }
        match self.monitor.human(&format!("hostfwd_add net0 {}", rule(&forward))) {
            Ok(reply) => {
                if let Some(refused) = refused_forward(&reply) {
                    return Err(refused);
                }
                self.opened.insert(forward);
                let reachable =
                    Reachable { protocol: forward.protocol, at: forward.host_address(), port: forward.guest };
                eprintln!("unikernel-runner: listening on {reachable}");
                if let Some(ready) = &self.ready {
                    // The receiver is gone only when the runner stops serving.
                    let _ = ready.send((forward, SocketAddrV4::new(forward::HOST_ADDRESS, forward.host)));
                }
            }
            Err(e) => eprintln!("unikernel-runner: cannot open the forward {}: {e}", rule(&forward)),
        }
        Ok(())
    }
}

/// The address a guest on a tap says it listens at, unless it names one no
/// guest on a tap can hold: the guest is untrusted, and the runner splices
/// its clients' connections there, so "127.0.0.1" must not steer them to a
/// service of the host's own.
fn guest_address(address: Ipv4Addr) -> Option<Ipv4Addr> {
    let foreign = address.is_loopback()
        || address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || address.is_link_local();
    if foreign {
        eprintln!("unikernel-runner: the guest says it listens at {address}, which is not a guest's address: ignored");
        return None;
    }
    Some(address)
}

/// How a QEMU run ended.
pub enum Outcome {
    /// The run ends with this status: the guest's, [`TIMED_OUT`], or 128 + N
    /// when signal N stopped it (as a shell reports it).
    Exit(u8),
    /// QEMU failed; `printed` says whether the guest had written anything.
    QemuFailed { reason: String, printed: bool },
}

/// What QEMU said on stderr that changes how the run ends.
#[derive(Default)]
struct Said {
    /// An accelerator's internal error: QEMU then pauses the guest and
    /// waits forever.
    internal_error: AtomicBool,
    /// The signal QEMU caught and shut down on; 0 for none.
    signal: AtomicI32,
    /// A `--forward` whose host port QEMU could not listen on.
    refused: Mutex<Option<Forward>>,
}

/// Runs QEMU to the end. Stop signals the runner receives meanwhile are
/// passed on to QEMU, and the run ends when QEMU does.
pub fn run(qemu: Qemu, image: &Image, timeout: Option<Duration>, stops: &Stops) -> Result<Outcome, String> {
    let Qemu { mut command, mut forwarding, tap, sinks, channel, restore, gate } = qemu;
    if let Some(signal) = stops.take() {
        return Ok(stopped(signal));
    }
    if let Some(forwarding) = &forwarding {
        forwarding.check_ports()?;
    }
    // Called on the main thread, as `die_with_runner` requires.
    #[cfg(target_os = "linux")]
    signals::die_with_runner(&mut command);
    let mut child = command
        // A restored guest learns it was on the console's input.
        .stdin(if restore.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", emulator(image.arch).binary))?;
    if let Some(forwarding) = &mut forwarding {
        forwarding.monitor.spawned();
    }
    // QEMU holds the snapshot's descriptor now.
    let restore = restore.map(|(path, _stream)| path);
    // Held open to the end: QEMU reads no more of the console after EOF.
    let mut console = restore.as_ref().map(|_| child.stdin.take().expect("stdin is piped"));
    let held = match &mut forwarding {
        Some(forwarding) => {
            resume(&mut forwarding.monitor, gate.as_ref(), restore.as_deref(), console.as_mut(), stops, &mut child)
        }
        None => Ok(None),
    };
    if !matches!(held, Ok(None)) {
        let _ = child.kill();
        let _ = child.wait();
        if let Ok(Some(signal)) = held {
            return Ok(stopped(signal));
        }
        let mut said = String::new();
        let _ = child.stderr.take().map(|mut s| std::io::Read::read_to_string(&mut s, &mut said));
        return Err(format!("{}\n{}", held.err().unwrap_or_default(), said.trim_end()));
    }
    // QEMU holds its end now: its exit ends the runner's reads.
    let channel = channel.map(|(ours, _theirs)| ours);
    let router = Router::new(sinks);
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let said = Said::default();
    let mut forwarded = None;
    let started = Instant::now();
    let status = std::thread::scope(|scope| {
        let streamer = scope.spawn(|| {
            crate::console::stream(stdout, image, &router, |listening| {
                if let Some(Err(forward)) = forwarding.as_mut().map(|f| f.open(listening)) {
                    *said.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(forward);
                }
                if let Some((forwards, Some(ready))) = &tap
                    && let (Some(&forward), Some(address)) = (
                        forward::to_guest(forwards, listening.protocol, listening.port),
                        listening.address.and_then(guest_address),
                    )
                {
                    let _ = ready.send((forward, SocketAddrV4::new(address, listening.port)));
                }
            })
        });
        scope.spawn(|| watch_stderr(stderr, &said));
        if let Some(channel) = channel {
            scope.spawn(|| router.read_channel(channel));
        }
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break Ok(status);
            }
            if let Some(signal) = stops.take() {
                signals::forward(&child, signal);
                forwarded = Some(signal);
            }
            let timed_out = timeout.is_some_and(|t| started.elapsed() >= t);
            let refused = said.refused.lock().unwrap_or_else(|e| e.into_inner()).is_some();
            if timed_out || refused || said.internal_error.load(Ordering::Relaxed) {
                let _ = child.kill();
                let _ = child.wait();
                break Err(timed_out);
            }
            // Short sleeps while the guest is likely to finish soon.
            let pause = if started.elapsed() < Duration::from_millis(200) { 1 } else { 10 };
            std::thread::sleep(Duration::from_millis(pause));
        };
        let seen = streamer.join().unwrap_or(crate::console::Seen { printed: true, exit: None });
        Ok::<_, String>((status, seen))
    })?;
    router.finish(image);
    // QEMU got the runner's stop signal too (from the runner, or from the
    // terminal with the rest of the process group) and shut down on it.
    if let Some(signal) = forwarded.or_else(|| stops.take()) {
        return Ok(stopped(signal));
    }
    if let Some(forward) = said.refused.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(refused(&forward));
    }
    match status {
        (Ok(status), seen) => {
            let caught = Some(said.signal.load(Ordering::Relaxed)).filter(|&s| s != 0);
            if let Some(signal) = qemu_signal(status, caught) {
                eprintln!("unikernel-runner: QEMU was stopped by signal {}", signals::describe(signal));
                return Ok(Outcome::Exit(signals::status(signal)));
            }
            Ok(match (guest_status(status.code()), seen.exit) {
                (Ok(code), _) => Outcome::Exit(code),
                // Without an exit device (`--machine firecracker`, aarch64)
                // the guest printed its status and stopped: QEMU ends with 0.
                (Err(_), Some(code)) if status.code() == Some(0) => Outcome::Exit(code),
                (Err(reason), _) => Outcome::QemuFailed { reason, printed: seen.printed },
            })
        }
        (Err(true), _) => {
            eprintln!("unikernel-runner: guest timed out after {:?}; stopped it", timeout.unwrap_or_default());
            Ok(Outcome::Exit(TIMED_OUT))
        }
        (Err(false), seen) => Ok(Outcome::QemuFailed {
            reason: "the accelerator stopped the guest (see QEMU's error above)".into(),
            printed: seen.printed,
        }),
    }
}

/// Lets a paused guest run: a restored one once QEMU loaded it, a `--warm`
/// one once its `gate` says go. Returns the stop signal that came first.
fn resume(
    monitor: &mut Monitor,
    gate: Option<&Receiver<()>>,
    restore: Option<&Path>,
    console: Option<&mut std::process::ChildStdin>,
    stops: &Stops,
    qemu: &mut Child,
) -> Result<Option<i32>, String> {
    let loading = restore.map(|path| crate::snapshot::loaded(monitor, path)).transpose()?;
    if let Some(gate) = gate {
        if restore.is_none() {
            // QMP's greeting and negotiation now, not on the connection.
            monitor.execute(r#"{"execute":"query-status"}"#).map_err(|e| format!("QEMU's monitor: {e}"))?;
        }
        eprintln!("unikernel-runner: on demand: QEMU is up, the guest paused until a connection");
        if let Some(signal) = opened(gate, stops, qemu)? {
            return Ok(Some(signal));
        }
    }
    match (restore, console, loading) {
        (Some(path), Some(console), Some(loading)) => crate::snapshot::resume(monitor, console, path, loading),
        _ if gate.is_some() => {
            monitor.execute(r#"{"execute":"cont"}"#).map(drop).map_err(|e| format!("QEMU's monitor: {e}"))
        }
        _ => Ok(()),
    }
    .map(|()| None)
}

/// Waits until `gate` opens; returns the stop signal that came first, or
/// fails when the waiting QEMU ends.
fn opened(gate: &Receiver<()>, stops: &Stops, qemu: &mut Child) -> Result<Option<i32>, String> {
    loop {
        if let Some(signal) = stops.take() {
            return Ok(Some(signal));
        }
        if let Ok(Some(status)) = qemu.try_wait() {
            return Err(format!("QEMU ended ({status}) while the guest waited for a connection"));
        }
        match gate.recv_timeout(Duration::from_millis(20)) {
            Ok(()) => return Ok(None),
            Err(RecvTimeoutError::Timeout) => {}
            // The watcher asks for a stop before it lets go (else it panicked).
            Err(RecvTimeoutError::Disconnected) => return Ok(Some(stops.take().unwrap_or(libc::SIGTERM))),
        }
    }
}

/// The end of a run stopped by the runner's stop `signal`.
fn stopped(signal: i32) -> Outcome {
    eprintln!("unikernel-runner: stopped by signal {}", signals::describe(signal));
    Outcome::Exit(signals::status(signal))
}

/// Passes QEMU's stderr through, noting what [`Said`] holds; a refused
/// forward is left to the runner's own message.
fn watch_stderr(stderr: impl std::io::Read, said: &Said) {
    use std::io::BufRead;
    for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
        if let Some(forward) = refused_forward(&line) {
            *said.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(forward);
            continue;
        }
        eprintln!("{line}");
        if line.contains("internal error") {
            said.internal_error.store(true, Ordering::Relaxed);
        }
        if let Some(signal) = caught_signal(&line) {
            said.signal.store(signal, Ordering::Relaxed);
        }
    }
}

/// The signal in QEMU's `terminating on signal 15 from pid 1234 (bash)`,
/// after which it exits with status 0, as a guest's triple fault does.
fn caught_signal(line: &str) -> Option<i32> {
    let rest = line.split_once("terminating on signal ")?.1;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The signal that stopped QEMU: one it died of, or one it caught and
/// then shut down on.
fn qemu_signal(status: ExitStatus, caught: Option<i32>) -> Option<i32> {
    status.signal().or(caught.filter(|_| status.code() == Some(0)))
}

/// The forward in QEMU's
/// `Could not set up host forwarding rule 'tcp:127.0.0.1:8080-:80'`.
fn refused_forward(line: &str) -> Option<Forward> {
    let rule = line.split_once("Could not set up host forwarding rule '")?.1.split('\'').next()?;
    let (host, guest) = rule.split_once('-')?;
    let port = |address: &str| address.rsplit(':').next()?.parse().ok();
    let protocol = if host.starts_with("udp:") { Protocol::Udp } else { Protocol::Tcp };
    Some(Forward { protocol, host: port(host)?, guest: port(guest)? })
}

/// What to tell the user when QEMU cannot listen on a forward's host port.
fn refused(forward: &Forward) -> String {
    let (port, proto) = (forward.host, if forward.protocol == Protocol::Udp { "udp:" } else { "" });
    let why = if port < 1024 {
        "needs root (ports below 1024) or is in use"
    } else {
        "is already in use (another unikernel?)"
    };
    format!("host port {port} {why}: pick another with --forward {proto}HOST:GUEST")
}

/// QEMU's exit status after the guest wrote to the exit device becomes the
/// guest's status (`unikernel_core::exit::device_status`).
fn guest_status(code: Option<i32>) -> Result<u8, String> {
    match code {
        Some(c) if let Some(status) = exit::device_status(c) => Ok(status),
        Some(0) => Err("the guest stopped without reporting an exit status (triple fault or shutdown)".into()),
        Some(c) => Err(format!("QEMU failed with status {c}")),
        None => Err("QEMU was killed by a signal".into()),
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
        .unwrap_or(None)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// QEMU's path; installs Debian's package when missing and allowed to.
fn find_or_install(arch: Arch) -> Result<PathBuf, String> {
    let Emulator { binary, package } = emulator(arch);
    if let Some(path) = on_path(binary) {
        return Ok(path);
    }
    let install = format!("apt-get install -y {package}");
    if !is_root() || on_path("apt-get").is_none() {
        return Err(format!(
            "{binary} not found. Install it with:\n    sudo {install}\n(Debian/Ubuntu; elsewhere install your distribution's QEMU for {arch:?})"
        ));
    }
    eprintln!("unikernel-runner: {binary} not found; running `{install}`");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=600", "-q"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            // apt's progress belongs on stderr: stdout is the guest's console.
            .stdout(std::io::stderr())
            .status()
            .is_ok_and(|s| s.success())
    };
    // A fresh machine may have no package lists yet.
    let installed = apt(&["install", "-y", package]) || (apt(&["update"]) && apt(&["install", "-y", package]));
    match on_path(binary) {
        Some(path) if installed => Ok(path),
        _ => Err(format!("installing QEMU failed; install it with `{install}` and try again")),
    }
}

/// The command as one line a shell would accept.
pub fn shell_words(qemu: &Qemu) -> String {
    let cmd = &qemu.command;
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| {
            let a = a.to_string_lossy();
            if a.chars().all(|c| c.is_ascii_alphanumeric() || "-_=,./:".contains(c)) {
                a.into_owned()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::{
        Arch, Backend, Devices, Forward, Machine, Protocol, Record, Transport, VIRTIO, VirtioType, caught_signal,
        data_file, default_disk, drive, forward, forwards, guest_address, guest_status, package_dir, qemu_signal,
        refused, refused_forward, virtio,
    };
    use std::os::unix::process::ExitStatusExt;
    use std::path::{Path, PathBuf};
    use std::process::ExitStatus;

    /// A fresh package directory with a built image under its `target/`.
    fn package(name: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("unikernel-runner-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let image = dir.join("target/x86_64-unknown-none/debug/examples/kv");
        std::fs::create_dir_all(image.parent().unwrap()).unwrap();
        std::fs::write(&image, b"an image").unwrap();
        (dir, image)
    }

    #[test]
    fn the_runners_own_package_is_not_the_images() {
        // cargo runs this test as it runs the runner in this workspace:
        // with the runner's CARGO_MANIFEST_DIR and CARGO_PKG_NAME.
        assert_eq!(std::env::var("CARGO_PKG_NAME").as_deref(), Ok("unikernel-runner"));
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        assert_eq!(package_dir(), None);
    }

    #[test]
    fn the_default_disk_is_next_to_cargo_toml_and_survives_cargo_clean() {
        let (dir, image) = package("clean");
        let disk = default_disk(&image, Some(&dir), 1 << 20).unwrap();
        assert_eq!(Path::new(&disk), dir.join(".unikernel/disk.img"));
        std::fs::write(&disk, b"the user's data").unwrap();
        // `cargo clean`, then the next run.
        std::fs::remove_dir_all(dir.join("target")).unwrap();
        assert_eq!(default_disk(&image, Some(&dir), 1 << 20).unwrap(), disk, "the same disk across runs");
        // Another CARGO_TARGET_DIR: still the package's disk.
        let elsewhere = std::env::temp_dir().join("elsewhere/x86_64-unknown-none/debug/examples/kv");
        assert_eq!(default_disk(&elsewhere, Some(&dir), 1 << 20).unwrap(), disk);
        assert_eq!(std::fs::read(&disk).unwrap(), b"the user's data", "reused, not recreated");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_cargo_the_default_disk_is_beside_the_target_directory() {
        let (dir, image) = package("by-hand");
        let disk = default_disk(&image, None, 1 << 20).unwrap();
        assert_eq!(Path::new(&disk), dir.join(".unikernel/disk.img"));
        assert_eq!(std::fs::metadata(&disk).unwrap().len(), 1 << 20);
        assert!(!Path::new(&disk).starts_with(dir.join("target")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn entropy_and_console_devices_have_their_host_side() {
        let records =
            [Record::virtio(virtio::ENTROPY, "virtio-rng"), Record::virtio(virtio::CONSOLE, "virtio-console")];
        let devices = Devices::of(&records).unwrap();
        let models = |machine| {
            devices.attached.iter().map(|t| t.model(Transport::of(machine, Arch::X86_64))).collect::<Vec<_>>()
        };
        assert_eq!(models(Machine::Microvm), ["virtio-serial-device", "virtio-rng-device"]);
        assert_eq!(models(Machine::Q35), ["virtio-serial-pci", "virtio-rng-pci"]);
        assert_eq!(
            devices.attached.iter().map(|t| t.backend).collect::<Vec<_>>(),
            [Backend::LogFile, Backend::Entropy]
        );
    }

    #[test]
    fn the_channel_console_is_a_second_console_beside_the_logs() {
        let channel = Record::virtio(virtio::CONSOLE, "b").instance(virtio::CHANNEL_CONSOLE).required();
        let both = Devices::of(&[channel, Record::virtio(virtio::CONSOLE, "a").required()]).unwrap();
        let backends = both.attached.iter().map(|t| (t.id, t.backend)).collect::<Vec<_>>();
        assert_eq!(backends, [(virtio::CONSOLE, Backend::LogFile), (virtio::CONSOLE, Backend::Channel)]);
        assert_eq!(
            Devices::of(&[channel]).unwrap().attached.iter().map(|t| t.backend).collect::<Vec<_>>(),
            [Backend::Channel]
        );
        let third = Record::virtio(virtio::CONSOLE, "more").instance(2).required();
        assert!(Devices::of(&[third]).unwrap_err().contains("a second virtio device of type 3 (instance 2)"));
    }

    #[test]
    fn the_console_log_is_named_after_the_image_beside_the_default_disk() {
        let (dir, image) = package("console");
        let log = data_file(&image, Some(&dir), "-console.log").unwrap();
        assert_eq!(log, dir.join(".unikernel/kv-console.log"));
        assert_eq!(data_file(&image, None, "-console.log").unwrap(), log, "run by hand: beside the target directory");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_comma_in_the_disk_path_stays_in_the_path() {
        assert_eq!(drive("/tmp/a,b.img"), "file=/tmp/a,,b.img,if=none,format=raw,id=disk0");
        assert_eq!(
            drive("nbd+unix:///?socket=/tmp/d.sock"),
            "file=nbd+unix:///?socket=/tmp/d.sock,if=none,format=raw,id=disk0"
        );
    }

    /// A record of a kind this runner does not know, as a newer guest writes.
    fn future_kind(required: bool) -> Record {
        let mut bytes = Record::component("thermo").encode();
        bytes[8] = 42;
        let record = unikernel_core::vmm::parse(&bytes).unwrap()[0];
        if required { record.required() } else { record }
    }

    #[test]
    fn devices_come_from_records_by_virtio_id_in_a_fixed_order() {
        let records = [
            Record::component("a"),
            Record::virtio(virtio::BLOCK, "a").required(),
            Record::virtio(virtio::NET, "b").required(),
            Record::virtio(virtio::BLOCK, "c"),
        ];
        let devices = Devices::of(&records).unwrap();
        let models =
            |machine, arch| devices.attached.iter().map(|t| t.model(Transport::of(machine, arch))).collect::<Vec<_>>();
        assert_eq!(models(Machine::Microvm, Arch::X86_64), ["virtio-net-device", "virtio-blk-device"]);
        assert_eq!(models(Machine::Q35, Arch::X86_64), ["virtio-net-pci", "virtio-blk-pci"]);
        assert_eq!(models(Machine::Pc, Arch::X86_64), ["virtio-net-pci", "virtio-blk-pci"]);
        assert_eq!(
            models(Machine::Microvm, Arch::Aarch64),
            ["virtio-net-device", "virtio-blk-device"],
            "virt's mmio slots"
        );
        assert_eq!(devices.attached.iter().map(|t| t.backend).collect::<Vec<_>>(), [Backend::Network, Backend::Disk]);
        assert!(devices.ignored.is_empty());
        assert_eq!(Devices::of(&[Record::component("a")]).unwrap().attached, Vec::<&VirtioType>::new());
    }

    #[test]
    fn a_required_record_the_runner_cannot_meet_is_refused_an_optional_one_ignored() {
        assert_eq!(
            Devices::of(&[future_kind(true)]).unwrap_err(),
            "component `thermo` needs a VMM feature of record kind 42, which this unikernel-runner does not provide: update it"
        );
        let ignored = Devices::of(&[future_kind(false), Record::virtio(virtio::NET, "thermo")]).unwrap();
        assert_eq!(ignored.attached, [&VIRTIO[0]]);
        assert_eq!(
            ignored.ignored,
            ["ignoring a VMM feature of record kind 42, asked for by component `thermo` (optional)"]
        );
        let unknown = Record::virtio(200, "thermo");
        assert!(Devices::of(&[unknown.required()]).unwrap_err().contains("needs a virtio device of type 200, which"));
        assert_eq!(Devices::of(&[unknown]).unwrap().ignored.len(), 1);
        let mut second = Record::virtio(virtio::BLOCK, "thermo").required();
        second.index = 1;
        assert!(Devices::of(&[second]).unwrap_err().contains("a second virtio device of type 2 (instance 1)"));
    }

    #[test]
    fn forwards_are_the_users_else_the_images_else_the_default() {
        let dns = [
            Forward { protocol: Protocol::Udp, host: 5353, guest: 53 },
            Forward { protocol: Protocol::Tcp, host: 5353, guest: 53 },
        ];
        let image = [Record::component("thermo"), Record::forward(dns[0], "main"), Record::forward(dns[1], "main")];
        let Ok(crate::options::Parsed::Run(mut opts)) = crate::options::parse(["img".to_string()]) else {
            panic!("options of a plain run")
        };
        assert_eq!(forwards(&opts, &image), dns);
        assert_eq!(forwards(&opts, &image[..1]), [forward::DEFAULT]);
        assert_eq!(forwards(&opts, &[Record::no_forward("main")]), []);
        let mine = Forward { protocol: Protocol::Tcp, host: 9000, guest: 53 };
        opts.forwards = vec![mine];
        assert_eq!(forwards(&opts, &image), [mine]);
    }

    #[test]
    fn the_exit_device_is_where_the_targets_record_puts_it() {
        let devices = Devices::of(&[Record::exit_port(0x501, "target").required()]).unwrap();
        assert_eq!(devices.exit_device().unwrap(), "isa-debug-exit,iobase=0x501,iosize=0x04");
        let none = Devices::of(&[Record::component("a")]).unwrap();
        assert!(none.exit_device().unwrap_err().contains("asks for no exit device"));
        let mut beyond = Record::exit_port(0, "target");
        beyond.arg0 = 0x1_0000;
        assert!(Devices::of(&[beyond]).unwrap_err().contains("I/O port 0x10000, which does not exist"));
    }

    #[test]
    fn exit_statuses_map_back_to_the_guest() {
        assert_eq!(guest_status(Some(3)), Ok(0));
        assert_eq!(guest_status(Some(5)), Ok(1));
        assert_eq!(guest_status(Some(((101 + 1) << 1) | 1)), Ok(101));
        assert!(guest_status(Some(1)).is_err(), "QEMU's own failure is not guest success");
        assert!(guest_status(Some(0)).is_err());
        assert!(guest_status(None).is_err());
    }

    #[test]
    fn a_guest_cannot_steer_tap_connections_to_the_host_itself() {
        for foreign in ["127.0.0.1", "127.9.9.9", "0.0.0.0", "255.255.255.255", "224.0.0.1", "169.254.1.1"] {
            assert_eq!(guest_address(foreign.parse().unwrap()), None, "{foreign}");
        }
        let guest = "10.10.0.2".parse().unwrap();
        assert_eq!(guest_address(guest), Some(guest));
    }

    #[test]
    fn a_caught_signal_is_told_apart_from_a_triple_fault() {
        let caught = caught_signal("qemu-system-x86_64: terminating on signal 15 from pid 1234 (bash)");
        assert_eq!(caught, Some(15));
        assert_eq!(caught_signal("qemu-system-x86_64: terminating on signal 1"), Some(1));
        assert_eq!(caught_signal("qemu-system-x86_64: warning: something else"), None);
        // QEMU exits 0 after catching the signal; a guest's triple fault exits 0 without the line.
        assert_eq!(qemu_signal(ExitStatus::from_raw(0), Some(15)), Some(15));
        assert_eq!(qemu_signal(ExitStatus::from_raw(0), None), None);
        // Killed outright (wait status: the signal number in the low bits).
        assert_eq!(qemu_signal(ExitStatus::from_raw(9), None), Some(9));
        // A guest's own exit status is not a signal, whatever the stderr said.
        assert_eq!(qemu_signal(ExitStatus::from_raw(5 << 8), Some(15)), None);
    }

    #[test]
    fn a_refused_forward_names_the_port_and_the_option() {
        let line = "qemu-system-x86_64: -netdev user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80: \
                    Could not set up host forwarding rule 'tcp:127.0.0.1:8080-:80'";
        let forward = refused_forward(line).expect("a forward");
        assert_eq!(forward, Forward { protocol: Protocol::Tcp, host: 8080, guest: 80 });
        assert_eq!(
            refused(&forward),
            "host port 8080 is already in use (another unikernel?): pick another with --forward HOST:GUEST"
        );
        let udp = refused_forward("Could not set up host forwarding rule 'udp:127.0.0.1:80-:7'").expect("udp");
        assert_eq!(udp, Forward { protocol: Protocol::Udp, host: 80, guest: 7 });
        assert_eq!(
            refused(&udp),
            "host port 80 needs root (ports below 1024) or is in use: pick another with --forward udp:HOST:GUEST"
        );
        assert_eq!(refused_forward("qemu-system-x86_64: -netdev user: Invalid parameter"), None);
        // The same text in QMP's reply to `hostfwd_add`, once the guest listens.
        let reply = r#"{"return": "Could not set up host forwarding rule 'tcp:127.0.0.1:8080-:80'\r\n"}"#;
        assert_eq!(refused_forward(reply), Some(forward));
        assert_eq!(refused_forward(r#"{"return": ""}"#), None);
    }
}
