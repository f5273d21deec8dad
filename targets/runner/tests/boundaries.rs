//! The lines drawn through the code, checked on its text with comments
//! stripped (a comment may explain; code may not do it):
//! - the platform line: the portable crates (`core/`, `devices/`, `net/`,
//!   `storage/`) hold no x86 instruction, port or chipset constant. Those
//!   live in `targets/x86_64`, behind `unikernel_core::bus`. A boot of a
//!   virtio-pci device without MSI-X on q35 and pc exercises the chipsets'
//!   INTx routing behind the bus, not only the MSI-X path the other tests
//!   take.
//! - open components: `macros/` names no component and no component crate,
//!   and the runner's code holds no component name as data; every component
//!   (a crate with `impl ... Component for`) is reached through the public
//!   mechanism an outside crate uses, and the runner sees only records.

mod common;

use common::{boot_example, workspace};
use std::path::{Path, PathBuf};

const PORTABLE: &[&str] = &["core", "devices", "net", "storage"];

/// What marks architecture code, and whether case matters. Instruction
/// mnemonics are matched as Rust spells them (lowercase: `asm!("rdrand")`,
/// `_rdseed64_step`, `__cpuid`, `target_feature = "rdseed"`), so a source
/// named after one (`Source::RdRand`, an option the user writes) is not
/// flagged; constants and chipset names are matched in any case.
const FORBIDDEN: &[(&str, Case)] = &[
    ("asm!", Case::Exact),
    ("global_asm!", Case::Exact),
    ("naked_asm!", Case::Exact),
    ("core::arch::x86", Case::Exact),
    ("x86_64::", Case::Exact),
    ("x86_64 =", Case::Exact),
    ("Port::", Case::Exact),
    ("rdrand", Case::Exact),
    ("rdseed", Case::Exact),
    ("cpuid", Case::Exact),
    ("0xcf8", Case::Any),
    ("0xcfc", Case::Any),
    ("0xfeb0", Case::Any),
    ("0xfec0", Case::Any),
    ("0xfee0", Case::Any),
    ("PIRQ", Case::Any),
    ("PIIX", Case::Any),
    ("I440FX", Case::Any),
    ("Q35", Case::Any),
    ("IOAPIC", Case::Any),
    ("I/O APIC", Case::Any),
    ("GSI", Case::Any),
];

#[derive(Clone, Copy)]
enum Case {
    Exact,
    Any,
}

/// `path` with comments blanked out, line structure kept: `//` and
/// nestable `/* */` in Rust (not inside string or char literals), `#` in
/// TOML (not inside strings).
fn strip_comments(path: &Path, text: &str) -> String {
    if path.extension().is_some_and(|e| e == "rs") { strip_rust(text) } else { strip_toml(text) }
}

fn strip_rust(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut depth, mut in_string) = (0, 0usize, false);
    while i < chars.len() {
        let (c, next) = (chars[i], chars.get(i + 1).copied());
        if depth > 0 {
            match (c, next) {
                ('*', Some('/')) => (depth -= 1, i += 1).1,
                ('/', Some('*')) => (depth += 1, i += 1).1,
                ('\n', _) => out.push('\n'),
                _ => {}
            }
        } else if in_string {
            out.push(c);
            match c {
                '\\' => {
                    out.extend(next);
                    i += 1;
                }
                '"' => in_string = false,
                _ => {}
            }
        } else {
            match (c, next) {
                ('/', Some('/')) => {
                    while i < chars.len() && chars[i] != '\n' {
                        i += 1;
                    }
                    continue;
                }
                ('/', Some('*')) => (depth += 1, i += 1).1,
                ('"', _) => (in_string = true, out.push(c)).1,
                // A char literal holding a quote: '"' or '\''.
                ('\'', Some('"')) if chars.get(i + 2) == Some(&'\'') => {
                    out.push_str("'\"'");
                    i += 2;
                }
                _ => out.push(c),
            }
        }
        i += 1;
    }
    out
}

fn strip_toml(text: &str) -> String {
    let strip_line = |line: &str| {
        let mut in_string = false;
        for (at, c) in line.char_indices() {
            match c {
                '"' => in_string = !in_string,
                '#' if !in_string => return line[..at].to_string(),
                _ => {}
            }
        }
        line.to_string()
    };
    text.lines().map(strip_line).collect::<Vec<_>>().join("\n")
}

/// Every forbidden pattern in the code of `files`, as `path:line: pattern: text`.
fn violations(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (number, line) in strip_comments(path, &text).lines().enumerate() {
            let lower = line.to_lowercase();
            for (pattern, case) in FORBIDDEN {
                let hit = match case {
                    Case::Exact => line.contains(pattern),
                    Case::Any => lower.contains(&pattern.to_lowercase()),
                };
                if hit {
                    let shown = path.strip_prefix(root).unwrap_or(path).display();
                    found.push(format!("{shown}:{}: `{pattern}`: {}", number + 1, line.trim()));
                }
            }
        }
    }
    found
}

