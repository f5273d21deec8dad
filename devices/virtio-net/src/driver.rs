//! Buffer management over virtio-drivers' non-blocking `VirtIONetRaw`.
//!
//! The device is not trusted: a completion must name a buffer the driver
//! lent it, and its length must fit that buffer. A device that breaks
//! either is stopped (logged once, no more frames either way) and its
//! buffers stay lent forever, since it may still write them.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use unikernel_core::Error;
use virtio_drivers::Hal;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::Transport;

/// Descriptors per queue: 64 posted receive buffers absorb a burst of a
/// full TCP window (64 KiB) without drops.
pub const QUEUE: usize = 64;
/// A virtio-net header (at most 12 bytes) and an Ethernet frame of 1514,
/// rounded up so buffers come from one allocator size class.
pub const BUFFER: usize = 2048;

/// A received frame: the device's buffer, returned with
/// [`VirtioNet::recycle`] once read.
pub struct RxFrame {
    buffer: Box<[u8]>,
    frame: core::ops::Range<usize>,
}

impl RxFrame {
    /// The Ethernet frame.
    pub fn bytes(&self) -> &[u8] {
        &self.buffer[self.frame.clone()]
    }

    /// The Ethernet frame, for a stack that works on it in place.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buffer[self.frame.clone()]
    }
}

/// A virtio network device with its receive buffers posted.
pub struct VirtioNet<H: Hal, T: Transport> {
    raw: VirtIONetRaw<H, T, QUEUE>,
    /// Receive buffers lent to the device, by descriptor token.
    posted: [Option<Box<[u8]>>; QUEUE],
    /// Sends in flight (buffer, length given to the device), by token.
    sending: [Option<(Box<[u8]>, usize)>; QUEUE],
    /// Send buffers the device has finished with.
    free: Vec<Box<[u8]>>,
    /// Why the device was stopped, if it misbehaved.
    stopped: Option<&'static str>,
}

/// Takes the buffer lent under `token` back, if the driver lent one: the
/// check that must come before virtio-drivers' `pop_used`, which indexes
/// its descriptor table with the token.
fn reclaim<B>(lent: &mut [Option<B>; QUEUE], token: u16) -> Option<B> {
    lent.get_mut(usize::from(token))?.take()
}

impl<H: Hal, T: Transport> VirtioNet<H, T> {
    /// Initialises the device and posts every receive buffer.
    pub fn new(transport: T) -> Result<Self, Error> {
        let raw = VirtIONetRaw::new(transport).map_err(|e| Error::msg(alloc::format!("cannot initialise: {e}")))?;
        let (posted, sending) = ([const { None }; QUEUE], [const { None }; QUEUE]);
        let mut nic = Self { raw, posted, sending, free: Vec::new(), stopped: None };
        for _ in 0..QUEUE {
            nic.post(vec![0; BUFFER].into_boxed_slice())?;
        }
        nic.raw.enable_interrupts();
        Ok(nic)
    }

    /// The device's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.raw.mac_address()
    }

    /// Why the driver stopped driving the device, if it misbehaved.
    pub fn stopped(&self) -> Option<&'static str> {
        self.stopped
    }

    fn stop(&mut self, why: &'static str) {
        if self.stopped.is_none() {
            log::error!("virtio-net: the device {why}; it is no longer driven");
            self.stopped = Some(why);
        }
    }

    fn post(&mut self, mut buffer: Box<[u8]>) -> Result<(), Error> {
        // SAFETY: the buffer is kept in `posted` and not touched until the
        // device returns its token; moving the Box does not move its bytes.
        let token = unsafe { self.raw.receive_begin(&mut buffer) }
            .map_err(|e| Error::msg(alloc::format!("cannot post a receive buffer: {e}")))?;
        // `add` returns the head of a free descriptor chain, below QUEUE.
        self.posted[usize::from(token)] = Some(buffer);
        Ok(())
    }

    /// The next received frame, if any; `None` once the device is stopped.
    pub fn receive(&mut self) -> Option<RxFrame> {
        if self.stopped.is_some() {
            return None;
        }
        let token = self.raw.poll_receive()?;
        let Some(mut buffer) = reclaim(&mut self.posted, token) else {
            self.stop("completed a receive buffer it was not lent");
            return None;
        };
        // SAFETY: the same buffer that was posted under this token.
        let why = match unsafe { self.raw.receive_complete(token, &mut buffer) } {
            Ok((header, len)) => match header.checked_add(len).filter(|&end| end <= buffer.len()) {
                Some(end) => return Some(RxFrame { buffer, frame: header..end }),
                None => "reported a frame longer than its buffer",
            },
            Err(virtio_drivers::Error::IoError) => "reported a frame shorter than its header",
            Err(_) => {
                // Not popped (the ring changed under the driver): still lent.
                self.posted[usize::from(token)] = Some(buffer);
                "changed its used ring while it was read"
            }
        };
        self.stop(why);
        None
    }

    /// Gives a received frame's buffer back to the device.
    pub fn recycle(&mut self, frame: RxFrame) {
        if self.stopped.is_some() {
            return;
        }
        // Cannot fail: the buffer's descriptor was freed when it completed.
        if let Err(e) = self.post(frame.buffer) {
            log::error!("virtio-net: {e}");
        }
    }

    /// Whether a frame can be sent now (never, once the device is
    /// stopped); reclaims completed sends.
    pub fn can_transmit(&mut self) -> bool {
        while self.stopped.is_none()
            && let Some(token) = self.raw.poll_transmit()
        {
            let Some((buffer, len)) = reclaim(&mut self.sending, token) else {
                self.stop("completed a send it was not given");
                break;
            };
            // SAFETY: the same buffer and length given to transmit_begin.
            match unsafe { self.raw.transmit_complete(token, &buffer[..len]) } {
                Ok(_) => self.free.push(buffer),
                Err(_) => {
                    self.sending[usize::from(token)] = Some((buffer, len));
                    self.stop("changed its used ring while it was read");
                }
            }
        }
        self.stopped.is_none() && self.raw.can_send()
    }

    /// Sends a frame of `len` bytes that `fill` writes. The caller checked
    /// [`VirtioNet::can_transmit`]; `len` is at most 1514.
    pub fn transmit<R>(&mut self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> Result<R, Error> {
        if let Some(why) = self.stopped {
            return Err(Error::msg(alloc::format!("the device {why}")));
        }
        let mut buffer = self.free.pop().unwrap_or_else(|| vec![0; BUFFER].into_boxed_slice());
        let header = self.raw.fill_buffer_header(&mut buffer).map_err(|e| Error::msg(alloc::format!("{e}")))?;
        let end = header + len;
        let frame = buffer.get_mut(header..end).ok_or_else(|| Error::msg("frame larger than a buffer"))?;
        let result = fill(frame);
        // SAFETY: the buffer is kept in `sending` and not touched until the
        // device returns its token.
        match unsafe { self.raw.transmit_begin(&buffer[..end]) } {
            Ok(token) => {
                self.sending[usize::from(token)] = Some((buffer, end));
                Ok(result)
            }
            Err(e) => {
                self.free.push(buffer);
                Err(Error::msg(alloc::format!("send: {e}")))
            }
        }
    }

    /// Acknowledges the device's interrupt.
    pub fn ack_interrupt(&mut self) {
        self.raw.ack_interrupt();
    }
}
