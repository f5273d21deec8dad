//! A master file (RFC 1035 §5) read at run time, e.g. from a disk: the
//! text is untrusted, so every step is strict and bounded by
//! [`ZoneLimits`]. The entries (lines, comments, parentheses, quoted
//! strings, owner inheritance, `$ORIGIN`, `$TTL`) are split here; each
//! record's data is read by NLnet Labs' `domain` (its no_std `Scan` code,
//! the same the `zone!` macro's scanner runs) for the types in [`TYPES`],
//! and written in the wire format `zone!` expands to, so [`Zone::new`]
//! indexes both alike.
//!
//! [`Zone::new`]: crate::Zone::new

mod scanner;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use domain::base::iana::{Class, Rtype};
use domain::base::name::Name;
use domain::base::rdata::ComposeRecordData;
use domain::base::scan::{Scanner, ScannerError, StrError, Symbols};
use domain::base::{Record, Ttl};
use domain::rdata::{A, Aaaa, Cname, Mx, Ns, Ptr, Soa, Srv, Txt};
use scanner::{Origin, Tokens};

/// The record types a master file read at run time may hold.
pub const TYPES: &[Rtype] =
    &[Rtype::SOA, Rtype::NS, Rtype::A, Rtype::AAAA, Rtype::CNAME, Rtype::MX, Rtype::TXT, Rtype::PTR, Rtype::SRV];

/// Bounds on a zone read at run time; past any of them it is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneLimits {
    /// The master file's size in bytes.
    pub max_text: usize,
    /// Records in the zone.
    pub max_records: usize,
    /// The zone's size in wire format (a relative name grows by its origin).
    pub max_wire: usize,
}

impl ZoneLimits {
    /// The caps of [`ZoneLimits::default`], lowered to a sixteenth of
    /// `memory` bytes (e.g. `unikernel::free_memory()`) for the text and
    /// for the index, an eighth for the wire format: with the vectors'
    /// doubling and the final copy, the peak stays under about two thirds
    /// of `memory`.
    pub fn within(memory: usize) -> Self {
        let part = memory / 16;
        let d = Self::default();
        Self {
            max_text: d.max_text.min(part),
            max_records: d.max_records.min(part / crate::zone::RECORD_SIZE),
            max_wire: d.max_wire.min(2 * part),
        }
    }
}

impl Default for ZoneLimits {
    /// 1 MiB of text, 20,000 records (each query scans them all), 4 MiB of
    /// wire format.
    fn default() -> Self {
        Self { max_text: 1 << 20, max_records: 20_000, max_wire: 4 << 20 }
    }
}

/// Why a master file was refused: what, and on which line when one is to
/// blame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterFileError {
    line: Option<usize>,
    message: String,
}

impl MasterFileError {
    fn at(line: usize, message: impl ToString) -> Self {
        Self { line: Some(line), message: message.to_string() }
    }

    pub(crate) fn zone(message: impl ToString) -> Self {
        Self { line: None, message: message.to_string() }
    }
}

impl fmt::Display for MasterFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl core::error::Error for MasterFileError {}

/// Tokens in one entry: a token takes 24 bytes, so text of one-letter
/// tokens would take 12 times its size. Far above any record served here
/// (a SOA has 7 after its type; a TXT of 4,000 strings is no real one).
const MAX_TOKENS: usize = 4096;

/// One token of an entry; a quoted string is its text between the quotes.
#[derive(Clone, Copy, Debug)]
struct Token<'t> {
    text: &'t str,
    quoted: bool,
}

/// The entries of `text`, one at a time: its tokens, the line it starts
/// on, and whether it starts with a blank (its owner is the previous one).
struct Entries<'t> {
    text: &'t str,
    at: usize,
    line: usize,
}

impl<'t> Entries<'t> {
    /// The next entry into `tokens` (cleared first); `None` at the end.
    fn next(&mut self, tokens: &mut Vec<Token<'t>>) -> Result<Option<(usize, bool)>, MasterFileError> {
        tokens.clear();
        let bytes = self.text.as_bytes();
        let (mut start, mut blank, mut open) = (self.line, false, None);
        let mut line_start = true;
        while let Some(&b) = bytes.get(self.at) {
            if line_start && tokens.is_empty() && open.is_none() {
                (start, blank) = (self.line, matches!(b, b' ' | b'\t'));
            }
            line_start = false;
            match b {
                b'\n' => {
                    self.at += 1;
                    self.line += 1;
                    line_start = true;
                    if open.is_none() && !tokens.is_empty() {
                        return Ok(Some((start, blank)));
                    }
                }
                b' ' | b'\t' | b'\r' => self.at += 1,
                b';' => self.at += bytes[self.at..].iter().position(|&b| b == b'\n').unwrap_or(bytes.len() - self.at),
                b'(' if open.is_some() => return Err(MasterFileError::at(self.line, "nested parentheses")),
                b'(' => {
                    open = Some(self.line);
                    self.at += 1;
                }
                b')' if open.is_none() => return Err(MasterFileError::at(self.line, "`)` without `(`")),
                b')' => {
                    open = None;
                    self.at += 1;
                }
                _ if tokens.len() == MAX_TOKENS => {
                    return Err(MasterFileError::at(start, alloc::format!("over {MAX_TOKENS} tokens in one entry")));
                }
                b'"' => tokens.push(Token { text: self.quoted()?, quoted: true }),
                _ => tokens.push(Token { text: self.word()?, quoted: false }),
            }
        }
        if let Some(line) = open {
            return Err(MasterFileError::at(line, "`(` never closed"));
        }
        Ok((!tokens.is_empty()).then_some((start, blank)))
    }

