//! The `net` component: `#[unikernel] async fn main(net: Net)`.
//!
//! On bare metal it is a smoltcp TCP/IP stack (IPv4, ARP, ICMP echo,
//! DHCPv4, DNS) over the virtio-net driver, driven by the device's
//! interrupts and smoltcp's own timers: a single task polls the stack when
//! a frame arrives, a socket changed, or a protocol timer is due, and
//! sleeps otherwise. Hosted, the same API sits on the host's sockets.
//!
//! `main` takes the handle (`#[unikernel] async fn main(net: Net)`, DHCP), or
//! the attribute names the component with a static address:
//! `#[unikernel(net(ip = "10.0.2.15/24", gateway = "10.0.2.2"))]` after
//! `use unikernel_net::net;` (the README's examples compile both). Then:
//!
//! ```no_run
//! use unikernel_core::executor::spawn;
//! use unikernel_net::{Net, NetError};
//!
//! async fn hello_server(net: &Net) -> Result<(), NetError> {
//!     let listener = net.tcp_listen(80).await?;
//!     loop {
//!         let (mut conn, _peer) = listener.accept().await?;
//!         spawn(async move { conn.write_all(b"hello\n").await });
//!     }
//! }
//! # fn main() { let _ = hello_server; }
//! ```
#![cfg_attr(target_os = "none", no_std)]

extern crate alloc;

pub mod capture;
mod config;
#[doc(hidden)]
pub mod engine;
mod error;
mod io;
pub mod metrics;
mod waiters;

#[cfg(not(target_os = "none"))]
mod hosted;
#[cfg(any(target_os = "none", test))]
mod phy;
#[cfg(target_os = "none")]
mod stack;
#[cfg(target_os = "none")]
mod tcp;
#[cfg(target_os = "none")]
mod udp;

use unikernel_core::vmm::{Record, virtio};

#[doc(hidden)]
pub use config::effective_in;
pub use config::{Config, Options, Static, max_connections, parse_cidr};
pub use error::NetError;
#[cfg(not(target_os = "none"))]
pub use hosted::{Net, TcpListener, TcpStream, UdpSocket};
#[cfg(target_os = "none")]
pub use stack::Net;
#[cfg(target_os = "none")]
pub use tcp::{TcpListener, TcpStream};
#[cfg(target_os = "none")]
pub use udp::UdpSocket;

impl unikernel_core::component::Component for Net {
    const NAME: &'static str = "net";
    /// A network device for the VMM to attach (and back with the host's network).
    const NEEDS: &'static [Record] = &[Record::virtio(virtio::NET, Self::NAME).required()];
    type Options = Options;

    fn init(options: &Options) -> Result<(), unikernel_core::Error> {
        let config = config::effective(options.config)?;
        #[cfg(target_os = "none")]
        return stack::start(config);
        #[cfg(not(target_os = "none"))]
        return hosted::start(config);
    }
}

impl unikernel_core::component::Handle for Net {
    type Component = Self;

    fn take() -> Result<Self, unikernel_core::Error> {
        Net::get()
    }
}

#[doc(hidden)]
pub use unikernel_core as __unikernel;
#[doc(hidden)]
pub use unikernel_net_macros::options as __net_options;

/// Names the component in `#[unikernel(...)]`, with its options:
/// `net`, `net(dhcp)` or
/// `net(ip = "10.0.2.15/24", gateway = "10.0.2.2", dns = "10.0.2.3")`.
/// A parameter `net: Net` of `main` alone starts it with DHCP.
#[doc(hidden)]
#[macro_export]
macro_rules! __net {
    ($($options:tt)*) => { $crate::__net_options!{ $crate ; $($options)* } };
}
pub use __net as net;

/// Names the packet capture in `#[unikernel(...)]`: `unikernel_net::pcap`
/// ([`capture`]; no options yet).
#[doc(hidden)]
#[macro_export]
macro_rules! __pcap {
    ($($options:tt)*) => {
        $crate::__unikernel::component::options!($crate::capture::Pcap, $crate::capture::Options; $($options)*)
    };
}
pub use __pcap as pcap;
