//! PVH's `hvm_start_info` (xen/include/public/arch-x86/hvm/start_info.h).

use core::ffi::CStr;

const MAGIC: u32 = 0x336e_c578;
/// E820 type of usable RAM.
const RAM: u32 = 1;

#[repr(C)]
struct Raw {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    // version >= 1
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct MemmapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

/// A validated view of the start info.
pub struct StartInfo {
    raw: &'static Raw,
}

impl StartInfo {
    /// # Safety
    /// `paddr` must be the address the PVH loader passed in `%ebx`, in
    /// identity-mapped memory that stays untouched for the whole run.
    pub unsafe fn from_paddr(paddr: u32) -> Result<Self, &'static str> {
        // SAFETY: per the caller's contract.
        let raw = unsafe { &*(paddr as usize as *const Raw) };
        if raw.magic != MAGIC {
            return Err("no PVH start info (bad magic): boot this image with QEMU's -kernel");
        }
        if raw.version < 1 || raw.memmap_entries == 0 {
            return Err("the PVH loader passed no memory map (start info version 0)");
        }
        Ok(Self { raw })
    }

    /// The kernel command line, or "" when absent or not UTF-8.
    pub fn cmdline(&self) -> &'static str {
        if self.raw.cmdline_paddr == 0 {
            return "";
        }
        // SAFETY: the loader stores a NUL-terminated string there, in memory
        // that `memory::plan` leaves alone (see `loader_data`).
        let cstr = unsafe { CStr::from_ptr(self.raw.cmdline_paddr as usize as *const core::ffi::c_char) };
        cstr.to_str().unwrap_or("")
    }

    /// Where the loader left this structure, its memory map and the command
    /// line, as `[start, end)` physical ranges. They may lie in RAM (SeaBIOS
    /// puts them in the first pages), and must stay intact: the command line
    /// is read for the whole run.
    pub fn loader_data(&self) -> [core::ops::Range<u64>; 3] {
        let at = |addr: u64, len: usize| addr..addr + len as u64;
        [
            at(core::ptr::from_ref(self.raw) as u64, size_of::<Raw>()),
            at(self.raw.memmap_paddr, self.raw.memmap_entries as usize * size_of::<MemmapEntry>()),
            // Only a UTF-8 command line is ever read; "" leaves the rest free.
            at(self.raw.cmdline_paddr, self.cmdline().len() + 1),
        ]
    }

    /// The usable RAM ranges, as `[start, end)` physical addresses.
    pub fn ram(&self) -> impl Iterator<Item = core::ops::Range<u64>> + '_ {
        let entries = self.raw.memmap_paddr as usize as *const MemmapEntry;
        (0..self.raw.memmap_entries as usize)
            // SAFETY: the loader provides `memmap_entries` entries there.
            .map(move |i| unsafe { entries.add(i).read_unaligned() })
            .filter(|e| e.kind == RAM)
            .map(|e| e.addr..e.addr + e.size)
    }
}
