//! The network side: one task answers UDP, one task per TCP connection,
//! each bounded by [`Limits`].

use crate::answer::{Transport, respond};
use crate::zone::Zone;
use alloc::rc::Rc;
use alloc::vec;
use core::time::Duration;
use unikernel_core::executor::spawn;
use unikernel_core::timer::timeout;
use unikernel_net::{Net, NetError, TcpListener, TcpStream, UdpSocket};

/// What one client can take from the server; every bound is refused
/// cleanly (a dropped datagram, a closed connection), never by running out.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest query read: longer datagrams are dropped, and a TCP
    /// length prefix above it closes the connection.
    pub max_query: usize,
    /// The largest UDP response with EDNS (the query's own size if
    /// smaller; 512 bytes without EDNS). 1232 avoids IP fragmentation
    /// (DNS flag day 2020).
    pub max_udp_payload: u16,
    /// TCP connections at once; more are refused with an RST.
    pub max_tcp_connections: usize,
    /// How long a TCP connection may last, whatever it sends: a client
    /// that drips a byte at a time cannot hold its place.
    pub tcp_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_query: 1232, max_udp_payload: 1232, max_tcp_connections: 16, tcp_deadline: Duration::from_secs(10) }
    }
}

/// A zone served on a port over UDP and TCP.
pub struct Server {
    zone: Rc<Zone>,
    limits: Limits,
    udp: UdpSocket,
    tcp: TcpListener,
}

impl Server {
    /// Binds `port` over UDP and TCP (each says so on the console, which
    /// opens the runner's forwards).
    pub async fn bind(net: Net, port: u16, zone: Zone, limits: Limits) -> Result<Self, NetError> {
        let udp = net.udp_bind(port).await?;
        let tcp = net.tcp_listen(port).await?;
        tcp.set_max_connections(limits.max_tcp_connections);
        Ok(Self { zone: Rc::new(zone), limits, udp, tcp })
    }

    /// Answers until the network fails.
    pub async fn run(self) -> Result<(), NetError> {
        spawn(udp(self.udp, self.zone.clone(), self.limits));
        loop {
            let (conn, _peer) = self.tcp.accept().await?;
            spawn(tcp(conn, self.zone.clone(), self.limits));
        }
    }
}

async fn udp(socket: UdpSocket, zone: Rc<Zone>, limits: Limits) {
    // One byte more than a query may have, to tell a longer one.
    let mut buf = vec![0; limits.max_query + 1];
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        if n <= limits.max_query
            && let Some(response) = respond(&zone, &buf[..n], Transport::Udp, limits.max_udp_payload)
        {
            let _ = socket.send_to(&response, from).await;
        }
    }
}

/// Queries of one connection, each after its two-byte length (RFC 1035
/// §4.2.2), answered in order until the client closes, sends what gets no
/// answer, or the deadline passes.
async fn tcp(mut conn: TcpStream, zone: Rc<Zone>, limits: Limits) {
    let mut buf = vec![0; limits.max_query];
    let answered = timeout(limits.tcp_deadline, async {
        loop {
            let mut len = [0; 2];
            if !read_exact(&mut conn, &mut len).await? {
                return Ok(());
            }
            let query = buf.get_mut(..usize::from(u16::from_be_bytes(len))).ok_or(NetError::InvalidInput)?;
            if !read_exact(&mut conn, query).await? {
                return Err(NetError::ConnectionReset);
            }
            let response =
                respond(&zone, query, Transport::Tcp, limits.max_udp_payload).ok_or(NetError::InvalidInput)?;
            let len = u16::try_from(response.len()).map_err(|_| NetError::InvalidInput)?;
            conn.write_all(&len.to_be_bytes()).await?;
            conn.write_all(&response).await?;
        }
    })
    .await;
    match answered {
        // Done, or refused: what was answered still reaches the client.
        Ok(Ok(()) | Err(NetError::InvalidInput)) => conn.close(),
        _ => conn.abort(),
    }
}

/// Fills `buf`; false on end of stream before its first byte.
async fn read_exact(conn: &mut TcpStream, buf: &mut [u8]) -> Result<bool, NetError> {
    let mut at = 0;
    while at < buf.len() {
        match conn.read(&mut buf[at..]).await? {
            0 if at == 0 => return Ok(false),
            0 => return Err(NetError::ConnectionReset),
            n => at += n,
        }
    }
    Ok(true)
}
