//! [`TlsStream`]: rustls's unbuffered server connection driven over an
//! `embedded-io-async` stream, itself `Read + Write` for what runs on top
//! (the HTTP server loop).
//!
//! rustls's unbuffered API leaves the buffers to the caller: one fixed
//! buffer of the largest record rustls accepts for incoming bytes, one for
//! outgoing records, and the plaintext of decrypted records not yet read.
//! Larger records are refused by rustls itself (a `record_overflow` alert),
//! so no client makes a connection hold more than these.

use crate::error::Error;
use alloc::vec;
use alloc::vec::Vec;
use embedded_io_async::{ErrorType, Read, Write};
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, UnbufferedStatus};

/// The largest TLS record on the wire rustls accepts: a 5-byte header and
/// 16 KiB of plaintext plus up to 2 KiB of expansion.
const MAX_RECORD: usize = 5 + (1 << 14) + 2048;

/// Plaintext per outgoing record: one full TLS record.
const MAX_PLAINTEXT: usize = 1 << 14;

/// What [`TlsStream::advance`] left to do.
enum Next {
    /// Records are waiting in `outgoing`: send them.
    Transmit,
    /// rustls needs more bytes from the peer.
    NeedData,
    /// Decrypted application data is waiting in `plain`.
    Data,
    /// Handshake done, nothing to read: `n` bytes of the caller's were
    /// encrypted into `outgoing`.
    Writable(usize),
    /// The peer sent close_notify.
    Closed,
    /// rustls refused the peer; its alert, if any, is in `outgoing`.
    Failed(rustls::Error),
}

/// A TLS 1.3 server connection over `S`, from [`Acceptor::accept`](crate::Acceptor::accept).
pub struct TlsStream<S> {
    io: S,
    conn: UnbufferedServerConnection,
    /// Bytes received, not yet consumed by rustls: `incoming[..filled]`.
    incoming: Vec<u8>,
    filled: usize,
    /// Records to send: `outgoing[..queued]`.
    outgoing: Vec<u8>,
    queued: usize,
    /// Decrypted bytes not yet read: `plain[read..]`.
    plain: Vec<u8>,
    read: usize,
    peer_closed: bool,
    /// Held for the connection's life: releases its place in the cap.
    _permit: crate::acceptor::Permit,
}

impl<S: Read + Write> TlsStream<S> {
    pub(crate) fn new(io: S, conn: UnbufferedServerConnection, permit: crate::acceptor::Permit) -> Self {
        Self {
            io,
            conn,
            incoming: vec![0; MAX_RECORD],
            filled: 0,
            outgoing: vec![0; MAX_RECORD],
            queued: 0,
            plain: Vec::new(),
            read: 0,
            peer_closed: false,
            _permit: permit,
        }
    }

    /// The stream underneath (for tests that read what was sent).
    #[cfg(test)]
    pub(crate) fn into_io(self) -> S {
        self.io
    }

    /// Runs the handshake to its end: the peer's Finished has arrived.
    pub(crate) async fn handshake(&mut self) -> Result<(), Error<S::Error>> {
        loop {
            match self.advance(&[]) {
                Next::Transmit => self.transmit().await?,
                Next::NeedData => self.receive().await?,
                // Writable after our Finished, before the client's.
                Next::Writable(_) if self.conn.is_handshaking() => self.receive().await?,
                Next::Data | Next::Writable(_) => return Ok(()),
                Next::Closed => return Err(Error::Closed),
                Next::Failed(e) => return Err(self.fail(e).await),
            }
        }
    }

