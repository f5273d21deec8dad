//! Port forwards from the host to the unikernel, and the lines that say
//! where it listens. One grammar for every target: the runner forwards
//! host `127.0.0.1:HOST` to the guest's port `GUEST` through QEMU, and the
//! hosted target binds `127.0.0.1:HOST` itself for the application's port
//! `GUEST`, so the same application is reached at the same address.
//!
//! A forward is `[tcp:|udp:]HOST:GUEST` (`8080:80`, `udp:5353:53`); a list
//! is comma-separated, as in [`ENV`].

use core::fmt;
use core::net::{Ipv4Addr, SocketAddrV4};

/// The environment variable holding a comma-separated list of forwards.
pub const ENV: &str = "UNIKERNEL_FORWARD";

/// The forward used when neither the user nor the application gives one:
/// host 8080 to the guest's HTTP port.
pub const DEFAULT: Forward = Forward { protocol: Protocol::Tcp, host: 8080, guest: 80 };

static DECLARED: spin::Once<Option<&'static [Forward]>> = spin::Once::new();

/// Records the forwards the application declares
/// (`#[unikernel(forward = "...")]`, `Some(&[])` for `"none"`); the runtime
/// calls it at start.
pub(crate) fn declare(forwards: Option<&'static [Forward]>) {
    DECLARED.call_once(|| forwards);
}

/// The forwards to use when the user gives none: the application's (maybe
/// none), or [`DEFAULT`] when it declares nothing. The runner reads the
/// same from the image's records.
pub fn defaults() -> &'static [Forward] {
    DECLARED.get().copied().flatten().unwrap_or(&[DEFAULT])
}

/// Forwards listen on the host's loopback only, as QEMU's do: a development
/// build is not exposed to the network.
pub const HOST_ADDRESS: Ipv4Addr = Ipv4Addr::LOCALHOST;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// The transport a forward carries, as in `tcp:8080-80`.
pub enum Protocol {
    /// Stream connections.
    Tcp,
    /// Datagrams.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`, as QEMU's `hostfwd` rules spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// Host port `host` forwarded to the unikernel's port `guest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Forward {
    /// Transport of both ports.
    pub protocol: Protocol,
    /// Port on the host's loopback that clients connect to.
    pub host: u16,
    /// Port in the unikernel that receives the traffic.
    pub guest: u16,
}

/// A forward that does not follow the grammar; displays the offending text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError<'a>(pub &'a str);

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid forward `{}`: expected [tcp:|udp:]HOST:GUEST with ports 1-65535, e.g. 8080:80", self.0)
    }
}

impl Forward {
    /// Parses `[tcp:|udp:]HOST:GUEST`.
    pub fn parse(text: &str) -> Result<Self, ParseError<'_>> {
        let (protocol, ports) = match text.split_once(':') {
            Some(("udp", rest)) => (Protocol::Udp, rest),
            Some(("tcp", rest)) => (Protocol::Tcp, rest),
            _ => (Protocol::Tcp, text),
        };
        // Digits only: `u16::from_str` would take `+80`.
        let port = |p: &str| {
            Some(p)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))?
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
        };
        match ports.split_once(':').map(|(h, g)| (port(h), port(g))) {
            Some((Some(host), Some(guest))) => Ok(Self { protocol, host, guest }),
            _ => Err(ParseError(text)),
        }
    }

    /// Parses a comma-separated list; spaces around each forward are
    /// allowed (`"tcp:7007:7, udp:7007:7"`).
    pub fn parse_list(text: &str) -> impl Iterator<Item = Result<Self, ParseError<'_>>> {
        text.split(',').map(|forward| Self::parse(forward.trim()))
    }

    /// The host address the forward listens on.
    pub fn host_address(&self) -> SocketAddrV4 {
        SocketAddrV4::new(HOST_ADDRESS, self.host)
    }
}

/// The forward among `forwards` that reaches the unikernel's `port`.
pub fn to_guest(forwards: &[Forward], protocol: Protocol, port: u16) -> Option<&Forward> {
    forwards.iter().find(|f| f.protocol == protocol && f.guest == port)
}

/// Where a client reaches the unikernel's `port`: `http://127.0.0.1:8080/
/// (guest port 80)` for HTTP's port, `127.0.0.1:7007 (guest UDP port 7)`
/// otherwise. Follows `listening on ` in the ready lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reachable {
    /// Transport of the guest's port.
    pub protocol: Protocol,
    /// Host address and port a client connects to.
    pub at: SocketAddrV4,
    /// The guest port behind it.
    pub port: u16,
}

impl fmt::Display for Reachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol {
            Protocol::Tcp if self.port == 80 => write!(f, "http://{}/ (guest port 80)", self.at),
            Protocol::Tcp => write!(f, "{} (guest TCP port {})", self.at, self.port),
            Protocol::Udp => write!(f, "{} (guest UDP port {})", self.at, self.port),
        }
    }
}

/// The console line a bare-metal unikernel prints when it starts listening
/// on a port; the runner reads it to open the port's forward and say where
/// to connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listening {
    /// Transport the guest listens on.
    pub protocol: Protocol,
    /// The guest port it listens on.
    pub port: u16,
    /// The guest's IPv4 address, once it has one: where a host on its own
    /// network (a tap) reaches the port.
    pub address: Option<Ipv4Addr>,
}

