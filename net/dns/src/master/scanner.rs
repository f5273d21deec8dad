//! `domain`'s [`Scanner`] over one record's data tokens: its
//! `IterScanner` does the work, and names relative to `$ORIGIN` (and `@`)
//! are completed here, as the master-file format defines them.

use alloc::vec::Vec;
use domain::base::charstr::CharStr;
use domain::base::name::{Name, NameBuilder};
use domain::base::scan::{ConvertSymbols, EntrySymbol, IterScanner, Scanner, ScannerError, StrError, Symbol, Symbols};
use domain::dep::octseq::str::Str;

/// The current `$ORIGIN`, if any.
pub(super) type Origin = Option<Name<Vec<u8>>>;

/// Symbols in a name's text: 255 octets, each at most a 4-character
/// `\DDD`. Longer tokens are refused before they are collected (a symbol
/// takes 8 bytes: a 1 MiB token would take 8 MiB).
const MAX_NAME_SYMBOLS: usize = 4 * Name::MAX_LEN;
const TOO_LONG: &str = "a domain name over 255 bytes";

/// The name `token` spells: absolute when it ends in an unescaped dot,
/// else relative to `origin`; `@` is `origin` itself.
pub(super) fn name(token: &str, origin: Option<&Name<Vec<u8>>>) -> Result<Name<Vec<u8>>, &'static str> {
    if token.len() > MAX_NAME_SYMBOLS {
        return Err(TOO_LONG);
    }
    from_symbols(Symbols::new(token.chars()).collect(), origin)
}

fn from_symbols(symbols: Vec<Symbol>, origin: Option<&Name<Vec<u8>>>) -> Result<Name<Vec<u8>>, &'static str> {
    let relative = || origin.ok_or("a relative name and no $ORIGIN before it");
    match symbols.as_slice() {
        [Symbol::Char('@')] => relative().cloned(),
        [.., Symbol::Char('.')] => Name::from_symbols(symbols).map_err(|_| "an invalid domain name"),
        _ => {
            let origin = relative()?;
            let mut builder = NameBuilder::<Vec<u8>>::new();
            for symbol in symbols {
                builder.push_symbol(symbol).map_err(|_| "an invalid domain name")?;
            }
            builder.append_origin(origin).map_err(|_| TOO_LONG)
        }
    }
}

/// A record's data tokens, read by `domain`'s `Scan` code.
pub(super) struct Tokens<'o, I: Iterator> {
    inner: IterScanner<I, Vec<u8>>,
    origin: Option<&'o Name<Vec<u8>>>,
}

impl<'o, I: Iterator<Item: AsRef<str>>> Tokens<'o, I> {
    pub(super) fn new(tokens: I, origin: Option<&'o Name<Vec<u8>>>) -> Self {
        Self { inner: IterScanner::new(tokens), origin }
    }
}

impl<I: Iterator<Item: AsRef<str>>> Scanner for Tokens<'_, I> {
    type Octets = Vec<u8>;
    type OctetsBuilder = Vec<u8>;
    type Name = Name<Vec<u8>>;
    type Error = StrError;

    fn scan_name(&mut self) -> Result<Self::Name, Self::Error> {
        let mut symbols = Vec::new();
        self.inner.scan_symbols(|symbol| {
            if symbols.len() == MAX_NAME_SYMBOLS {
                return Err(StrError::custom(TOO_LONG));
            }
            symbols.push(symbol);
            Ok(())
        })?;
        from_symbols(symbols, self.origin).map_err(StrError::custom)
    }

    fn has_space(&self) -> bool {
        self.inner.has_space()
    }

    fn continues(&mut self) -> bool {
        self.inner.continues()
    }

    fn scan_symbols<F: FnMut(Symbol) -> Result<(), Self::Error>>(&mut self, op: F) -> Result<(), Self::Error> {
        self.inner.scan_symbols(op)
    }

    fn scan_entry_symbols<F: FnMut(EntrySymbol) -> Result<(), Self::Error>>(
        &mut self,
        op: F,
    ) -> Result<(), Self::Error> {
        self.inner.scan_entry_symbols(op)
    }

    fn convert_token<C: ConvertSymbols<Symbol, Self::Error>>(&mut self, convert: C) -> Result<Vec<u8>, Self::Error> {
        self.inner.convert_token(convert)
    }

    fn convert_entry<C: ConvertSymbols<EntrySymbol, Self::Error>>(
        &mut self,
        convert: C,
    ) -> Result<Vec<u8>, Self::Error> {
        self.inner.convert_entry(convert)
    }

    fn scan_octets(&mut self) -> Result<Vec<u8>, Self::Error> {
        self.inner.scan_octets()
    }

    fn scan_ascii_str<F: FnOnce(&str) -> Result<T, Self::Error>, T>(&mut self, op: F) -> Result<T, Self::Error> {
        self.inner.scan_ascii_str(op)
    }

    fn scan_charstr(&mut self) -> Result<CharStr<Vec<u8>>, Self::Error> {
        self.inner.scan_charstr()
    }

    fn scan_string(&mut self) -> Result<Str<Vec<u8>>, Self::Error> {
        self.inner.scan_string()
    }

    fn scan_charstr_entry(&mut self) -> Result<Vec<u8>, Self::Error> {
        self.inner.scan_charstr_entry()
    }

    fn scan_opt_unknown_marker(&mut self) -> Result<bool, Self::Error> {
        self.inner.scan_opt_unknown_marker()
    }

    fn octets_builder(&mut self) -> Result<Vec<u8>, Self::Error> {
        self.inner.octets_builder()
    }
}
