//! `--snapshot FILE`: boot once, serve every later start from the saved
//! guest. A run without FILE boots, and once the guest listens on every
//! forward (before any forward opens, so no connection is in it) stops it,
//! saves it with QEMU's migration to FILE, and lets it go on. A run with
//! FILE starts QEMU with `-incoming`, waits until the guest runs, and
//! writes `unikernel_core::restore::SIGNAL` to the console's input, which
//! tells the guest to redo what the snapshot froze (see that module); the
//! guest then announces its listeners again, which opens the forwards.
//!
//! FILE is a header line, then QEMU's migration stream. The header holds
//! the sha256 of the image and of the run's options the stream depends on
//! (machine, accelerator, memory, kernel command line): restoring another
//! image's memory, or into another machine, is refused before QEMU starts.

use crate::image::{Arch, Image};
use crate::options::Options;
use crate::qemu::Chosen;
use crate::qemu::monitor::Monitor;
use sha2::{Digest, Sha256};
use std::io::{self, BufRead, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command};
use std::time::{Duration, Instant};
use unikernel_core::forward::{Forward, Listening};
use unikernel_core::vmm::{Kind, virtio};

/// The header's first word, with the format's version.
const MAGIC: &str = "unikernel-snapshot 1";
/// Bound on saving or restoring one guest.
const PATIENCE: Duration = Duration::from_secs(60);
/// How often the migration's progress is asked for.
const POLL: Duration = Duration::from_millis(1);

/// What a run with `--snapshot` does.
pub enum Plan {
    /// FILE is missing: save the guest there once it is ready.
    Take(Take),
    /// Restore the stream at `offset` in `path`.
    Restore { path: PathBuf, offset: usize },
}

/// A snapshot to take.
pub struct Take {
    path: PathBuf,
    header: String,
}

/// What `--snapshot` cannot do, before anything starts.
fn refuse(opts: &Options, image: &Image) -> Result<(), String> {
    if image.arch != Arch::X86_64 {
        // The restore signal is COM1's receive interrupt, wired on x86_64 only.
        return Err("--snapshot: restoring is done for x86_64 images only".into());
    }
    let has = |device| image.records.iter().any(|r| r.kind == Kind::Virtio && r.device == device);
    if has(virtio::BLOCK) {
        // The disk is not in the stream: a restore would meet a disk
        // written after the snapshot with the caches of before.
        return Err("--snapshot: the image has a disk, which a snapshot does not hold".into());
    }
    if !has(virtio::NET) || opts.tap.is_some() {
        return Err(
            "--snapshot saves the guest once it listens on its forwards: it needs user networking (no --tap)".into()
        );
    }
    if opts.gdb.is_some() || opts.profile.is_some() || opts.print_command {
        return Err(
            "--snapshot needs the runner to save and restore the guest: drop --gdb, --profile, --print-command".into(),
        );
    }
    Ok(())
}

/// The header that FILE must start with for this image and run.
fn header(opts: &Options, image: &Image, accel: Chosen) -> Result<String, String> {
    let elf = std::fs::read(&opts.image).map_err(|e| format!("cannot read {}: {e}", opts.image.display()))?;
    let run =
        [opts.machine.name(), accel.name(), &opts.memory, &opts.kernel_args.join(" "), &format!("{:?}", image.arch)];
    Ok(format!("{MAGIC} image={:x} run={:x}\n", Sha256::digest(&elf), Sha256::digest(run.join("\0"))))
}

/// The plan for a run with `--snapshot`, refusing a FILE taken of another
/// image or run.
pub fn plan(opts: &Options, image: &Image, accel: Chosen) -> Result<Option<Plan>, String> {
    let Some(path) = &opts.snapshot else { return Ok(None) };
    refuse(opts, image)?;
    let header = header(opts, image, accel)?;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Some(Plan::Take(Take { path: path.clone(), header })));
        }
        Err(e) => return Err(format!("--snapshot: cannot read {}: {e}", path.display())),
    };
    let mut found = Vec::new();
    io::BufReader::new(file.take(header.len() as u64))
        .read_until(b'\n', &mut found)
        .map_err(|e| format!("--snapshot: cannot read {}: {e}", path.display()))?;
    let found = String::from_utf8_lossy(&found);
    if found == header {
        return Ok(Some(Plan::Restore { path: path.clone(), offset: header.len() }));
    }
    let field = |text: &str, key: &str| text.split_whitespace().find_map(|w| w.strip_prefix(key)).map(String::from);
    let why = if !found.starts_with(MAGIC) {
        "it is not a snapshot of this runner's"
    } else if field(&found, "image=") != field(&header, "image=") {
        "the image changed since it was taken"
    } else {
        "it was taken with other options (machine, accelerator, memory or kernel arguments)"
    };
    Err(format!("--snapshot: refusing to restore {}: {why}; delete it to take a new one", path.display()))
}

/// `-incoming`: QEMU reads the stream after the header from a descriptor
/// it inherits, opened and positioned here (no shell, no `tail`: two
/// process starts less per restore). The file must stay open until QEMU
/// has started.
pub fn incoming(command: &mut Command, path: &Path, offset: usize) -> Result<std::fs::File, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("--snapshot: cannot read {}: {e}", path.display()))?;
    file.seek(io::SeekFrom::Start(offset as u64)).map_err(|e| format!("--snapshot: {}: {e}", path.display()))?;
    crate::qemu::inherit(command, file.as_raw_fd());
    command.args(["-incoming", &format!("fd:{}", file.as_raw_fd())]);
    Ok(file)
}

