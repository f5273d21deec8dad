use alloc::borrow::Cow;
use alloc::boxed::Box;
use core::fmt;

/// The error type of `main`, components and tests.
///
/// Like `anyhow::Error` it converts from any `core::error::Error`, so `?`
/// works on library errors, and [`Error::msg`] makes one from text.
pub struct Error {
    inner: Inner,
}

enum Inner {
    Message(Cow<'static, str>),
    Source(Box<dyn core::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// An error carrying only a message.
    pub fn msg(message: impl Into<Cow<'static, str>>) -> Self {
        Self { inner: Inner::Message(message.into()) }
    }
}

impl<E: core::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        Self { inner: Inner::Source(Box::new(error)) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Message(m) => f.write_str(m),
            Inner::Source(e) => {
                write!(f, "{e}")?;
                let mut source = e.source();
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(Inner2);
    #[derive(Debug)]
    struct Inner2;
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }
    impl fmt::Display for Inner2 {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("inner")
        }
    }
    impl core::error::Error for Inner2 {}
    impl core::error::Error for Outer {
        fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn display_walks_the_source_chain() {
        assert_eq!(Error::from(Outer(Inner2)).to_string(), "outer: inner");
        assert_eq!(Error::msg("plain").to_string(), "plain");
    }
}
