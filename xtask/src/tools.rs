//! The host programs the tests use as real clients and servers: installed
//! from Debian's packages when missing and run as root, else named with the
//! exact command to install them.

use std::process::Command;

/// Program on PATH, and the Debian package that has it.
const TOOLS: &[(&str, &str)] = &[
    ("curl", "curl"),
    ("ip", "iproute2"),
    ("ping", "iputils-ping"),
    ("dnsmasq", "dnsmasq-base"),
    // SYN floods from spoofed addresses (targets/runner/tests/flood.rs).
    ("hping3", "hping3"),
    // Attaches to a guest started with --gdb (targets/runner/tests/gdb.rs).
    ("gdb", "gdb"),
    // Reads the guest's packet capture (targets/runner/tests/capture.rs).
    ("tcpdump", "tcpdump"),
    // Shows the `https` example's chain and tries old protocols (targets/runner/tests/https.rs).
    ("openssl", "openssl"),
    // Boots the aarch64 images (targets/runner/tests/aarch64.rs).
    ("qemu-system-aarch64", "qemu-system-arm"),
    // Read, copy and unpack the --oci-layout output (targets/runner/tests/oci.rs).
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    // Defines and starts the runner's libvirt domain (targets/runner/tests/libvirt.rs).
    ("virsh", "libvirt-clients"),
    ("libvirtd", "libvirt-daemon-system"),
    // Queries the dns example over UDP and TCP (targets/runner/tests/dns.rs).
    ("dig", "bind9-dnsutils"),
];

fn found(program: &str) -> bool {
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    // sbin holds ip and dnsmasq, which non-root PATHs often lack.
    std::env::split_paths(&dirs).chain(["/usr/sbin".into(), "/sbin".into()]).any(|d| d.join(program).is_file())
}

fn apt_get(args: &[&str]) -> bool {
    Command::new("apt-get")
        .args(["-o", "DPkg::Lock::Timeout=600", "-q"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success())
}

pub fn ensure() -> Result<(), String> {
    let missing: Vec<&str> = TOOLS.iter().filter(|(p, _)| !found(p)).map(|(_, pkg)| *pkg).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let command = format!("apt-get install -y {}", missing.join(" "));
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root || !found("apt-get") {
        return Err(format!("the tests need {}; install with:\n    sudo {command}", missing.join(", ")));
    }
    eprintln!("xtask: running `{command}`");
    let mut install = vec!["install", "-y"];
    install.extend(&missing);
    // A fresh machine may have no package lists yet.
    if apt_get(&install) || (apt_get(&["update"]) && apt_get(&install)) {
        Ok(())
    } else {
        Err(format!("`{command}` failed"))
    }
}
