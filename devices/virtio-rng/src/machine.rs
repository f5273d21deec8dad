//! The driver on the machine: the device `unikernel-virtio` finds, driven
//! through virtio-drivers' `VirtQueue` directly. Its `VirtIORng` waits for
//! each answer without end; a host that never answers (or a rate limit of
//! a byte a minute) would then hang every `getrandom` caller. Here each
//! request has a deadline, and the device writes only into the driver's
//! own buffer, so a request it never completes leaves nothing of the
//! caller's in its hands: past the deadline the driver stops using the
//! device, and every later fill fails at once.
//!
//! Requests are polled, not interrupt-driven: a request is one small
//! buffer the host fills at once, and polling keeps the driver usable
//! wherever `getrandom` is called.

use alloc::boxed::Box;
use alloc::format;
use core::time::Duration;
use linkme::distributed_slice;
use unikernel_core::Error;
use unikernel_core::sync::blocking::Mutex;
use unikernel_core::time::Instant;
use unikernel_entropy::DeviceFill;
use unikernel_virtio::{DRIVERS, DeviceType, Driver, Hal, Interrupt, Transport};
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::Transport as _;

/// How long the device may take to fill one request: far more than a host
/// needs (microseconds), far less than a caller should wait.
const ANSWER_DEADLINE: Duration = Duration::from_secs(1);
/// Requests in a row the device may answer with no bytes before the driver
/// gives up on it, rather than spinning forever on a broken device.
const EMPTY_REPLIES: usize = 16;
/// Bytes asked for per request.
const REQUEST: usize = 64;
const QUEUE: u16 = 0;
const QUEUE_SIZE: usize = 8;

bitflags::bitflags! {
    /// The features this driver negotiates.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Features: u64 {
        const RING_INDIRECT_DESC = 1 << 28;
        const RING_EVENT_IDX = 1 << 29;
        const VERSION_1 = 1 << 32;
    }
}

/// The device, with the buffer it writes into.
struct Rng {
    transport: Transport,
    queue: VirtQueue<Hal, QUEUE_SIZE>,
    /// The driver's own: a request the device never completes keeps it.
    buffer: Box<[u8; REQUEST]>,
    /// Why the driver stopped using the device, once it did.
    failed: Option<&'static str>,
}

static DEVICE: spin::Once<Mutex<Rng>> = spin::Once::new();

#[distributed_slice(DRIVERS)]
static VIRTIO_RNG: Driver = Driver { name: "virtio-rng", device: DeviceType::EntropySource, probe };

fn probe(mut transport: Transport, _interrupt: Interrupt) -> Result<(), Error> {
    if DEVICE.is_completed() {
        log::warn!("virtio-rng: a second entropy device is not driven");
        return Ok(());
    }
    let features = transport.begin_init(Features::all());
    let indirect = features.contains(Features::RING_INDIRECT_DESC);
    let event_idx = features.contains(Features::RING_EVENT_IDX);
    let mut queue =
        VirtQueue::new(&mut transport, QUEUE, indirect, event_idx).map_err(|e| Error::msg(format!("{e}")))?;
    transport.finish_init();
    // Polled: the device need not interrupt.
    queue.set_dev_notify(false);
    let rng = Rng { transport, queue, buffer: Box::new([0; REQUEST]), failed: None };
    DEVICE.call_once(|| Mutex::new(rng));
    log::info!("virtio-rng: entropy device ready");
    Ok(())
}

/// Probes the machine's virtio devices; the fill to register once the
/// entropy device is among them.
pub fn start() -> Result<DeviceFill, Error> {
    unikernel_virtio::probe_all()?;
    match DEVICE.get() {
        Some(_) => Ok(fill),
        None => Err(Error::msg(
            "no virtio entropy device: start QEMU with one (the runner adds it to images with `virtio_rng`)",
        )),
    }
}

/// Fills `buf` from the device; the host may answer a request with fewer
/// bytes than asked, never with more.
fn fill(buf: &mut [u8]) -> Result<(), Error> {
    let mut rng = DEVICE.get().ok_or_else(|| Error::msg("virtio-rng has not started"))?.lock();
    let (mut filled, mut empty) = (0, 0);
    while filled < buf.len() {
        let got = rng.request().map_err(|why| Error::msg(format!("virtio-rng: {why}")))?;
        let take = got.len().min(buf.len() - filled);
        buf[filled..filled + take].copy_from_slice(&got[..take]);
        empty = if got.is_empty() { empty + 1 } else { 0 };
        if empty == EMPTY_REPLIES {
            return Err(Error::msg("virtio-rng: the device keeps returning no bytes"));
        }
        filled += take;
    }
    Ok(())
}

impl Rng {
    /// One request: the bytes the device wrote, or why the driver gave up
    /// on the device (for good: it may still hold the buffer).
    fn request(&mut self) -> Result<&[u8], &'static str> {
        if let Some(why) = self.failed {
            return Err(why);
        }
        let buffer: &mut [u8] = &mut self.buffer[..];
        // SAFETY: the buffer is the driver's, boxed (it does not move), and
        // touched again only after `pop_used` returns it below; if the
        // device never completes the request, the driver never touches it
        // again and never frees it (`failed` is set and the device lives in
        // a static).
        let token =
            unsafe { self.queue.add(&[], &mut [buffer]) }.map_err(|_| self.fail("the queue refused a request"))?;
        if self.queue.should_notify() {
            self.transport.notify(QUEUE);
        }
        let asked = Instant::now();
        while !self.queue.can_pop() {
            if asked.elapsed() > ANSWER_DEADLINE {
                return Err(self.fail("the device did not answer within its deadline (1 s)"));
            }
            core::hint::spin_loop();
        }
        let buffer: &mut [u8] = &mut self.buffer[..];
        // SAFETY: the same buffer as added with this token, which `can_pop`
        // says the device has given back.
        let written = unsafe { self.queue.pop_used(token, &[], &mut [buffer]) }
            .map_err(|_| self.fail("the device gave back another request than the one in flight"))?;
        let written = usize::try_from(written).unwrap_or(usize::MAX);
        if written > REQUEST {
            return Err(self.fail("the device claims to have written past the buffer"));
        }
        Ok(&self.buffer[..written])
    }

    fn fail(&mut self, why: &'static str) -> &'static str {
        log::error!("virtio-rng: {why}; the device is no longer used");
        self.failed.get_or_insert(why)
    }
}
