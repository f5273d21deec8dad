//! The stream's refusals, off the network: an in-memory client sends
//! scripted bytes; what the server writes back is checked byte for byte.
//! (Full handshakes with real clients: targets/runner/tests/https.rs.)

use crate::acceptor::Permit;
use crate::error::Error;
use crate::stream::TlsStream;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::convert::Infallible;
use core::sync::atomic::AtomicUsize;
use embedded_io_async::{ErrorType, Read, Write};
use futures_util::FutureExt;
use rustls::server::{ClientHello, ResolvesServerCert, UnbufferedServerConnection};
use rustls::sign::CertifiedKey;
// The target's clocks, which `unikernel_core::time` links against.
use unikernel_hosted as _;

/// A client that sends `input` and then closes; keeps what it is sent.
struct Client {
    input: Vec<u8>,
    sent: usize,
    output: Vec<u8>,
}

impl ErrorType for Client {
    type Error = Infallible;
}

impl Read for Client {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let n = buf.len().min(self.input.len() - self.sent);
        buf[..n].copy_from_slice(&self.input[self.sent..self.sent + n]);
        self.sent += n;
        Ok(n)
    }
}

impl Write for Client {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Runs the server handshake against `input`; returns its end and what the
/// server sent. Nothing here waits, so one poll finishes it.
fn handshake(input: &[u8]) -> (Error<Infallible>, Vec<u8>) {
    let config = crate::config::config(Arc::new(NoCertificate)).expect("config");
    let conn = UnbufferedServerConnection::new(config).expect("connection");
    let permit = Permit::take(&Arc::new(AtomicUsize::new(0)), 1).expect("a place");
    let client = Client { input: input.to_vec(), sent: 0, output: Vec::new() };
    let mut stream = TlsStream::new(client, conn, permit);
    let end = stream.handshake().now_or_never().expect("finished without waiting");
    (end.expect_err("refused"), stream.into_io().output)
}

/// No certificate for anyone: these handshakes fail before choosing one.
#[derive(Debug)]
struct NoCertificate;

impl ResolvesServerCert for NoCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        None
    }
}

/// A fatal alert record with `description`.
fn alert(description: u8) -> Vec<u8> {
    alloc::vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description]
}

#[test]
fn plain_http_gets_a_decode_error_alert() {
    let (end, sent) = handshake(b"GET / HTTP/1.1\r\n\r\n");
    assert!(matches!(end, Error::Tls(_)), "{end:?}");
    assert_eq!(sent, alert(50));
}

#[test]
fn a_record_longer_than_tls_allows_gets_an_alert_before_its_bytes() {
    let (end, sent) = handshake(&[0x16, 0x03, 0x03, 0xff, 0xff]);
    assert!(matches!(end, Error::Tls(_)), "{end:?}");
    assert_eq!(sent[..5], alert(0)[..5], "an alert: {sent:?}");
}

#[test]
fn a_client_that_closes_mid_hello_is_closed_without_a_reply() {
    let (end, sent) = handshake(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
    assert_eq!(end, Error::Closed);
    assert_eq!(sent, b"");
}

#[test]
fn a_hello_announced_beyond_every_limit_is_refused_without_a_panic() {
    // A ClientHello header claiming 16 MiB, then full records of its "rest".
    let mut input = alloc::vec![0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0xff, 0xff, 0xff, 0x03, 0x03, 0x00, 0x00];
    for _ in 0..3 {
        input.extend([0x16, 0x03, 0x03, 0x40, 0x00]);
        input.extend([0u8; 0x4000]);
    }
    let (end, _) = handshake(&input);
    assert!(matches!(end, Error::Tls(_)), "{end:?}");
}

#[test]
fn an_acceptor_at_its_cap_closes_before_any_tls_work() {
    let config = crate::config::config(Arc::new(NoCertificate)).expect("config");
    let acceptor = crate::Acceptor::new(config, crate::Limits { max_connections: 0, ..crate::Limits::default() });
    let busy = crate::metrics::BUSY.get();
    let client = Client { input: b"\x16\x03\x01".to_vec(), sent: 0, output: Vec::new() };
    let end = acceptor.accept(client).now_or_never().expect("no waiting");
    assert!(matches!(end, Err(Error::Busy)));
    assert_eq!(crate::metrics::BUSY.get(), busy + 1);
    assert_eq!(acceptor.open(), 0);
}

#[test]
fn the_cap_gives_places_back_when_connections_end() {
    let open = Arc::new(AtomicUsize::new(0));
    let first = Permit::take(&open, 2).expect("first");
    let second = Permit::take(&open, 2).expect("second");
    assert!(Permit::take(&open, 2).is_none(), "a third beyond max_connections = 2");
    drop(first);
    assert!(Permit::take(&open, 2).is_some(), "a place again once one closed");
    drop(second);
}