    /// A quoted string (the cursor on its opening quote), which must end
    /// on its line.
    fn quoted(&mut self) -> Result<&'t str, MasterFileError> {
        let from = self.at + 1;
        let len = self.escaped_until(from, |b| b == b'"');
        if self.text.as_bytes().get(from + len) != Some(&b'"') {
            return Err(MasterFileError::at(self.line, "a quoted string is not closed on its line"));
        }
        self.at = from + len + 1;
        self.checked(&self.text[from..from + len])
    }

    /// An unquoted token, up to a blank, a line end, `;`, `(`, `)` or `"`.
    fn word(&mut self) -> Result<&'t str, MasterFileError> {
        let from = self.at;
        let len = self.escaped_until(from, |b| b" \t\r\n;()\"".contains(&b));
        self.at = from + len;
        self.checked(&self.text[from..from + len])
    }

    /// Bytes from `from` to the first unescaped one that `end` matches (a
    /// line end always ends it).
    fn escaped_until(&self, from: usize, end: impl Fn(u8) -> bool) -> usize {
        let bytes = &self.text.as_bytes()[from..];
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if b == b'\n' || end(b) {
                break;
            }
            i += if b == b'\\' && bytes.get(i + 1).is_some_and(|&n| n != b'\n') { 2 } else { 1 };
        }
        // It stops at an ASCII byte or the end: a character boundary.
        i
    }

    /// `token` if its escapes are whole (`\` and a printable character,
    /// or three digits up to 255) and it holds no control character:
    /// `domain` would stop short at a bad one.
    fn checked(&self, token: &'t str) -> Result<&'t str, MasterFileError> {
        if token.chars().any(|c| c.is_control() && c != '\t') {
            return Err(MasterFileError::at(self.line, "a control character"));
        }
        let mut symbols = Symbols::new(token.chars());
        symbols.by_ref().for_each(drop);
        symbols.ok().map_err(|_| MasterFileError::at(self.line, "a bad escape sequence"))?;
        Ok(token)
    }
}

/// Reads the master file `text` (UTF-8, no `$INCLUDE`, class IN, the types
/// in [`TYPES`], exactly one SOA whose owner is the apex and owns or is an
/// ancestor of every record) within `limits`, into the wire format
/// [`Zone::new`](crate::Zone::new) indexes: the SOA first, then the others
/// in the file's order.
pub fn compile(text: &[u8], limits: &ZoneLimits) -> Result<Vec<u8>, MasterFileError> {
    if text.len() > limits.max_text {
        return Err(MasterFileError::zone(alloc::format!("larger than {} bytes", limits.max_text)));
    }
    let text = core::str::from_utf8(text).map_err(|e| {
        let line = 1 + text[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        MasterFileError::at(line, "not UTF-8 text")
    })?;
    let mut zone = Compiler {
        limits,
        soa: Vec::new(),
        rest: Vec::new(),
        apex: None,
        before_soa: Vec::new(),
        before_soa_len: 0,
        count: 0,
    };
    let (mut origin, mut owner): (Origin, Option<Name<Vec<u8>>>) = (None, None);
    let (mut default_ttl, mut last_ttl) = (None, None);
    let mut entries = Entries { text, at: 0, line: 1 };
    let mut tokens = Vec::new();
    while let Some((line, blank)) = entries.next(&mut tokens)? {
        let err = |e: &dyn fmt::Display| MasterFileError::at(line, e);
        let mut words = tokens.iter();
        if !blank && tokens[0].text.starts_with('$') && !tokens[0].quoted {
            let value = match tokens.as_slice() {
                [_, value] if !value.quoted => value.text,
                _ => return Err(err(&"a directive takes one value")),
            };
            match tokens[0].text {
                "$ORIGIN" => origin = Some(scanner::name(value, origin.as_ref()).map_err(|e| err(&e))?),
                "$TTL" => default_ttl = Some(ttl(value).ok_or_else(|| err(&"$TTL is not a number of seconds"))?),
                "$INCLUDE" => return Err(err(&"$INCLUDE is not supported: put the zone in one file")),
                other => return Err(err(&alloc::format!("unknown directive {other}"))),
            }
            continue;
        }
        if !blank {
            let token = words.next().filter(|t| !t.quoted).ok_or_else(|| err(&"a quoted owner"))?;
            owner = Some(scanner::name(token.text, origin.as_ref()).map_err(|e| err(&e))?);
        }
        let owner = owner.clone().ok_or_else(|| err(&"no owner: the first record starts with a blank"))?;
        // TTL and class, either first, both optional (RFC 1035 §5.1).
        let (mut record_ttl, mut class) = (None, None);
        let rtype = loop {
            let token = words.next().filter(|t| !t.quoted).ok_or_else(|| err(&"no record type"))?;
            if let Some(value) = ttl(token.text).filter(|_| record_ttl.is_none()) {
                record_ttl = Some(value);
            } else if let Some(value) = token.text.parse::<Class>().ok().filter(|_| class.is_none()) {
                class = Some(value);
            } else {
                break token.text.parse::<Rtype>().map_err(|_| err(&alloc::format!("unknown type {}", token.text)))?;
            }
        };
        if class.is_some_and(|c| c != Class::IN) {
            return Err(err(&"only class IN is served"));
        }
        // RFC 1035 §5.1 and RFC 2308 §4, as `domain`'s scanner reads them.
        last_ttl = record_ttl.or(last_ttl);
        let ttl = record_ttl.or(default_ttl).or(last_ttl).ok_or_else(|| err(&"no TTL and no $TTL before it"))?;
        let mut data = Tokens::new(words.map(|t| t.text), origin.as_ref());
        zone.push(&owner, rtype, ttl, &mut data).map_err(|e| err(&e))?;
        if data.continues() {
            return Err(err(&"more data than the type takes"));
        }
    }
    zone.finish()
}

/// A TTL: decimal seconds (what `domain`'s scanner accepts too).
fn ttl(token: &str) -> Option<Ttl> {
    token.bytes().all(|b| b.is_ascii_digit()).then(|| token.parse().ok().map(Ttl::from_secs)).flatten()
}

/// The zone as it is read.
struct Compiler<'l> {
    limits: &'l ZoneLimits,
    soa: Vec<u8>,
    rest: Vec<u8>,
    apex: Option<Name<Vec<u8>>>,
    /// Owners met before the SOA, checked against the apex once known;
    /// their bytes count against the wire format's cap.
    before_soa: Vec<Name<Vec<u8>>>,
    before_soa_len: usize,
    count: usize,
}

