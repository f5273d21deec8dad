//! Runs a test command, passing its output through, and adds up the
//! `test result: ok. N passed; M failed; ...` lines it prints.

use std::io::{BufRead, BufReader, Write};
use std::ops::AddAssign;
use std::process::{Command, Stdio};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
}

impl AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

/// Parses one libtest summary line; other lines give `None`.
fn parse(line: &str) -> Option<Tally> {
    let rest = line.strip_prefix("test result: ")?;
    let count = |word: &str| -> Option<u64> {
        rest.split([';', '.']).find_map(|part| part.trim().strip_suffix(word)?.trim().parse().ok())
    };
    Some(Tally { passed: count("passed")?, failed: count("failed")? })
}

/// Returns whether the command succeeded, and the tests it counted.
pub fn run(mut cmd: Command) -> Result<(bool, Tally), String> {
    let mut child = cmd.stdout(Stdio::piped()).spawn().map_err(|e| format!("cannot run cargo: {e}"))?;
    let mut tally = Tally::default();
    let mut out = std::io::stdout();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.map_err(|e| e.to_string())?;
        let _ = writeln!(out, "{line}");
        if let Some(t) = parse(&line) {
            tally += t;
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    Ok((status.success(), tally))
}

#[cfg(test)]
mod tests {
    use super::{Tally, parse};

    #[test]
    fn reads_libtest_summaries_only() {
        let line = "test result: FAILED. 15 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out; finished in 3.16s";
        assert_eq!(parse(line), Some(Tally { passed: 15, failed: 3 }));
        assert_eq!(parse("test result: ok. 2 passed; 0 failed; 0 ignored"), Some(Tally { passed: 2, failed: 0 }));
        assert_eq!(
            parse("\x1b[0mtest result: ok. 2 passed; 0 failed"),
            None,
            "nested output (trybuild) is not counted"
        );
        assert_eq!(parse("2 passed, 0 failed"), None);
    }
}
