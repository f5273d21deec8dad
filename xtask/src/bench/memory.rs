//! The smallest `--memory` each example works with, bisected on the
//! runner's `--memory` in 16 KiB steps, every try under a short timeout.
//! "Works": an example that exits prints its normal output and exits 0; a
//! server answers through a forwarded port (an HTTP response, or the bytes
//! sent to the echo server).

use super::free_port;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STEP_KIB: u64 = 16;
/// The runner's default; an example that needs more is reported as such.
const CEILING_KIB: u64 = 64 * 1024;
/// Per try: a guest that works answers well within this under TCG.
const TRY_SECONDS: u64 = 20;

#[derive(Clone, Copy)]
enum Works {
    /// Exits 0 having printed this.
    Exits(&'static str),
    /// Answers an HTTP request on guest port 80.
    Http,
    /// Echoes bytes on guest TCP port 7.
    Echo,
}

/// The examples measured, and whether each needs a disk.
const EXAMPLES: [(&str, Works, bool); 6] = [
    ("hello", Works::Exits("Hello from a unikernel!"), false),
    ("random", Works::Exits("random (RdRand): "), false),
    ("timers", Works::Exits(", wall clock 20"), false),
    ("http", Works::Http, false),
    ("echo", Works::Echo, false),
    ("kv", Works::Http, true),
];

fn image_end_kib(image: &Path) -> Result<u64, String> {
    use object::read::elf::{ElfFile64, ProgramHeader};
    let data = std::fs::read(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let elf = ElfFile64::<object::Endianness>::parse(&*data).map_err(|e| e.to_string())?;
    let endian = elf.endian();
    let loads = elf.elf_program_headers().iter().filter(|h| h.p_type(endian) == object::elf::PT_LOAD);
    let end = loads.map(|h| h.p_paddr(endian) + h.p_memsz(endian)).max().ok_or("no PT_LOAD segment")?;
    Ok(end.div_ceil(1024))
}

/// One request and whether an answer came: an HTTP status line, or the echo.
fn answers(port: u16, works: Works) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let (request, expect): (&[u8], &[u8]) = match works {
        Works::Echo => (b"ping\n", b"ping\n"),
        _ => (b"GET / HTTP/1.1\r\nHost: guest\r\nConnection: close\r\n\r\n", b"HTTP/1.1 "),
    };
    let mut answer = vec![0; expect.len()];
    stream.write_all(request).is_ok() && stream.read_exact(&mut answer).is_ok() && answer == expect
}

/// Whether `image` works with `kib` KiB of RAM; `disk` is a scratch file
/// for an image with the `block` component.
fn works_with(runner: &Path, image: &Path, works: Works, kib: u64, disk: Option<&Path>) -> Result<bool, String> {
    let mut cmd = Command::new(runner);
    cmd.arg(image).args(["--accel", "tcg", "--timeout", &TRY_SECONDS.to_string(), "--memory", &format!("{kib}K")]);
    cmd.stdin(Stdio::null()).stderr(Stdio::null());
    if let Some(disk) = disk {
        let _ = std::fs::remove_file(disk);
        cmd.arg("--disk").arg(disk).args(["--disk-size", "8M"]);
    }
    if let Works::Exits(needle) = works {
        let out = cmd.output().map_err(|e| e.to_string())?;
        return Ok(out.status.success() && String::from_utf8_lossy(&out.stdout).contains(needle));
    }
    let port = free_port()?;
    let guest = if matches!(works, Works::Echo) { 7 } else { 80 };
    cmd.args(["--forward", &format!("{port}:{guest}")]);
    let mut child = cmd.stdout(Stdio::null()).spawn().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(TRY_SECONDS);
    let served = loop {
        if answers(port, works) {
            break true;
        }
        // A guest that exits (too little memory) has answered for good.
        if child.try_wait().map_err(|e| e.to_string())?.is_some() || Instant::now() >= deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The runner forwards SIGKILL's effect to QEMU (PR_SET_PDEATHSIG).
    let _ = child.kill();
    let _ = child.wait();
    Ok(served)
}

/// The smallest KiB (a multiple of `STEP_KIB`) `image` works with, or `None`
/// above `CEILING_KIB`. Below the image's end the runner refuses at once.
fn smallest(runner: &Path, image: &Path, works: Works, disk: Option<&Path>) -> Result<Option<u64>, String> {
    let (mut fails, mut ok) = (image_end_kib(image)? / STEP_KIB * STEP_KIB, CEILING_KIB);
    if !works_with(runner, image, works, ok, disk)? {
        return Ok(None);
    }
    while ok - fails > STEP_KIB {
        let mid = (fails + ok) / 2 / STEP_KIB * STEP_KIB;
        if works_with(runner, image, works, mid, disk)? {
            ok = mid;
        } else {
            fails = mid;
        }
    }
    Ok(Some(ok))
}

/// Prints the table: per example, its image's extent and the smallest
/// `--memory` it works with. `image` maps an example's name to its path.
pub fn table(runner: &Path, image: &dyn Fn(&str) -> std::path::PathBuf) -> Result<(), String> {
    let disk = std::env::temp_dir().join(format!("unikernel-bench-memory-{}.img", std::process::id()));
    println!("\n## Smallest --memory that works (release images, -M microvm, TCG; bisected in {STEP_KIB} KiB steps)\n");
    println!("| example | works means | image ends at | smallest --memory |\n|---|---|---:|---:|");
    for (name, works, needs_disk) in EXAMPLES {
        let path = image(name);
        let what = match works {
            Works::Exits(_) => "exits 0 with its output",
            Works::Http => "answers HTTP",
            Works::Echo => "echoes TCP",
        };
        let found = smallest(runner, &path, works, needs_disk.then_some(disk.as_path()));
        let figure = match found {
            Ok(Some(kib)) => format!("{kib} KiB"),
            Ok(None) => format!("more than {} MiB", CEILING_KIB / 1024),
            Err(e) => format!("error: {e}"),
        };
        println!("| {name} | {what} | {} KiB | {figure} |", image_end_kib(&path)?);
    }
    let _ = std::fs::remove_file(&disk);
    Ok(())
}
