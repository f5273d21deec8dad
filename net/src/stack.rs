//! The interface, its sockets, and the task that drives them.
//!
//! Everything lives behind one lock that is only held by synchronous code
//! (never across an await), on the executor's single CPU. Socket futures
//! register smoltcp's wakers and `kick` the driver task after they queue
//! data or free buffer space; the task polls smoltcp, then sleeps until a
//! device interrupt, a kick, or smoltcp's next timer.

use crate::config::{Config, Static};
use crate::phy::Phy;
use crate::{NetError, TcpListener, TcpStream, UdpSocket};
use alloc::vec::Vec;
use core::future::poll_fn;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Poll;
use futures_util::task::AtomicWaker;
use smoltcp::iface::{self, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, dns, tcp};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr};
use spin::{Mutex, Once};
use unikernel_core::time::{Duration, Instant};
use unikernel_core::{Error, executor, timer};
use unikernel_virtio_net::VirtioNet;

/// How long a dropped connection may take to close before it is reset.
const LINGER: Duration = Duration::from_secs(10);

pub struct Stack {
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    dns: SocketHandle,
    /// Dropped connections still closing, with the time they are reset.
    closing: Vec<(SocketHandle, Instant)>,
    next_port: u16,
}

static STACK: Once<Mutex<Stack>> = Once::new();
static KICKED: AtomicBool = AtomicBool::new(false);
static DRIVER: AtomicWaker = AtomicWaker::new();
static DRIVER_ALIVE: AtomicBool = AtomicBool::new(false);
static CONFIGURED: AtomicWaker = AtomicWaker::new();

fn now() -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros((Instant::now().as_nanos() / 1000) as i64)
}

fn device() -> Result<&'static Mutex<VirtioNet>, Error> {
    unikernel_virtio_net::device().ok_or_else(|| {
        Error::msg("no virtio-net device: start QEMU with one (the runner adds it to images with `net`)")
    })
}

/// `addr` as smoltcp's endpoint; this stack speaks IPv4 only.
pub fn endpoint(addr: SocketAddr) -> Result<smoltcp::wire::IpEndpoint, NetError> {
    match addr {
        SocketAddr::V4(v4) => Ok(v4.into()),
        SocketAddr::V6(_) => Err(NetError::Unreachable),
    }
}

