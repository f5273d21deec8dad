//! DMA for virtio-drivers on an identity-mapped, single-address-space
//! machine: physical address = virtual address, memory is coherent, so
//! buffers are shared with the device as they are.

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use core::ptr::NonNull;
use virtio_drivers::{BufferDirection, PAGE_SIZE, PhysAddr};

/// The [`virtio_drivers::Hal`] of this target.
#[derive(Debug)]
pub struct Hal;

fn pages(count: usize) -> Layout {
    Layout::from_size_align(count * PAGE_SIZE, PAGE_SIZE).expect("virtqueue sizes are small")
}

// SAFETY: allocations are zeroed, page-aligned and live until dma_dealloc;
// the identity map makes the returned physical addresses valid for the
// device, and x86 DMA is cache-coherent, so share/unshare need no copies.
unsafe impl virtio_drivers::Hal for Hal {
    fn dma_alloc(count: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        // SAFETY: the layout has a non-zero size (virtio-drivers asks for >= 1 page).
        let ptr = unsafe { alloc_zeroed(pages(count)) };
        // A null pointer becomes physical address 0, which virtio-drivers reports as DmaError.
        (ptr as PhysAddr, NonNull::new(ptr).unwrap_or(NonNull::dangling()))
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, count: usize) -> i32 {
        // SAFETY: virtio-drivers passes back what dma_alloc returned for `count` pages.
        unsafe { dealloc(vaddr.as_ptr(), pages(count)) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as *mut u8).expect("device registers are not at address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr().cast::<u8>() as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}