/// `path` as one word for the shell QEMU's `exec:` runs.
fn shell_quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// `value` as a JSON string.
fn json(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

/// The migration's status from `query-migrate`'s reply.
fn status(reply: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(reply).ok()?;
    Some(value["return"]["status"].as_str()?.to_string())
}

/// Asks `query` until its status is `done`; fails on `failed` and after
/// [`PATIENCE`].
fn wait_for(monitor: &mut Monitor, query: &str, done: &str) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let reply = monitor.execute(query).map_err(|e| format!("QEMU's monitor: {e}"))?;
        match status(&reply).as_deref() {
            Some(s) if s == done => return Ok(()),
            Some("failed") => return Err(format!("QEMU's migration failed: {}", reply.trim())),
            _ if started.elapsed() > PATIENCE => return Err(format!("still not {done} after {PATIENCE:?}")),
            _ => std::thread::sleep(POLL),
        }
    }
}

/// Whether the guest listens behind every forward.
pub fn ready(forwards: &[Forward], announced: &[Listening]) -> bool {
    forwards.iter().all(|f| announced.iter().any(|l| (l.protocol, l.port) == (f.protocol, f.guest)))
}

impl Take {
    /// Stops the guest, saves it, and lets it go on. The file appears
    /// whole or not at all.
    pub fn save(self, monitor: &mut Monitor) -> Result<(), String> {
        let started = Instant::now();
        let partial = self.path.with_extension("partial");
        let write = || -> io::Result<()> { std::fs::File::create(&partial)?.write_all(self.header.as_bytes()) };
        write().map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
        let qmp = |monitor: &mut Monitor, request: &str| {
            monitor.execute(request).map(drop).map_err(|e| format!("QEMU's monitor: {e}"))
        };
        qmp(monitor, r#"{"execute":"stop"}"#)?;
        let uri = json(&format!("exec:cat >> {}", shell_quoted(&partial)));
        let saved = qmp(monitor, &format!(r#"{{"execute":"migrate","arguments":{{"uri":{uri}}}}}"#))
            .and_then(|()| wait_for(monitor, r#"{"execute":"query-migrate"}"#, "completed"))
            .and_then(|()| {
                std::fs::rename(&partial, &self.path).map_err(|e| format!("cannot rename {}: {e}", partial.display()))
            });
        if saved.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        // The guest goes on whatever happened to the file.
        qmp(monitor, r#"{"execute":"cont"}"#)?;
        saved?;
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        eprintln!(
            "unikernel-runner: saved the guest to {} ({} KiB) in {} ms; later runs with --snapshot restore it",
            self.path.display(),
            size >> 10,
            started.elapsed().as_millis()
        );
        Ok(())
    }
}

/// Waits until QEMU has the whole stream; returns how long that took. The
/// guest was stopped when saved, so QEMU holds it paused after loading it.
pub fn loaded(monitor: &mut Monitor, path: &Path) -> Result<Duration, String> {
    let started = Instant::now();
    wait_for(monitor, r#"{"execute":"query-status"}"#, "paused").map_err(|e| failed(path, e))?;
    Ok(started.elapsed())
}

/// Tells the loaded guest it was restored, and lets it run; the signal
/// waits in the UART until it runs.
pub fn resume(monitor: &mut Monitor, console: &mut ChildStdin, path: &Path, loading: Duration) -> Result<(), String> {
    console
        .write_all(&[unikernel_core::restore::SIGNAL])
        .and_then(|()| console.flush())
        .map_err(|e| failed(path, format!("cannot signal the guest: {e}")))?;
    monitor.execute(r#"{"execute":"cont"}"#).map_err(|e| failed(path, format!("QEMU's monitor: {e}")))?;
    eprintln!("unikernel-runner: restored the guest from {} (loaded in {} ms)", path.display(), loading.as_millis());
    Ok(())
}

fn failed(path: &Path, e: String) -> String {
    format!("--snapshot: restoring {}: {e}", path.display())
}

#[cfg(test)]
mod tests {
    use super::{json, ready, shell_quoted, status};
    use std::path::Path;
    use unikernel_core::forward::{Forward, Listening, Protocol};

    #[test]
    fn paths_survive_the_shell_and_json() {
        let path = Path::new("/tmp/it's here \"x\".snap");
        assert_eq!(shell_quoted(path), r#"'/tmp/it'\''s here "x".snap'"#);
        let uri = json(&format!("exec:cat >> {}", shell_quoted(path)));
        let back: String = serde_json::from_str(&uri).unwrap();
        assert_eq!(back, format!("exec:cat >> {}", shell_quoted(path)));
    }

    #[test]
    fn the_migration_status_is_read_from_the_reply() {
        assert_eq!(status(r#"{"return": {"status": "completed", "total-time": 12}}"#).as_deref(), Some("completed"));
        assert_eq!(status(r#"{"return": {"status": "paused", "running": false}}"#).as_deref(), Some("paused"));
        assert_eq!(status(r#"{"return": {}}"#), None);
        assert_eq!(status("garbage"), None);
    }

    #[test]
    fn ready_once_every_forward_listens() {
        let web = Forward { protocol: Protocol::Tcp, host: 8080, guest: 80 };
        let dns = Forward { protocol: Protocol::Udp, host: 5353, guest: 53 };
        let tcp80 = Listening { protocol: Protocol::Tcp, port: 80, address: None };
        assert!(!ready(&[web, dns], &[tcp80]));
        assert!(
            !ready(&[dns], &[Listening { protocol: Protocol::Tcp, port: 53, address: None }]),
            "TCP 53 is not UDP 53"
        );
        assert!(ready(&[web, dns], &[tcp80, Listening { protocol: Protocol::Udp, port: 53, address: None }]));
    }
}
