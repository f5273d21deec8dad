//! `embedded-io-async` for the streams, so crates written against those
//! traits (HTTP servers, TLS, protocol codecs) run on this stack.

use crate::{NetError, TcpStream};
use embedded_io_async::{ErrorType, Read, Write};

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
