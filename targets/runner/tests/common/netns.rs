//! A network namespace with a tap device for a guest, so tests can reach
//! it at a real address (no user networking in between) and touch nothing
//! outside the namespace.

use super::guest::{run, text};
use std::process::Output;

/// A network namespace with a tap device `tap0` at 10.10.0.1/24; deleted
/// (with everything in it) when dropped.
pub struct Namespace {
    pub name: String,
}

impl Namespace {
    pub fn new(tag: &str) -> Self {
        let name = format!("uk-{tag}-{}", std::process::id());
        let ip = |args: &str| {
            let out = run("ip", &args.split(' ').collect::<Vec<_>>());
            assert!(out.status.success(), "ip {args}: {} (the namespace tests need root)", text(&out));
        };
        ip(&format!("netns add {name}"));
        let ns = Self { name };
        for cmd in
            ["link set lo up", "tuntap add dev tap0 mode tap", "addr add 10.10.0.1/24 dev tap0", "link set tap0 up"]
        {
            ip(&format!("-n {} {cmd}", ns.name));
        }
        ns
    }

    /// The prefix that runs a command inside the namespace.
    pub fn exec(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }

    /// Runs `program` inside the namespace and waits for it.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut words = vec!["netns", "exec", &self.name, program];
        words.extend(args);
        run("ip", &words)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Kill what still runs inside (dnsmasq), then remove it.
        let pids = run("ip", &["netns", "pids", &self.name]).stdout;
        for pid in String::from_utf8_lossy(&pids).split_whitespace() {
            let _ = run("kill", &[pid]);
        }
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}
