//! The kernel command line (`cargo run -- ARGS`, QEMU's `-append`).
//!
//! Words are separated by whitespace. `key=value` words configure the
//! runtime (`log=debug`); the application sees every word.

use spin::Once;

static CMDLINE: Once<&'static str> = Once::new();

/// Records the command line; called once by the boot target.
pub fn set(cmdline: &'static str) {
    CMDLINE.call_once(|| cmdline.trim_ascii());
}

/// The whole command line, trimmed; empty when none was given.
pub fn get() -> &'static str {
    CMDLINE.get().copied().unwrap_or("")
}

/// The whitespace-separated words of the command line.
pub fn args() -> impl Iterator<Item = &'static str> {
    get().split_whitespace()
}

/// The value of the last `key=value` word for `key`.
pub fn value(key: &str) -> Option<&'static str> {
    value_in(get(), key)
}

fn value_in<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    let mut value = None;
    for word in cmdline.split_ascii_whitespace() {
        if let Some(v) = word.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')) {
            value = Some(v);
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::value_in;

    #[test]
    fn last_value_wins_and_missing_is_none() {
        let line = "log=info x=1 plain log=debug";
        assert_eq!(value_in(line, "log"), Some("debug"));
        assert_eq!(value_in(line, "x"), Some("1"));
        assert_eq!(value_in(line, "plain"), None);
        assert_eq!(value_in("", "log"), None);
    }
}
