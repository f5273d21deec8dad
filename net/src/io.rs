//! `write_all` for both targets' streams, and `embedded-io-async` for
//! them, so crates written against those traits (HTTP servers, TLS,
//! protocol codecs) run on this stack.

use crate::{NetError, TcpStream};
use embedded_io_async::{ErrorType, Read, Write};

impl TcpStream {
    /// Writes all of `buf`, waiting for room as needed (both targets).
    pub async fn write_all(&mut self, mut buf: &[u8]) -> Result<(), NetError> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            buf = &buf[n..];
        }
        Ok(())
    }
}

impl ErrorType for TcpStream {
    type Error = NetError;
}

impl Read for TcpStream {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        TcpStream::read(self, buf).await
    }
}

impl Write for TcpStream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        TcpStream::write(self, buf).await
    }

    async fn flush(&mut self) -> Result<(), NetError> {
        TcpStream::flush(self).await
    }
}