impl Compiler<'_> {
    /// Reads one record's data of type `rtype` from `data` and appends the
    /// record in wire format.
    fn push<I: Iterator<Item: AsRef<str>>>(
        &mut self,
        owner: &Name<Vec<u8>>,
        rtype: Rtype,
        ttl: Ttl,
        data: &mut Tokens<'_, I>,
    ) -> Result<(), String> {
        self.count += 1;
        if self.count > self.limits.max_records {
            return Err(alloc::format!("more than {} records", self.limits.max_records));
        }
        match &self.apex {
            Some(apex) if !owner.ends_with(apex) => return Err(alloc::format!("{owner} is outside the zone {apex}")),
            Some(_) => {}
            None => {
                self.before_soa_len += owner.as_slice().len();
                self.before_soa.push(owner.clone());
            }
        }
        let target = if rtype == Rtype::SOA {
            if self.apex.replace(owner.clone()).is_some() {
                return Err("more than one SOA record".into());
            }
            if let Some(outside) = self.before_soa.iter().find(|o| !o.ends_with(owner)) {
                return Err(alloc::format!("{outside} is outside the zone {owner}"));
            }
            (self.before_soa, self.before_soa_len) = (Vec::new(), 0);
            &mut self.soa
        } else {
            &mut self.rest
        };
        let scanned = match rtype {
            Rtype::SOA => composed(owner, ttl, Soa::scan(data), target),
            Rtype::NS => composed(owner, ttl, Ns::scan(data), target),
            Rtype::A => composed(owner, ttl, A::scan(data), target),
            Rtype::AAAA => composed(owner, ttl, Aaaa::scan(data), target),
            Rtype::CNAME => composed(owner, ttl, Cname::scan(data), target),
            Rtype::MX => composed(owner, ttl, Mx::scan(data), target),
            Rtype::TXT => composed(owner, ttl, Txt::scan(data), target),
            Rtype::PTR => composed(owner, ttl, Ptr::scan(data), target),
            Rtype::SRV => composed(owner, ttl, Srv::scan(data), target),
            other => return Err(alloc::format!("type {other} is not served from a master file read at run time")),
        };
        scanned.map_err(|e| alloc::format!("{rtype} data: {e}"))?;
        if self.soa.len() + self.rest.len() + self.before_soa_len > self.limits.max_wire {
            return Err(alloc::format!("over {} bytes in wire format", self.limits.max_wire));
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<u8>, MasterFileError> {
        if self.apex.is_none() {
            return Err(MasterFileError::zone("no SOA record: the zone's apex is its SOA's owner"));
        }
        let mut wire = self.soa;
        wire.extend(self.rest);
        Ok(wire)
    }
}

/// Appends the record (owner, type, class IN, TTL, length, `data`) to
/// `target`, as `zone!` writes it.
fn composed<D: ComposeRecordData>(
    owner: &Name<Vec<u8>>,
    ttl: Ttl,
    data: Result<D, StrError>,
    target: &mut Vec<u8>,
) -> Result<(), StrError> {
    Record::new(owner, Class::IN, ttl, data?).compose(target).map_err(|_| StrError::custom("record data too long"))
}

#[cfg(test)]
mod tests;
