//! What the machine is, from the flattened device tree the VMM passes:
//! RAM, the command line, and where the console, interrupt controller,
//! timer, RTC, PSCI and virtio-mmio transports are. The VMM is not
//! trusted: a tree that is missing what boot needs is a clear boot error,
//! and the `fdt` crate bounds-checks every read inside the blob.

use core::fmt;
use core::ops::Range;
use fdt::Fdt;
use spin::Once;

/// Where QEMU's `virt` puts the tree for a bare-metal ELF: the start of RAM.
const DTB_AT_RAM_START: u64 = 0x4000_0000;
/// Trees larger than this are refused (QEMU's are a few KiB; the image
/// starts 2 MiB into RAM, so a tree at the start of RAM cannot be larger).
const MAX_DTB: u32 = 2 << 20;
const DTB_MAGIC: u32 = 0xd00d_feed;

/// The GICv3's register frames (GICv2 is not driven: the runner asks QEMU
/// for version 3, which Firecracker and current Arm servers have too).
#[derive(Clone, Copy)]
pub struct GicFrames {
    pub distributor: u64,
    pub redistributors: u64,
}

/// How PSCI calls reach the firmware or hypervisor.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Conduit {
    Hvc,
    Smc,
}

pub struct Machine {
    pub ram: Range<u64>,
    pub cmdline: &'static str,
    pub uart: u64,
    pub psci: Option<Conduit>,
}

pub enum DtbError {
    Missing(u64),
    Malformed(u64, fdt::FdtError),
    TooLarge(u32),
    NoRam,
    NoConsole,
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(at) => write!(f, "no device tree at {at:#x}"),
            Self::Malformed(at, e) => write!(f, "malformed device tree at {at:#x}: {e:?}"),
            Self::TooLarge(size) => write!(f, "device tree of {size} bytes: more than the {MAX_DTB} allowed"),
            Self::NoRam => f.write_str("the device tree names no RAM region holding the image"),
            Self::NoConsole => f.write_str("the device tree names no PL011 console"),
        }
    }
}

static TREE: Once<Fdt<'static>> = Once::new();

/// Reads the tree at `dtb` (0: the start of RAM) and keeps it for the
/// device lookups that come later ([`tree`]).
pub fn read(dtb: u64) -> Result<Machine, DtbError> {
    let at = if dtb == 0 { DTB_AT_RAM_START } else { dtb };
    // SAFETY: the boot map covers RAM from 1 GiB, where loaders put the
    // tree; the header's two words are read before trusting its size.
    let header = unsafe { core::slice::from_raw_parts(at as *const u8, 8) };
    let word = |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    if word(0) != DTB_MAGIC {
        return Err(DtbError::Missing(at));
    }
    let size = word(4);
    if size > MAX_DTB {
        return Err(DtbError::TooLarge(size));
    }
    // SAFETY: `size` is bounded above, and the loader placed that many bytes
    // of tree there, which nothing else writes.
    let blob = unsafe { core::slice::from_raw_parts(at as *const u8, size as usize) };
    let tree = Fdt::new(blob).map_err(|e| DtbError::Malformed(at, e))?;
    let tree = TREE.call_once(|| tree);
    let image = crate::layout::image_start()..crate::layout::image_end();
    let ram = tree
        .find_all_nodes("/memory")
        .flat_map(|node| node.reg().into_iter().flatten())
        .map(|region| {
            let start = region.starting_address as u64;
            start..start.saturating_add(region.size.unwrap_or(0) as u64)
        })
        .find(|region| region.start <= image.start && image.end <= region.end)
        .ok_or(DtbError::NoRam)?;
    Ok(Machine {
        ram,
        cmdline: tree.chosen().bootargs().unwrap_or(""),
        uart: uart(tree).ok_or(DtbError::NoConsole)?,
        psci: psci(tree),
    })
}

/// The tree read at boot.
pub fn tree() -> &'static Fdt<'static> {
    TREE.get().expect("the device tree is read at boot")
}

/// Base addresses of a node's `reg` entries.
fn bases<'a>(node: fdt::node::FdtNode<'_, 'a>) -> impl Iterator<Item = u64> + 'a {
    node.reg().into_iter().flatten().map(|region| region.starting_address as u64)
}

fn uart(tree: &Fdt<'static>) -> Option<u64> {
    let chosen =
        tree.chosen().stdout().filter(|node| node.compatible().is_some_and(|c| c.all().any(|c| c == "arm,pl011")));
    bases(chosen.or_else(|| tree.find_compatible(&["arm,pl011"]))?).next()
}

/// The GICv3 the tree names, looked up when interrupts are first needed.
pub fn gic() -> Option<GicFrames> {
    let mut frames = bases(tree().find_compatible(&["arm,gic-v3"])?);
    Some(GicFrames { distributor: frames.next()?, redistributors: frames.next()? })
}

fn psci(tree: &Fdt<'static>) -> Option<Conduit> {
    let node = tree.find_compatible(&["arm,psci-1.0", "arm,psci-0.2"])?;
    match node.property("method")?.as_str()? {
        "hvc" => Some(Conduit::Hvc),
        "smc" => Some(Conduit::Smc),
        _ => None,
    }
}

/// The first register frame of the first node compatible with `with`.
pub fn device(with: &str) -> Option<u64> {
    bases(tree().find_compatible(&[with])?).next()
}

/// An interrupt specifier of the GIC binding: (kind, number, flags); kind
/// 0 is a shared peripheral interrupt (SPI), 1 a private one (PPI).
pub type Interrupt = (u32, u32, u32);

/// A node's `interrupts`, read as GIC three-cell specifiers.
pub fn interrupts<'a>(node: fdt::node::FdtNode<'_, 'a>) -> impl Iterator<Item = Interrupt> + 'a {
    let cells = node.property("interrupts").map_or(&[][..], |p| p.value);
    cells.chunks_exact(12).map(|c| {
        let cell = |i: usize| u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
        (cell(0), cell(4), cell(8))
    })
}

/// Register windows and interrupts of the nodes compatible with `with`.
pub fn devices(with: &'static str) -> impl Iterator<Item = (Range<u64>, Option<Interrupt>)> {
    tree().all_nodes().filter(move |node| node.compatible().is_some_and(|c| c.all().any(|c| c == with))).filter_map(
        |node| {
            let region = node.reg()?.next()?;
            let start = region.starting_address as u64;
            Some((start..start.checked_add(region.size? as u64)?, interrupts(node).next()))
        },
    )
}