const LISTENING: &str = "net: listening on ";

impl fmt::Display for Listening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.protocol {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        };
        write!(f, "{LISTENING}{protocol} port {}", self.port)?;
        match self.address {
            Some(address) => write!(f, " at {address}"),
            None => Ok(()),
        }
    }
}

impl Listening {
    /// Reads a line printed by [`Listening`]'s `Display` (surrounding
    /// whitespace, such as a serial `\r`, aside).
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.trim().strip_prefix(LISTENING)?;
        let (protocol, port) = rest.split_once(" port ")?;
        let protocol = match protocol {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            _ => return None,
        };
        let (port, address) = match port.split_once(" at ") {
            Some((port, address)) => (port, Some(address.parse().ok()?)),
            None => (port, None),
        };
        let port = Some(port).filter(|p| p.bytes().all(|b| b.is_ascii_digit()))?.parse().ok()?;
        Some(Self { protocol, port, address })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;
    use std::vec::Vec;

    const fn tcp(host: u16, guest: u16) -> Forward {
        Forward { protocol: Protocol::Tcp, host, guest }
    }

    #[test]
    fn forwards_take_an_optional_protocol() {
        assert_eq!(Forward::parse("8080:80"), Ok(tcp(8080, 80)));
        assert_eq!(Forward::parse("tcp:2222:22"), Ok(tcp(2222, 22)));
        assert_eq!(Forward::parse("udp:5555:7"), Ok(Forward { protocol: Protocol::Udp, host: 5555, guest: 7 }));
        let list: Result<Vec<_>, _> = Forward::parse_list("8080:80, udp:5555:7 ").collect();
        assert_eq!(list, Ok(std::vec![tcp(8080, 80), Forward { protocol: Protocol::Udp, host: 5555, guest: 7 }]));
    }

    #[test]
    fn malformed_forwards_are_refused_with_the_text() {
        for bad in [
            "",
            "8080",
            "sctp:1:2",
            "0:80",
            "80:0",
            "65536:80",
            "+80:80",
            "80:-1",
            "tcp:",
            "a:b",
            "8080:80:1",
            " 80:80",
        ] {
            let err = Forward::parse(bad).expect_err(bad);
            assert!(err.to_string().contains(&std::format!("`{bad}`")), "{err}");
        }
        assert!(Forward::parse_list("8080:80,,1:2").any(|f| f.is_err()), "an empty entry is an error");
    }

    #[test]
    fn the_forward_to_a_port_matches_protocol_and_port() {
        let forwards = [tcp(8080, 80), Forward { protocol: Protocol::Udp, host: 7007, guest: 7 }, tcp(2222, 22)];
        assert_eq!(to_guest(&forwards, Protocol::Tcp, 22), Some(&tcp(2222, 22)));
        assert_eq!(to_guest(&forwards, Protocol::Tcp, 7), None, "only UDP is forwarded to 7");
        assert_eq!(
            to_guest(&[DEFAULT], Protocol::Tcp, 80).map(Forward::host_address),
            Some("127.0.0.1:8080".parse().unwrap())
        );
    }

    #[test]
    fn reachable_addresses_read_as_urls_for_http() {
        let at = |port| SocketAddrV4::new(HOST_ADDRESS, port);
        let line = |protocol, port, guest| Reachable { protocol, at: at(port), port: guest }.to_string();
        assert_eq!(line(Protocol::Tcp, 8080, 80), "http://127.0.0.1:8080/ (guest port 80)");
        assert_eq!(line(Protocol::Tcp, 7007, 7), "127.0.0.1:7007 (guest TCP port 7)");
        assert_eq!(line(Protocol::Udp, 7007, 7), "127.0.0.1:7007 (guest UDP port 7)");
    }

    #[test]
    fn the_listening_line_reads_back() {
        let at = Some(Ipv4Addr::new(10, 0, 2, 15));
        for listening in [
            Listening { protocol: Protocol::Tcp, port: 80, address: None },
            Listening { protocol: Protocol::Udp, port: 65535, address: None },
            Listening { protocol: Protocol::Tcp, port: 80, address: at },
        ] {
            let line = listening.to_string();
            assert_eq!(Listening::parse(&line), Some(listening), "{line}");
            assert_eq!(Listening::parse(&std::format!("{line}\r\n")), Some(listening), "serial line ends");
        }
        assert_eq!(
            Listening::parse("net: listening on TCP port 80"),
            Some(Listening { protocol: Protocol::Tcp, port: 80, address: None })
        );
        assert_eq!(
            Listening::parse("net: listening on TCP port 80 at 10.0.2.15"),
            Some(Listening { protocol: Protocol::Tcp, port: 80, address: at })
        );
        for other in [
            "echo: listening on 10.0.2.15/24 port 7 (TCP and UDP)",
            "net: listening on TCP port 65536",
            "net: listening on TCP port +80",
            "net: listening on SCTP port 80",
            "xnet: listening on TCP port 80",
            "net: listening on TCP port ",
            "net: listening on TCP port 80 at 10.0.2",
            "net: listening on TCP port 80 at ",
        ] {
            assert_eq!(Listening::parse(other), None, "{other}");
        }
    }
}
