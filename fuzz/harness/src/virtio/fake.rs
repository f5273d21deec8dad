//! A fake virtio device on the host, for driving the real drivers: a
//! transport that records where the driver put its queues, a `Hal` whose
//! DMA is ordinary heap memory (physical = virtual), and device-side
//! operations on the split virtqueues — honest completions, and the lies a
//! hostile device can tell (used entries naming any id with any length,
//! used-index jumps).
//!
//! The device writes only into buffers it currently holds (descriptors it
//! took from the available ring and has not completed), as a device
//! should: if a driver frees a buffer the device still holds, that write is
//! a use-after-free that AddressSanitizer reports.
//!
//! Alongside, it keeps the verdict the driver must reach: `hostile` is set
//! by every completion a correct device would not make.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::rc::Rc;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{BufferDirection, Error, PAGE_SIZE, PhysAddr, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Descriptor flags.
const NEXT: u16 = 1;
const WRITE: u16 = 2;
const INDIRECT: u16 = 4;
/// `VIRTIO_F_VERSION_1`.
pub const FEATURE_VERSION_1: u64 = 1 << 32;

/// DMA from the host's allocator; physical addresses are virtual ones.
#[derive(Debug)]
pub struct HostHal;

fn pages(count: usize) -> Layout {
    Layout::from_size_align(count * PAGE_SIZE, PAGE_SIZE).expect("virtqueues are small")
}

// SAFETY: allocations are zeroed, page-aligned and live until dma_dealloc;
// the fake device uses the addresses handed out here as pointers, so they
// are valid for it.
unsafe impl virtio_drivers::Hal for HostHal {
    fn dma_alloc(count: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        // SAFETY: virtio-drivers asks for at least one page.
        let ptr = NonNull::new(unsafe { alloc_zeroed(pages(count)) }).expect("the host has memory");
        (ptr.as_ptr() as PhysAddr, ptr)
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, count: usize) -> i32 {
        // SAFETY: virtio-drivers passes back what dma_alloc returned for `count` pages.
        unsafe { dealloc(vaddr.as_ptr(), pages(count)) };
        0
    }