    /// Feeds rustls the bytes received so far and does what it asks that
    /// needs no I/O, until it needs some; encrypts (part of) `app` once the
    /// connection is writable.
    fn advance(&mut self, app: &[u8]) -> Next {
        loop {
            let UnbufferedStatus { discard, state } = self.conn.process_tls_records(&mut self.incoming[..self.filled]);
            let next = match state {
                Err(e) => Some(Next::Failed(e)),
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(record) => self.plain.extend_from_slice(record.payload),
                            Err(e) => return Next::Failed(e),
                        }
                    }
                    Some(Next::Data)
                }
                Ok(ConnectionState::EncodeTlsData(mut data)) => match data.encode(&mut self.outgoing[self.queued..]) {
                    Ok(n) => {
                        self.queued += n;
                        None
                    }
                    Err(_) => Some(Next::Failed(rustls::Error::General("outgoing record buffer too small".into()))),
                },
                Ok(ConnectionState::TransmitTlsData(data)) => {
                    // `done` only clears rustls's flag; the caller sends
                    // `outgoing` before it calls `advance` again.
                    data.done();
                    Some(Next::Transmit)
                }
                Ok(ConnectionState::BlockedHandshake) => Some(Next::NeedData),
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    let chunk = &app[..app.len().min(MAX_PLAINTEXT)];
                    match chunk.is_empty() {
                        true => Some(Next::Writable(0)),
                        false => match traffic.encrypt(chunk, &mut self.outgoing[self.queued..]) {
                            Ok(n) => {
                                self.queued += n;
                                Some(Next::Writable(chunk.len()))
                            }
                            Err(_) => {
                                Some(Next::Failed(rustls::Error::General("outgoing record buffer too small".into())))
                            }
                        },
                    }
                }
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => Some(Next::Closed),
                // Early data is never enabled, so never offered to us.
                Ok(_) => Some(Next::Failed(rustls::Error::General("unexpected connection state".into()))),
            };
            self.incoming.copy_within(discard..self.filled, 0);
            self.filled -= discard;
            if let Some(Next::Failed(e)) = next {
                self.queue_alerts();
                return Next::Failed(e);
            }
            if let Some(next) = next {
                return next;
            }
        }
    }

    /// Encodes the alert rustls queued when it refused the peer. rustls
    /// hands queued records out before it looks at the input again (which
    /// would fail a second time), and the input passed must be the one it
    /// saw: it keeps offsets into it for handshake messages joined across
    /// records.
    fn queue_alerts(&mut self) {
        let UnbufferedStatus { discard, state } = self.conn.process_tls_records(&mut self.incoming[..self.filled]);
        if let Ok(ConnectionState::EncodeTlsData(mut data)) = state {
            self.queued += data.encode(&mut self.outgoing[self.queued..]).unwrap_or(0);
        }
        self.incoming.copy_within(discard..self.filled, 0);
        self.filled -= discard;
    }

    /// Sends the alert (best effort: the peer may be gone) and returns the error.
    async fn fail(&mut self, e: rustls::Error) -> Error<S::Error> {
        let _ = self.transmit().await;
        Error::Tls(e)
    }

    async fn transmit(&mut self) -> Result<(), Error<S::Error>> {
        let mut sent = 0;
        while sent < self.queued {
            match self.io.write(&self.outgoing[sent..self.queued]).await.map_err(Error::Io)? {
                0 => return Err(Error::Closed),
                n => sent += n,
            }
        }
        // No flush: on a TCP stream it waits for the peer's ACK, which a
        // delayed ACK holds back 40 ms per record. Callers flush when a
        // whole message is out.
        self.queued = 0;
        Ok(())
    }

    /// Reads more bytes from the peer; a peer that closes mid-record (or
    /// mid-handshake) has ended the connection.
    async fn receive(&mut self) -> Result<(), Error<S::Error>> {
        // rustls refuses a record longer than the buffer before it is full,
        // but joins a handshake message across records in it.
        if self.filled == self.incoming.len() {
            return Err(Error::Tls(rustls::Error::General("handshake message larger than the record buffer".into())));
        }
        let n = self.io.read(&mut self.incoming[self.filled..]).await.map_err(Error::Io)?;
        if n == 0 {
            return Err(Error::Closed);
        }
        self.filled += n;
        Ok(())
    }
}

impl<S: Read + Write> ErrorType for TlsStream<S> {
    type Error = Error<S::Error>;
}

impl<S: Read + Write> Read for TlsStream<S> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            if self.read < self.plain.len() {
                let n = buf.len().min(self.plain.len() - self.read);
                buf[..n].copy_from_slice(&self.plain[self.read..self.read + n]);
                self.read += n;
                if self.read == self.plain.len() {
                    self.plain.clear();
                    self.read = 0;
                }
                return Ok(n);
            }
            if self.peer_closed {
                return Ok(0);
            }
            match self.advance(&[]) {
                Next::Transmit => self.transmit().await?,
                Next::Data => {}
                Next::NeedData | Next::Writable(_) => match self.receive().await {
                    // A TCP close without close_notify ends the stream too:
                    // what was read is all there is.
                    Err(Error::Closed) => self.peer_closed = true,
                    other => other?,
                },
                Next::Closed => self.peer_closed = true,
                Next::Failed(e) => return Err(self.fail(e).await),
            }
        }
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.advance(buf) {
                Next::Transmit => self.transmit().await?,
                // Kept in `plain` for the next read.
                Next::Data => {}
                // Writing after the peer's close_notify is allowed, once.
                Next::Closed if self.peer_closed => return Err(Error::Closed),
                Next::Closed => self.peer_closed = true,
                Next::NeedData => self.receive().await?,
                Next::Writable(n) => {
                    self.transmit().await?;
                    return Ok(n);
                }
                Next::Failed(e) => return Err(self.fail(e).await),
            }
        }
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.io.flush().await.map_err(Error::Io)
    }
}
