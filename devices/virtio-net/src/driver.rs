//! Buffer management over virtio-drivers' non-blocking `VirtIONetRaw`.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use unikernel_core::Error;
use unikernel_virtio::{Hal, Transport};
use virtio_drivers::device::net::VirtIONetRaw;

/// Descriptors per queue: 64 posted receive buffers absorb a burst of a
/// full TCP window (64 KiB) without drops.
const QUEUE: usize = 64;
/// A virtio-net header (at most 12 bytes) and an Ethernet frame of 1514,
/// rounded up so buffers come from one allocator size class.
const BUFFER: usize = 2048;

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
}

/// A virtio network device with its receive buffers posted.
pub struct VirtioNet {
    raw: VirtIONetRaw<Hal, Transport, QUEUE>,
    /// Receive buffers lent to the device, by descriptor token.
    posted: [Option<Box<[u8]>>; QUEUE],
    /// Sends in flight (buffer, length given to the device), by token.
    sending: [Option<(Box<[u8]>, usize)>; QUEUE],
    /// Send buffers the device has finished with.
    free: Vec<Box<[u8]>>,
}

impl VirtioNet {
    pub(crate) fn new(transport: Transport) -> Result<Self, Error> {
        let raw = VirtIONetRaw::new(transport).map_err(|e| Error::msg(alloc::format!("cannot initialise: {e}")))?;
        let mut nic = Self { raw, posted: [const { None }; QUEUE], sending: [const { None }; QUEUE], free: Vec::new() };
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

    fn post(&mut self, mut buffer: Box<[u8]>) -> Result<(), Error> {
        // SAFETY: the buffer is kept in `posted` and not touched until the
        // device returns its token; moving the Box does not move its bytes.
        let token = unsafe { self.raw.receive_begin(&mut buffer) }
            .map_err(|e| Error::msg(alloc::format!("cannot post a receive buffer: {e}")))?;
        self.posted[usize::from(token)] = Some(buffer);
        Ok(())
    }

    /// The next received frame, if any. A malformed completion is dropped
    /// (and its buffer reposted) rather than handed on.
    pub fn receive(&mut self) -> Option<RxFrame> {
        loop {
            let token = self.raw.poll_receive()?;
            let mut buffer = self.posted[usize::from(token)].take().expect("the device completed a posted buffer");
            // SAFETY: the same buffer that was posted under this token.
            match unsafe { self.raw.receive_complete(token, &mut buffer) } {
                Ok((header, len)) => return Some(RxFrame { buffer, frame: header..header + len }),
                Err(e) => {
                    log::warn!("virtio-net: dropped a bad receive completion: {e}");
                    self.recycle_buffer(buffer);
                }
            }
        }
    }

    /// Gives a received frame's buffer back to the device.
    pub fn recycle(&mut self, frame: RxFrame) {
        self.recycle_buffer(frame.buffer);
    }

    fn recycle_buffer(&mut self, buffer: Box<[u8]>) {
        // Cannot fail: the buffer's descriptor was freed when it completed.
        if let Err(e) = self.post(buffer) {
            log::error!("virtio-net: {e}");
        }
    }

    /// Whether a frame can be sent now; reclaims completed sends.
    pub fn can_transmit(&mut self) -> bool {
        while let Some(token) = self.raw.poll_transmit() {
            let (buffer, len) = self.sending[usize::from(token)].take().expect("the device completed a send");
            // SAFETY: the same buffer and length given to transmit_begin.
            if let Err(e) = unsafe { self.raw.transmit_complete(token, &buffer[..len]) } {
                log::warn!("virtio-net: send completion: {e}");
            }
            self.free.push(buffer);
        }
        self.raw.can_send()
    }

    /// Sends a frame of `len` bytes that `fill` writes. The caller checked
    /// [`VirtioNet::can_transmit`]; `len` is at most 1514.
    pub fn transmit<R>(&mut self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> Result<R, Error> {
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