/// The `.rs` files and `Cargo.toml`s under `dir`, build output excluded.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") || name == "Cargo.toml" {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Whether `file` belongs to a proc-macro crate (the option grammars):
/// compiler plugins, never in a guest, free to name the instructions a
/// user chooses between (`entropy(source = "rdseed")`).
fn in_proc_macro(file: &Path) -> bool {
    file.ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|m| m.is_file())
        .is_some_and(|m| std::fs::read_to_string(m).unwrap().lines().any(|l| l.replace(' ', "") == "proc-macro=true"))
}

#[test]
fn portable_crates_hold_no_architecture_detail() {
    let root = workspace();
    let files: Vec<PathBuf> =
        PORTABLE.iter().flat_map(|dir| sources(&root.join(dir))).filter(|f| !in_proc_macro(f)).collect();
    assert!(files.len() > 20, "too few sources found under {}: {files:?}", root.display());
    let found = violations(&root, &files);
    assert!(
        found.is_empty(),
        "architecture detail in portable crates (it belongs in targets/, behind unikernel_core::bus):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scanner_finds_a_planted_line_and_ignores_comments_and_strings_ending_them() {
    let dir = std::env::temp_dir().join(format!("platform-line-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rust = dir.join("planted.rs");
    std::fs::write(
        &rust,
        "//! Reads port 0xcf8 (a doc comment may say so).\n\
         const URL: &str = \"http://x\"; /* 0xfeb0 in a block /* nested */ comment */\n\
         const QUOTE: char = '\"';\n\
         fn f() { unsafe { core::arch::asm!(\"rdrand rax\") } }\n\
         enum Source { RdRand }\n",
    )
    .unwrap();
    let toml = dir.join("Cargo.toml");
    std::fs::write(&toml, "[dependencies] # x86_64 = \"0.15\" in a comment\nx86_64 = \"0.15\"\n").unwrap();
    let found = violations(&dir, &[rust, toml]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        found,
        [
            "planted.rs:4: `asm!`: fn f() { unsafe { core::arch::asm!(\"rdrand rax\") } }",
            "planted.rs:4: `rdrand`: fn f() { unsafe { core::arch::asm!(\"rdrand rax\") } }",
            "Cargo.toml:2: `x86_64 =`: x86_64 = \"0.15\"",
        ],
    );
}

/// Every component of the workspace: its `NAME`s and its package, as
/// written in Rust (`unikernel_net`) and in Cargo (`unikernel-net`).
fn components(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for manifest in sources(root).into_iter().filter(|p| p.ends_with("Cargo.toml")) {
        let dir = manifest.parent().unwrap();
        if !dir.join("src").is_dir() {
            continue;
        }
        let code: String =
            sources(&dir.join("src")).iter().map(|p| strip_rust(&std::fs::read_to_string(p).unwrap())).collect();
        if !code.contains("Component for ") {
            continue;
        }
        for declaration in code.split("const NAME: &'static str = \"").skip(1) {
            found.push(declaration.split('"').next().unwrap().to_string());
        }
        // The runtime defines `Component` and has a component of its own
        // (`metrics::at_exit`): its names count, its package does not, as
        // every expansion reaches the runtime by design.
        if code.contains("pub trait Component") {
            continue;
        }
        let toml = std::fs::read_to_string(&manifest).unwrap();
        let package = toml.lines().find_map(|l| l.strip_prefix("name = \"")).unwrap().trim_end_matches('"');
        found.extend([package.to_string(), package.replace('-', "_")]);
    }
    found
}

/// Each word of `files`' code (identifiers, string contents, Cargo keys)
/// that is in `names`, as `path:line: word`.
fn mentions(root: &Path, files: &[PathBuf], names: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for path in files {
        let text = strip_comments(path, &std::fs::read_to_string(path).unwrap());
        for (number, line) in text.lines().enumerate() {
            for word in line.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')) {
                if names.iter().any(|n| n == word) {
                    let shown = path.strip_prefix(root).unwrap_or(path).display();
                    found.push(format!("{shown}:{}: {word}", number + 1));
                }
            }
        }
    }
    found
}

#[test]
fn the_macros_name_no_component_nor_its_crate() {
    let root = workspace();
    let names = components(&root);
    for builtin in ["net", "block", "entropy", "unikernel-net", "unikernel_storage", "unikernel-entropy"] {
        assert!(names.iter().any(|n| n == builtin), "the component scan missed `{builtin}`: {names:?}");
    }
    let files = sources(&root.join("macros"));
    assert!(files.len() >= 6, "too few sources under macros/: {files:?}");
    let found = mentions(&root, &files, &names);
    assert!(
        found.is_empty(),
        "macros/ names components (each component's own crate knows its name, options and package):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_mention_scanner_finds_names_in_code_and_strings_not_in_comments() {
    let dir = std::env::temp_dir().join(format!("boundaries-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rust = dir.join("planted.rs");
    std::fs::write(
        &rust,
        "/// Expands `net(ip = ..)`: a doc comment may say so.\n\
         fn block_on() {} // net\n\
         const KNOWN: &[&str] = &[\"net\"];\n\
         use unikernel_storage::Block;\n",
    )
    .unwrap();
    let names: Vec<String> = ["net", "block", "unikernel_storage"].map(String::from).to_vec();
    let found = mentions(&dir, &[rust], &names);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found, ["planted.rs:3: net", "planted.rs:4: unikernel_storage"]);
}

/// The string literals of Rust source `text`, comments left out.
fn string_literals(text: &str) -> Vec<String> {
    let (bytes, mut literals, mut i) = (text.as_bytes(), Vec::new(), 0);
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |end| end + 2);
        } else if let Some(hashes) = rest.strip_prefix('r').and_then(|r| {
            let n = r.len() - r.trim_start_matches('#').len();
            r[n..].starts_with('"').then_some(n)
        }) {
            let (open, close) = (2 + hashes, format!("\"{}", "#".repeat(hashes)));
            let end = rest[open..].find(&close).map_or(rest.len(), |e| open + e);
            literals.push(rest[open..end].to_string());
            i += end + close.len();
        } else if rest.starts_with('"') {
            let mut end = 1;
            while end < rest.len() && rest.as_bytes()[end] != b'"' {
                end += if rest.as_bytes()[end] == b'\\' { 2 } else { 1 };
            }
            literals.push(rest[1..end.min(rest.len())].to_string());
            i += end + 1;
        } else if let Some(escaped) = rest.strip_prefix("'\\") {
            // '\'', '\n', '\u{..}': the escaped character, then up to the quote.
            let after = &escaped[escaped.chars().next().map_or(0, char::len_utf8)..];
            i += rest.len() - after.len() + after.find('\'').map_or(after.len(), |e| e + 1);
        } else if rest.len() >= 3 && rest.as_bytes()[2] == b'\'' && rest.starts_with('\'') {
            i += 3; // '"'
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    literals
}

#[test]
fn the_literal_scanner_sees_strings_and_skips_comments() {
    let source = r####"// "net" in a comment
        let a = "block"; /* "entropy" */ let c = '"'; let d = '\''; let u = '\u{22}'; let e = r#"x "y" z"#;
        let f = "a \" b"; let g: &'static str = "net";"####;
    assert_eq!(string_literals(source), ["block", "x \"y\" z", "a \\\" b", "net"]);
}

/// Another program's vocabulary that happens to spell a component's name:
/// (file, literal). Firecracker's config calls its virtio-rng `entropy`.
const NOT_COMPONENT_NAMES: &[(&str, &str)] = &[("qemu/firecracker.rs", "entropy")];

#[test]
fn the_runner_source_names_no_component() {
    let root = workspace();
    let names = components(&root);
    let src = root.join("targets/runner/src");
    let mut found = Vec::new();
    for path in sources(&src) {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.strip_prefix(&src).unwrap().display().to_string();
        for literal in string_literals(&text) {
            if names.contains(&literal) && !NOT_COMPONENT_NAMES.contains(&(file.as_str(), literal.as_str())) {
                found.push(format!("{file}: \"{literal}\""));
            }
        }
    }
    assert_eq!(found, Vec::<String>::new(), "the runner decides devices from records, not component names");
}

#[test]
fn virtio_pci_without_msix_interrupts_through_the_chipsets_intx_routing() {
    for machine in ["q35", "pc"] {
        let disk = std::env::temp_dir().join(format!("unikernel-intx-{machine}-{}.img", std::process::id()));
        let _ = std::fs::remove_file(&disk);
        let disk_arg = disk.display().to_string();
        let args = ["--machine", machine, "--disk", &disk_arg, "--disk-size", "1M"];
        // `vectors=0` takes the MSI-X capability off the device.
        let no_msix = ["--qemu-arg", "-global", "--qemu-arg", "virtio-blk-pci.vectors=0"];
        let run = boot_example("disk", &[&args[..], &no_msix, &["log=debug", "sectors=64", "seed=5"]].concat());
        let _ = std::fs::remove_file(&disk);
        run.assert(0, &["virtio: Block on line ", "disk: wrote, flushed and verified 64 sectors (seed 5)"]);
        assert!(!run.stdout.contains("MSI-X"), "{machine}: {}", run.stdout);
    }
}