/// Brings the interface up; called by the component's `init`.
pub fn start(config: Config) -> Result<(), Error> {
    unikernel_virtio::probe_all()?;
    let mut nic = device()?.lock();
    let mac = EthernetAddress(nic.mac());
    let mut iface_config = iface::Config::new(HardwareAddress::Ethernet(mac));
    // Seeds initial sequence numbers and ephemeral ports: unpredictable
    // enough across boots without requiring the entropy component.
    let seed = Instant::now().as_nanos()
        ^ unikernel_core::time::SystemTime::now()
            .duration_since(unikernel_core::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    iface_config.random_seed = seed;
    let mut iface = Interface::new(iface_config, &mut Phy::new(&mut nic), now());
    let mut sockets = SocketSet::new(Vec::new());
    let dns = sockets.add(dns::Socket::new(&[], Vec::new()));
    let dhcp = match config {
        Config::Dhcp => Some(sockets.add(dhcpv4::Socket::new())),
        Config::Static(s) => {
            apply(&mut iface, &mut sockets, dns, s.address, s.prefix_len, s.gateway, s.dns.as_slice());
            None
        }
    };
    log::info!("net: MAC {mac}, {}", describe(&config));
    let next_port = 49152 + (seed % 16384) as u16;
    drop(nic);
    STACK.call_once(|| Mutex::new(Stack { iface, sockets, dhcp, dns, closing: Vec::new(), next_port }));
    Ok(())
}

fn describe(config: &Config) -> alloc::string::String {
    match config {
        Config::Dhcp => "DHCP".into(),
        Config::Static(Static { address, prefix_len, gateway, .. }) => {
            alloc::format!("{address}/{prefix_len}, gateway {gateway:?}")
        }
    }
}

fn apply(
    iface: &mut Interface,
    sockets: &mut SocketSet<'static>,
    dns: SocketHandle,
    address: Ipv4Addr,
    prefix_len: u8,
    gateway: Option<Ipv4Addr>,
    servers: &[Ipv4Addr],
) {
    iface.update_ip_addrs(|addrs| {
        addrs.clear();
        addrs.push(IpCidr::Ipv4(Ipv4Cidr::new(address, prefix_len))).expect("room for one address");
    });
    let routes = iface.routes_mut();
    routes.remove_default_ipv4_route();
    if let Some(gw) = gateway
        && routes.add_default_ipv4_route(gw).is_err()
    {
        log::warn!("net: no room for the default route via {gw}");
    }
    let servers: Vec<smoltcp::wire::IpAddress> = servers.iter().map(|s| (*s).into()).collect();
    sockets.get_mut::<dns::Socket>(dns).update_servers(&servers);
    CONFIGURED.wake();
}

/// Runs `f` on the stack, making sure its driver task runs.
pub fn with<R>(f: impl FnOnce(&mut Stack) -> R) -> R {
    if !DRIVER_ALIVE.swap(true, Ordering::AcqRel) {
        // First use, or the task was dropped (the test runner resets the
        // executor between tests).
        drop(executor::spawn(drive()));
    }
    let mut stack = STACK.get().expect("net started before use: Net exists only after init").lock();
    f(&mut stack)
}

/// Asks the driver task to poll soon: a socket queued data or made room.
pub fn kick() {
    KICKED.store(true, Ordering::Release);
    DRIVER.wake();
}

/// Clears the liveness flag when the driver task is dropped.
struct Alive;

impl Drop for Alive {
    fn drop(&mut self) {
        DRIVER_ALIVE.store(false, Ordering::Release);
    }
}

async fn drive() {
    let _alive = Alive;
    loop {
        KICKED.store(false, Ordering::Release);
        let delay = STACK.get().expect("started").lock().poll();
        // Ready on the first wake after registering: a device interrupt or
        // a kick (one that came during the poll above counts too).
        let mut registered = false;
        let signal = poll_fn(|cx| {
            if registered || KICKED.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            DRIVER.register(cx.waker());
            unikernel_virtio_net::register_waker(cx.waker());
            registered = true;
            if KICKED.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
        });
        match delay {
            Some(delay) if delay == Duration::ZERO => {}
            Some(delay) => drop(timer::timeout(delay, signal).await),
            None => signal.await,
        }
    }
}

impl Stack {
    /// One round of smoltcp; returns when it next needs a poll.
    fn poll(&mut self) -> Option<Duration> {
        let now = now();
        {
            // The interrupt handler acknowledges the device; reading its
            // status here too would cost a VM exit on every poll.
            let mut nic = device().expect("probed at start").lock();
            self.iface.poll(now, &mut Phy::new(&mut nic), &mut self.sockets);
        }
        self.dhcp_events();
        self.reap_closing();
        let next = self.iface.poll_delay(now, &self.sockets).map(|d| Duration::from_micros(d.total_micros()));
        let linger = self.closing.iter().map(|(_, at)| at.duration_since(Instant::now())).min();
        match (next, linger) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn dhcp_events(&mut self) {
        let Some(handle) = self.dhcp else { return };
        let event = match self.sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
            None => return,
            Some(dhcpv4::Event::Configured(c)) => Some((c.address, c.router, c.dns_servers.clone())),
            Some(dhcpv4::Event::Deconfigured) => None,
        };
        match event {
            Some((cidr, router, servers)) => {
                log::info!("net: DHCP gave {cidr}, gateway {router:?}, dns {servers:?}");
                let (dns, sockets) = (self.dns, &mut self.sockets);
                apply(&mut self.iface, sockets, dns, cidr.address(), cidr.prefix_len(), router, &servers);
            }
            // smoltcp also reports this once at start, before any lease.
            None if self.ipv4().is_none() => {}
            None => {
                log::info!("net: DHCP lease lost");
                self.iface.update_ip_addrs(|a| a.clear());
                self.iface.routes_mut().remove_default_ipv4_route();
            }
        }
    }

    /// Drops closed connections; resets those closing for too long.
    fn reap_closing(&mut self) {
        let now = Instant::now();
        let sockets = &mut self.sockets;
        self.closing.retain(|&(handle, deadline)| {
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            let done = matches!(socket.state(), tcp::State::Closed | tcp::State::TimeWait);
            if !done && now < deadline {
                return true;
            }
            socket.abort(); // no-op once closed; a reset for a peer that went quiet
            sockets.remove(handle);
            false
        });
    }

    /// Lets a dropped connection finish closing in the background.
    pub fn close_in_background(&mut self, handle: SocketHandle) {
        self.sockets.get_mut::<tcp::Socket>(handle).close();
        self.closing.push((handle, Instant::now() + LINGER));
        kick();
    }

    /// The next ephemeral port for an outgoing connection.
    pub fn ephemeral_port(&mut self) -> u16 {
        self.next_port = self.next_port.checked_add(1).unwrap_or(49152);
        self.next_port
    }

    fn ipv4(&self) -> Option<(Ipv4Addr, u8)> {
        self.iface.ipv4_addr().and_then(|a| {
            self.iface.ip_addrs().iter().find_map(|c| match c {
                IpCidr::Ipv4(c) if c.address() == a => Some((a, c.prefix_len())),
                _ => None,
            })
        })
    }
}

/// The handle `main` receives: the interface and the way to open sockets.
#[derive(Clone, Copy, Debug)]
pub struct Net {
    _private: (),
}

impl Net {
    pub(crate) fn get() -> Result<Self, Error> {
        STACK.get().ok_or_else(|| Error::msg("the net component has not started"))?;
        Ok(Self { _private: () })
    }

    /// The interface's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        with(|s| match s.iface.hardware_addr() {
            HardwareAddress::Ethernet(mac) => mac.0,
        })
    }

    /// Interrupts the network device raised since boot.
    pub fn device_interrupts(&self) -> u64 {
        unikernel_virtio_net::interrupts()
    }

    /// The IPv4 address and prefix length, once configured.
    pub fn ipv4(&self) -> Option<(Ipv4Addr, u8)> {
        with(|s| s.ipv4())
    }

    /// Waits until the interface has an address (DHCP can take a while).
    pub async fn configured(&self) -> (Ipv4Addr, u8) {
        poll_fn(|cx| {
            CONFIGURED.register(cx.waker());
            with(|s| s.ipv4()).map_or(Poll::Pending, Poll::Ready)
        })
        .await
    }

    /// Listens on TCP `port` with room for 8 connections waiting for `accept`.
    pub async fn tcp_listen(&self, port: u16) -> Result<TcpListener, NetError> {
        TcpListener::bind(port, 8)
    }

    /// Listens on TCP `port` with room for `backlog` unaccepted connections.
    pub async fn tcp_listen_with_backlog(&self, port: u16, backlog: usize) -> Result<TcpListener, NetError> {
        TcpListener::bind(port, backlog)
    }

    /// Opens a TCP connection to `remote`.
    pub async fn tcp_connect(&self, remote: SocketAddr) -> Result<TcpStream, NetError> {
        TcpStream::connect(remote).await
    }

    /// A UDP socket bound to `port` (0 picks an ephemeral port).
    pub async fn udp_bind(&self, port: u16) -> Result<UdpSocket, NetError> {
        UdpSocket::bind(port)
    }

    /// Resolves `name` to its IPv4 addresses with the configured DNS
    /// servers (from DHCP or `dns=`). Literal addresses resolve to themselves.
    pub async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, NetError> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(alloc::vec![ip]);
        }
        let query = with(|s| {
            let dns = s.dns;
            let cx = s.iface.context();
            s.sockets.get_mut::<dns::Socket>(dns).start_query(cx, name, smoltcp::wire::DnsQueryType::A)
        })
        .map_err(|e| match e {
            dns::StartQueryError::NoFreeSlot => NetError::Other("too many DNS queries at once"),
            dns::StartQueryError::InvalidName | dns::StartQueryError::NameTooLong => NetError::InvalidInput,
        })?;
        kick();
        poll_fn(|cx| {
            with(|s| {
                let socket = s.sockets.get_mut::<dns::Socket>(s.dns);
                match socket.get_query_result(query) {
                    Ok(addrs) => Poll::Ready(Ok(addrs.iter().map(|a| IpAddr::from(*a)).collect())),
                    Err(dns::GetQueryResultError::Pending) => {
                        socket.register_query_waker(query, cx.waker());
                        Poll::Pending
                    }
                    Err(dns::GetQueryResultError::Failed) => Poll::Ready(Err(NetError::NotFound)),
                }
            })
        })
        .await
    }
}
