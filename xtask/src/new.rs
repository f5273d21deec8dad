//! `cargo xtask new DIR`: a unikernel crate outside this workspace that
//! `cargo run`, `cargo test` and `cargo doc` work in at once. The files are
//! in `xtask/template/`; the runner is installed with `cargo install`.

use crate::{cargo, workspace};
use std::fs;
use std::path::Path;

/// (path in the new crate, template text)
const FILES: [(&str, &str); 6] = [
    ("Cargo.toml", include_str!("../template/Cargo.toml.in")),
    (".cargo/config.toml", include_str!("../template/config.toml")),
    (".gitignore", include_str!("../template/gitignore")),
    ("src/lib.rs", include_str!("../template/src/lib.rs")),
    ("src/main.rs", include_str!("../template/src/main.rs")),
    ("tests/app.rs", include_str!("../template/tests/app.rs")),
];

/// The component crates of this clone (package, directory), offered as
/// commented dependency lines.
const COMPONENTS: [(&str, &str); 8] = [
    ("unikernel-net", "net"),
    ("unikernel-http", "net/http"),
    ("unikernel-tls", "net/tls"),
    ("unikernel-dns", "net/dns"),
    ("unikernel-storage", "storage"),
    ("unikernel-entropy", "devices/entropy"),
    ("unikernel-virtio-rng", "devices/virtio-rng"),
    ("unikernel-virtio-console", "devices/virtio-console"),
];

pub fn run(dir: &Path) -> Result<(), String> {
    let name = package_name(dir)?;
    if dir.exists() && fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?.next().is_some() {
        return Err(format!("{} exists and is not empty", dir.display()));
    }
    let ws = workspace();
    let unikernel = format!("{{ path = {:?}, package = \"unikernel-rt\" }}", ws.display().to_string());
    let components: String = COMPONENTS
        .iter()
        .map(|(package, path)| format!("# {package} = {{ path = {:?} }}\n", ws.join(path).display().to_string()))
        .collect();
    for (path, text) in FILES {
        let text = text.replace("{{name}}", &name).replace("{{crate}}", &name.replace('-', "_"));
        let text = text.replace("{{components}}", &components);
        write(&dir.join(path), &text.replace("{{unikernel}}", &unikernel))?;
    }
    // The toolchain (with its bare-metal target) and the dependency versions
    // this clone is tested with; cargo drops the lock entries it does not need.
    for file in ["rust-toolchain.toml", "Cargo.lock"] {
        fs::copy(ws.join(file), dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
    }
    install_runner()?;
    eprintln!("xtask: created {name} in {}\n\n    cd {}\n    cargo run\n", dir.display(), dir.display());
    Ok(())
}

/// The directory's name, which cargo requires to be a valid package name.
fn package_name(dir: &Path) -> Result<String, String> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(name.to_string())
    } else {
        Err(format!(
            "`{name}` cannot name a package: use a directory name of letters, digits, `-` and `_`, starting with a letter"
        ))
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::create_dir_all(path.parent().expect("a file in the crate")).map_err(|e| e.to_string())?;
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `cargo run` starts `unikernel-runner` from PATH: (re)install it from this
/// clone, so it matches the crates the new project depends on. A target
/// directory of its own keeps later reinstalls incremental.
fn install_runner() -> Result<(), String> {
    eprintln!("xtask: installing unikernel-runner (cargo install --path targets/runner)");
    let mut cmd = cargo();
    cmd.args(["install", "--quiet", "--locked", "--path", "targets/runner"]);
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        cmd.env("CARGO_TARGET_DIR", workspace().join("target/install"));
    }
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        _ => Err("installing unikernel-runner failed".into()),
    }
}
