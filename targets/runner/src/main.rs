//! `unikernel-runner IMAGE [OPTIONS] [--] [KERNEL ARGS]`: the cargo runner
//! for `x86_64-unknown-none`. Boots the image in QEMU with the devices its
//! records ask for, streams the serial console, and exits with the guest's
//! status, so `cargo run` and `cargo test` behave as for a host program.

mod channel;
mod console;
mod image;
mod merge;
mod oci;
mod on_demand;
mod options;
mod profile;
mod qemu;
mod ram;
mod rsp;
mod signals;
mod snapshot;
mod trace;

use std::process::ExitCode;

/// Status when the runner itself fails (bad arguments, QEMU missing, ...).
const RUNNER_ERROR: u8 = 2;

fn main() -> ExitCode {
    let opts = match options::parse(std::env::args().skip(1)) {
        Ok(options::Parsed::Run(opts)) => opts,
        Ok(options::Parsed::Help) => {
            print!("{}", options::HELP);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("unikernel-runner: {e}\n\n{}", options::HELP);
            return ExitCode::from(RUNNER_ERROR);
        }
    };
    let stops = match signals::Stops::catch() {
        Ok(stops) => stops,
        Err(e) => {
            eprintln!("unikernel-runner: {e}");
            return ExitCode::from(RUNNER_ERROR);
        }
    };
    match run(&opts, &stops) {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("unikernel-runner: {e}");
            ExitCode::from(RUNNER_ERROR)
        }
    }
}

fn run(opts: &options::Options, stops: &signals::Stops) -> Result<u8, String> {
    if let Some(dir) = &opts.oci_layout {
        // Read once: the bytes packaged are the bytes checked.
        let kernel = std::fs::read(&opts.image).map_err(|e| format!("cannot read {}: {e}", opts.image.display()))?;
        let image = image::Image::parse(&opts.image, &kernel)?;
        let tag = opts.oci_tag.as_deref().unwrap_or(oci::DEFAULT_TAG);
        let digest = oci::write(&kernel, &image, &opts.kernel_args, dir, tag)?;
        println!("oci:{}:{tag} {digest}", dir.display());
        return Ok(0);
    }
    let image = image::Image::read(&opts.image)?;
    let accel = qemu::choose_accel(opts.accel, image.arch)?;
    if opts.print_firecracker_config {
        println!("{}", qemu::firecracker_config(opts, &image)?);
        return Ok(0);
    }
    if opts.print_libvirt_xml {
        println!("{}", qemu::libvirt_domain(opts, &image, accel)?);
        return Ok(0);
    }
    if opts.print_command {
        println!("{}", qemu::shell_words(&qemu::command(opts, &image, accel)?));
        return Ok(0);
    }
    ram::check(opts, &image)?;
    if opts.merge_memory {
        merge::check()?;
    }
    if let Some(settings) = &opts.on_demand {
        return on_demand::serve(opts, settings, &image, accel, stops);
    }
    match boot(opts, &image, accel, stops)? {
        qemu::Outcome::Exit(status) => Ok(status),
        // KVM is opportunistic: when it fails before the guest ran, use TCG.
        qemu::Outcome::QemuFailed { reason, printed: false }
            if accel == qemu::Chosen::Kvm && opts.accel == options::Accel::Auto =>
        {
            eprintln!("unikernel-runner: KVM failed ({reason}); falling back to TCG");
            match boot(opts, &image, qemu::Chosen::Tcg { why: qemu::TcgReason::KvmFailed }, stops)? {
                qemu::Outcome::Exit(status) => Ok(status),
                qemu::Outcome::QemuFailed { reason, .. } => Err(reason),
            }
        }
        qemu::Outcome::QemuFailed { reason, .. } => Err(reason),
    }
}

/// The line that starts each guest.
fn banner(opts: &options::Options, image: &image::Image, accel: qemu::Chosen) {
    eprintln!(
        "unikernel-runner: booting {} on -M {} with {} ({}), {} RAM; components: {}",
        opts.image.display(),
        qemu::machine_name(opts, image),
        accel.name(),
        accel.why(),
        opts.memory,
        match image.components() {
            names if names.is_empty() => "none".to_string(),
            names => names.join(", "),
        }
    );
}

fn boot(
    opts: &options::Options,
    image: &image::Image,
    accel: qemu::Chosen,
    stops: &signals::Stops,
) -> Result<qemu::Outcome, String> {
    banner(opts, image, accel);
    let mut command = qemu::command(opts, image, accel)?;
    let profiler = match opts.profile {
        Some(_) => Some(
            profile::Profiler::attach(command.command_mut(), opts.profile_hz, image.extent.clone())
                .map_err(|e| format!("cannot make QEMU's gdb socket for --profile: {e}"))?,
        ),
        None => None,
    };
    if let Some(port) = opts.gdb {
        eprintln!(
            "unikernel-runner: the guest waits for gdb on {host}:{port}; attach with:\n    gdb -ex 'target remote {host}:{port}' {}",
            opts.image.display(),
            host = unikernel_core::forward::HOST_ADDRESS,
        );
    }
    let outcome = qemu::run(command, image, opts.timeout, stops);
    if let (Some(profiler), Some(file), Ok(qemu::Outcome::Exit(_))) = (profiler, &opts.profile, &outcome) {
        // The guest's status stands whatever happens to the profile.
        match profile::write(&profiler.finish(), image, &opts.image, file) {
            Ok(summary) => eprintln!("unikernel-runner: {summary}"),
            Err(e) => eprintln!("unikernel-runner: {e}"),
        }
    }
    outcome
}
