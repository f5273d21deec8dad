//! The interface, its sockets, and the task that drives them.
//!
//! Everything lives behind one lock that is only held by synchronous code
//! (never across an await), on the executor's single CPU. Socket futures
//! register smoltcp's wakers and `kick` the driver task after they queue
//! data or free buffer space; the task polls smoltcp over the NIC (which
//! registers the task's waker through its `Context` when it runs out of
//! frames or room), then sleeps until the NIC wakes it, a kick, or
//! smoltcp's next timer.

use crate::config::{Config, Static};
use crate::engine::{Limits, Stack};
use crate::phy::Phy;
use crate::{NetError, TcpListener, TcpStream, UdpSocket};
use alloc::vec::Vec;
use core::future::poll_fn;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use futures_util::task::AtomicWaker;
use smoltcp::socket::dns;
use smoltcp::wire::HardwareAddress;
use spin::Once;
use unikernel_core::sync::blocking::Mutex;
use unikernel_core::time::{Duration, Instant};
use unikernel_core::{Error, cmdline, executor, timer};
use unikernel_virtio_net::VirtioNet;

static STACK: Once<Mutex<Stack>> = Once::new();
static KICKED: AtomicBool = AtomicBool::new(false);
static DRIVER: AtomicWaker = AtomicWaker::new();
static DRIVER_ALIVE: AtomicBool = AtomicBool::new(false);
/// Set by the restore hook, taken by the driver task.
static RESTORED: AtomicBool = AtomicBool::new(false);

/// The current time on smoltcp's clock.
pub fn now() -> smoltcp::time::Instant {
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
    let mac = nic.mac();
    let seed = seed();
    let mut limits = Limits::for_heap(unikernel_core::heap::stats().size);
    if let Some(max) = crate::config::max_connections(cmdline::value("max_connections"))? {
        limits.max_sockets = max;
    }
    // The interface only asks the NIC for its capabilities here.
    let cx = &mut Context::from_waker(Waker::noop());
    let stack =
        Stack::new(config, mac, seed, limits, &mut Phy { driver: &mut unikernel_virtio_net::nic(&mut nic), cx }, now());
    log::info!(
        "net: MAC {}, {}, at most {} TCP sockets",
        smoltcp::wire::EthernetAddress(mac),
        describe(&config),
        limits.max_sockets
    );
    drop(nic);
    STACK.call_once(|| Mutex::new(stack));
    unikernel_core::restore::on_restore(|| {
        RESTORED.store(true, Ordering::Release);
        kick();
    })
}

/// Seeds initial sequence numbers and ephemeral ports: the clocks, and the
/// CPU's generator where it has one (the targets always link theirs), so
/// that guests restored from one snapshot at the same moment differ too.
fn seed() -> u64 {
    use unikernel_core::bus::{self, RandomKind};
    let cpu = bus::cpu_random_available(RandomKind::Drbg).then(|| bus::cpu_random_next(RandomKind::Drbg)).flatten();
    let wall = unikernel_core::time::SystemTime::now().duration_since(unikernel_core::time::SystemTime::UNIX_EPOCH);
    Instant::now().as_nanos() ^ wall.map_or(0, |d| d.as_nanos() as u64) ^ cpu.unwrap_or(0)
}

fn describe(config: &Config) -> alloc::string::String {
    match config {
        Config::Dhcp => "DHCP".into(),
        Config::Static(Static { address, prefix_len, gateway, .. }) => {
            alloc::format!("{address}/{prefix_len}, gateway {gateway:?}")
        }
    }
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
        let (polled, delay) = poll_fn(|cx| {
            let mut stack = STACK.get().expect("started").lock();
            // The interrupt handler acknowledges the device; reading its
            // status here too would cost a VM exit on every poll.
            let mut nic = device().expect("probed at start").lock();
            let driver = &mut unikernel_virtio_net::nic(&mut nic);
            let now = now();
            if RESTORED.swap(false, Ordering::AcqRel) {
                stack.restored(seed(), &mut Phy { driver: &mut *driver, cx: &mut *cx }, now);
            }
            let polled = stack.poll(now, &mut Phy { driver, cx });
            // Printed under the lock: these lines open the runner's forwards.
            let address = stack.ipv4().map(|(address, _)| address);
            for (protocol, port) in stack.announcements() {
                unikernel_core::println!("{}", unikernel_core::forward::Listening { protocol, port, address });
            }
            Poll::Ready((polled, stack.poll_delay(now)))
        })
        .await;
        if polled.more {
            // A flood: let every other task run before the next batch.
            yield_now().await;
            continue;
        }
        // Ready on the first wake after registering: the NIC's (registered
        // during the poll above) or a kick (one that came during the poll
        // counts too).
        let mut registered = false;
        let signal = poll_fn(|cx| {
            if registered || KICKED.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            DRIVER.register(cx.waker());
            registered = true;
            if KICKED.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
        });
        match delay.map(|d| Duration::from_micros(d.total_micros())) {
            Some(Duration::ZERO) => {}
            Some(delay) => drop(timer::timeout(delay, signal).await),
            None => signal.await,
        }
    }
}

/// Returns after the executor ran every other ready task once.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
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
        poll_fn(|cx| with(|s| s.configured(cx.waker())).map_or(Poll::Pending, Poll::Ready)).await
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
