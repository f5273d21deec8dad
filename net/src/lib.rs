//! The `net` component: `#[unikernel(net)] async fn main(net: Net)`.
//!
//! On bare metal it is a smoltcp TCP/IP stack (IPv4, ARP, ICMP echo,
//! DHCPv4, DNS) over the virtio-net driver, driven by the device's
//! interrupts and smoltcp's own timers: a single task polls the stack when
//! a frame arrives, a socket changed, or a protocol timer is due, and
//! sleeps otherwise. Hosted, the same API sits on the host's sockets.
//!
//! ```ignore
//! #[unikernel(net(ip = "10.0.2.15/24", gateway = "10.0.2.2"))]
//! async fn main(net: Net) -> Result<(), Error> {
//!     let listener = net.tcp_listen(80).await?;
//!     loop {
//!         let (mut conn, _peer) = listener.accept().await?;
//!         spawn(async move { conn.write_all(b"hello\n").await });
//!     }
//! }
//! ```
#![cfg_attr(target_os = "none", no_std)]

extern crate alloc;

mod config;
#[doc(hidden)]
pub mod engine;
mod error;
mod io;
mod waiters;

#[cfg(not(target_os = "none"))]
mod hosted;
#[cfg(target_os = "none")]
mod phy;
#[cfg(target_os = "none")]
mod stack;
#[cfg(target_os = "none")]
mod tcp;
#[cfg(target_os = "none")]
mod udp;

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

impl unikernel_core::component::Handle for Net {
    fn take() -> Result<Self, unikernel_core::Error> {
        Net::get()
    }
}

#[doc(hidden)]
pub mod __component {
    use crate::{Options, config};
    use unikernel_core::Error;
    use unikernel_core::vmm::{Record, virtio};

    // A network device for the VMM to attach (and back with the host's
    // network); in every image that links this crate.
    unikernel_core::vmm_records!(Record::virtio(virtio::NET, "net").required());

    pub fn init(options: &Options) -> Result<(), Error> {
        let config = config::effective(options.config)?;
        #[cfg(target_os = "none")]
        return crate::stack::start(config);
        #[cfg(not(target_os = "none"))]
        return crate::hosted::start(config);
    }
}