    unsafe fn mmio_phys_to_virt(_paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        unreachable!("the fake transport has no MMIO region")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr().cast::<u8>() as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// One split virtqueue, as the device sees it.
#[derive(Debug, Default)]
struct Queue {
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    /// The next available-ring index the device reads.
    next_avail: u16,
    /// The device's used index.
    used_idx: u16,
    /// Heads the device holds, in the order it took them.
    held: VecDeque<u16>,
}

/// Reads a `T` at address `at` in memory the driver gave the device.
///
/// # Safety
/// `at` lies in a live ring or buffer the driver shared.
unsafe fn read<T: Copy>(at: u64) -> T {
    // SAFETY: per the contract; rings are not necessarily aligned for T.
    unsafe { (at as *const T).read_unaligned() }
}

/// # Safety
/// As [`read`], and the device may write there.
unsafe fn write<T>(at: u64, value: T) {
    // SAFETY: per the contract.
    unsafe { (at as *mut T).write_unaligned(value) }
}

impl Queue {
    /// Takes the heads the driver made available since the last look.
    fn take_available(&mut self) {
        // SAFETY: `avail` is the driver's live available ring (queue_set).
        let avail_idx: u16 = unsafe { read(self.avail + 2) };
        while self.next_avail != avail_idx {
            let slot = u64::from(self.next_avail % self.size);
            // SAFETY: a slot of the available ring.
            self.held.push_back(unsafe { read(self.avail + 4 + 2 * slot) });
            self.next_avail = self.next_avail.wrapping_add(1);
        }
    }

    /// The descriptors (address, length, flags) of the chain at `head`,
    /// through an indirect table if there is one.
    fn chain(&self, head: u16) -> Vec<(u64, u32, u16)> {
        let (mut table, mut entries) = (self.desc, self.size);
        let mut chain = Vec::new();
        let mut index = head;
        while chain.len() < usize::from(entries) {
            // SAFETY: a descriptor of the driver's table (index < entries).
            let (addr, len, flags, next): (u64, u32, u16, u16) = unsafe {
                let at = table + 16 * u64::from(index);
                (read(at), read(at + 8), read(at + 12), read(at + 14))
            };
            if flags & INDIRECT != 0 {
                (table, entries, index) = (addr, (len / 16) as u16, 0);
                continue;
            }
            chain.push((addr, len, flags));
            if flags & NEXT == 0 || next >= entries {
                break;
            }
            index = next;
        }
        chain
    }

    /// Puts a used entry in the ring and publishes it.
    fn push_used(&mut self, id: u32, len: u32) {
        let slot = u64::from(self.used_idx % self.size);
        self.used_idx = self.used_idx.wrapping_add(1);
        // SAFETY: a slot and the index of the driver's live used ring.
        unsafe {
            write(self.used + 4 + 8 * slot, id);
            write(self.used + 8 + 8 * slot, len);
            write(self.used + 2, self.used_idx);
        }
    }
}

/// The device and the verdict its behaviour calls for.
#[derive(Debug)]
pub struct Device {
    device_type: DeviceType,
    features: u64,
    driver_features: u64,
    config: Vec<u8>,
    /// Reads of the configuration generation that find it changed.
    generation_changes: u32,
    generation: u32,
    max_queue_size: u32,
    queues: Vec<Queue>,
    /// Whether the device did something a correct one never does.
    pub hostile: bool,
}

impl Device {
    /// A device offering `features`, with `config` as its configuration space and `queues` empty queues.
    pub fn new(device_type: DeviceType, features: u64, config: Vec<u8>, queues: usize) -> Self {
        Self {
            device_type,
            features,
            driver_features: 0,
            config,
            generation_changes: 0,
            generation: 0,
            max_queue_size: u32::from(u16::MAX),
            queues: (0..queues).map(|_| Queue::default()).collect(),
            hostile: false,
        }
    }

    /// A device that changes its configuration `changes` times while read,
    /// and offers queues of at most `size` entries.
    pub fn unsettled(mut self, changes: u32, size: u32) -> Self {
        (self.generation_changes, self.max_queue_size) = (changes, size);
        self
    }

    /// The features the driver accepted.
    pub fn negotiated(&self) -> u64 {
        self.driver_features
    }

    /// Whether queue `q` was set up by the driver.
    fn ready(&self, q: usize) -> bool {
        self.queues.get(q).is_some_and(|queue| queue.size != 0)
    }

    /// Completes request `nth` (modulo those held; 0 is the oldest) on
    /// queue `q` as a device does: writes up to `written` bytes into its
    /// device-writable buffers (`status`, if any, as the last byte: a
    /// virtio-blk status), and reports `len` bytes used (the bytes written,
    /// unless `len` says otherwise). Returns the request's head, if the
    /// device held any.
    pub fn complete(
        &mut self,
        q: usize,
        nth: usize,
        written: u32,
        status: Option<u8>,
        len: Option<u32>,
    ) -> Option<u16> {
        let queue = &mut self.queues[q];
        queue.take_available();
        let head = queue.held.remove(nth.checked_rem(queue.held.len())?)?;
        let chain = queue.chain(head);
        let mut left = written;
        for &(addr, size, _) in chain.iter().filter(|(_, _, flags)| flags & WRITE != 0) {
            let n = left.min(size);
            // SAFETY: a buffer of a request the device holds, `size` bytes.
            unsafe { std::ptr::write_bytes(addr as *mut u8, 0xa5, n as usize) };
            left -= n;
        }
        if let (Some(status), Some(&(addr, size, _))) = (status, chain.iter().rev().find(|(_, _, f)| f & WRITE != 0)) {
            // SAFETY: the last byte of the request's last writable buffer.
            unsafe { write(addr + u64::from(size) - 1, status) };
        }
        queue.push_used(u32::from(head), len.unwrap_or(written - left));
        Some(head)
    }

    /// Puts a used entry naming `id` on queue `q` without doing the work:
    /// a lie unless the device holds `id`. Returns whether it held it.
    pub fn inject(&mut self, q: usize, id: u32, len: u32) -> bool {
        let queue = &mut self.queues[q];
        queue.take_available();
        queue.push_used(id, len);
        Self::settle(queue, id)
    }

    /// Advances queue `q`'s used index by `delta` over whatever the ring
    /// holds; returns the entries (id, len) that exposed, each with whether
    /// the device held its id.
    pub fn jump(&mut self, q: usize, delta: u16) -> Vec<(u32, u32, bool)> {
        let queue = &mut self.queues[q];
        queue.take_available();
        (0..delta)
            .map(|_| {
                let slot = u64::from(queue.used_idx % queue.size);
                // SAFETY: a slot of the driver's live used ring.
                let (id, len) = unsafe { (read(queue.used + 4 + 8 * slot), read(queue.used + 8 + 8 * slot)) };
                queue.push_used(id, len);
                (id, len, Self::settle(queue, id))
            })
            .collect()
    }

    /// A used entry naming `id` was published: the driver reads it as the
    /// head `id as u16` (virtio-drivers truncates), which the device then
    /// no longer holds.
    fn settle(queue: &mut Queue, id: u32) -> bool {
        let head = id as u16;
        match queue.held.iter().position(|&h| h == head) {
            Some(at) => queue.held.remove(at).is_some(),
            None => false,
        }
    }
}

/// The transport the driver owns; the harness keeps the other handle.
#[derive(Debug, Clone)]
pub struct Fake(pub Rc<RefCell<Device>>);

impl Transport for Fake {
    fn device_type(&self) -> DeviceType {
        self.0.borrow().device_type
    }

    fn read_device_features(&mut self) -> u64 {
        self.0.borrow().features
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        self.0.borrow_mut().driver_features = driver_features;
    }

    fn max_queue_size(&mut self, _queue: u16) -> u32 {
        self.0.borrow().max_queue_size
    }

    fn notify(&mut self, _queue: u16) {}

    fn get_status(&self) -> DeviceStatus {
        DeviceStatus::empty()
    }

    fn set_status(&mut self, _status: DeviceStatus) {}

    fn set_guest_page_size(&mut self, _guest_page_size: u32) {}

    fn requires_legacy_layout(&self) -> bool {
        false
    }

    fn queue_set(&mut self, queue: u16, size: u32, descriptors: PhysAddr, driver: PhysAddr, device: PhysAddr) {
        if let Some(q) = self.0.borrow_mut().queues.get_mut(usize::from(queue)) {
            *q = Queue { size: size as u16, desc: descriptors, avail: driver, used: device, ..Queue::default() };
        }
    }

    fn queue_unset(&mut self, queue: u16) {
        if let Some(q) = self.0.borrow_mut().queues.get_mut(usize::from(queue)) {
            *q = Queue::default();
        }
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.0.borrow().ready(usize::from(queue))
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        InterruptStatus::QUEUE_INTERRUPT
    }

    fn read_config_generation(&self) -> u32 {
        let mut device = self.0.borrow_mut();
        if device.generation_changes > 0 {
            device.generation_changes -= 1;
            device.generation += 1;
        }
        device.generation
    }

    fn read_config_space<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T> {
        let device = self.0.borrow();
        let bytes = device.config.get(offset..).ok_or(Error::ConfigSpaceTooSmall)?;
        T::read_from_prefix(bytes).map(|(value, _)| value).map_err(|_| Error::ConfigSpaceTooSmall)
    }

    fn write_config_space<T: IntoBytes + Immutable>(&mut self, _offset: usize, _value: T) -> Result<()> {
        Ok(())
    }
}
