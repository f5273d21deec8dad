//! `dig` (Debian's `bind9-dnsutils`) against a guest's forwarded port.

use super::guest::{run, text};

/// dig's output for `args` asked of 127.0.0.1:`port`.
pub fn dig(port: u16, args: &[&str]) -> String {
    let port = port.to_string();
    let mut words = vec!["@127.0.0.1", "-p", &port, "+time=10", "+tries=2"];
    words.extend(args);
    text(&run("dig", &words))
}

/// The record lines of `section` (e.g. "ANSWER") in dig's output.
pub fn section<'a>(out: &'a str, section: &str) -> Vec<&'a str> {
    let head = format!(";; {section} SECTION:");
    out.lines().skip_while(|l| *l != head).skip(1).take_while(|l| !l.is_empty()).collect()
}
