//! A request's headers as sent: at most [`MAX_HEADERS`], within the head's
//! size cap, so what a client can make the server hold stays bounded.

use alloc::string::String;
use alloc::vec::Vec;

/// Headers beyond this many make the head malformed (`400`).
pub const MAX_HEADERS: usize = 32;

/// A request's headers in the order sent; names compare ignoring case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, Vec<u8>)>);

impl Headers {
    pub(crate) fn from_parsed(headers: &[httparse::Header<'_>]) -> Self {
        Self(headers.iter().map(|h| (h.name.into(), h.value.into())).collect())
    }

    /// The first value of `name`, when it is text (UTF-8).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name).and_then(|value| core::str::from_utf8(value).ok())
    }

    /// The first value of `name` as sent (values may be any bytes but
    /// CR and LF).
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| &v[..])
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| &v[..])
    }

    /// Every header as (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(n, v)| (n.as_str(), &v[..]))
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a comma-separated header (`Connection`, say) lists `token`.
    pub(crate) fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }
}
