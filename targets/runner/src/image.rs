//! What the runner reads from a unikernel ELF: its architecture, that it
//! is bootable (x86_64: the PVH note), where it loads, what it needs from the VMM (its `.unikernel.vmm`
//! records), and its symbols for crash reports.

use object::read::elf::ProgramHeader;
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};
use std::ops::Range;
use std::path::Path;
use unikernel_core::vmm::{self, Kind, Record};

/// `XEN_ELFNOTE_PHYS32_ENTRY`, the note QEMU's `-kernel` boots through.
const PVH_NOTE_TYPE: u32 = 18;

/// The guest architectures the runner boots, from the ELF's machine field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// PVH images for QEMU's x86 machines.
    X86_64,
    /// ELF images for QEMU's `virt`.
    Aarch64,
}

pub struct Image {
    pub arch: Arch,
    /// What the image needs from the VMM, in section order.
    pub records: Vec<Record>,
    /// Physical addresses the loader fills (code, data, `.bss`, boot stack),
    /// from the ELF's loadable segments.
    pub extent: Range<u64>,
    /// Function symbols as (start, size, demangled name), sorted by start.
    symbols: Vec<(u64, u64, String)>,
    /// Read-only data sections as (address, bytes): where the guest's
    /// `&'static str`s are (trace span names).
    rodata: Vec<(u64, Vec<u8>)>,
}

impl Image {
    pub fn read(path: &Path) -> Result<Self, String> {
        let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(path, &data)
    }

    /// The image in `data`, read from `path` (named in errors).
    pub fn parse(path: &Path, data: &[u8]) -> Result<Self, String> {
        let file = object::File::parse(data).map_err(|e| format!("{} is not an ELF file: {e}", path.display()))?;
        let arch = match file.architecture() {
            object::Architecture::X86_64 => Arch::X86_64,
            object::Architecture::Aarch64 => Arch::Aarch64,
            other => {
                return Err(format!(
                    "{} is built for {other:?}: the runner boots x86_64-unknown-none and aarch64-unknown-none images",
                    path.display()
                ));
            }
        };
        if arch == Arch::X86_64 && !has_pvh_note(&file) {
            return Err(format!(
                "{} has no PVH entry note: build it for x86_64-unknown-none with `-C link-arg=-Tunikernel.ld` (see the README)",
                path.display()
            ));
        }
        let extent = load_extent(&file).ok_or_else(|| format!("{} has no loadable segment", path.display()))?;
        let records = match file.section_by_name(vmm::SECTION) {
            Some(section) => {
                let malformed = |e: &dyn std::fmt::Display| {
                    format!("{} has a malformed {} section: {e}", path.display(), vmm::SECTION)
                };
                vmm::parse(section.data().map_err(|e| malformed(&e))?).map_err(|e| malformed(&e))?
            }
            None => Vec::new(),
        };
        let mut symbols: Vec<_> = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
            .filter_map(|s| Some((s.address(), s.size(), format!("{:#}", rustc_demangle::demangle(s.name().ok()?)))))
            .collect();
        symbols.sort_by_key(|s| s.0);
        let rodata = file
            .sections()
            .filter(|s| s.kind() == SectionKind::ReadOnlyData || s.kind() == SectionKind::ReadOnlyString)
            .filter_map(|s| Some((s.address(), s.data().ok()?.to_vec())))
            .collect();
        Ok(Self { arch, records, extent, symbols, rodata })
    }

    /// An image with nothing in it, for tests of what reads one.
    #[cfg(test)]
    pub fn empty() -> Self {
        Self { arch: Arch::X86_64, records: Vec::new(), extent: 0..0, symbols: Vec::new(), rodata: Vec::new() }
    }

    /// The `len` bytes of read-only data at `addr` as text, if they are
    /// there and UTF-8 (the guest says where; it may be wrong).
    pub fn static_str(&self, addr: u64, len: usize) -> Option<String> {
        self.rodata.iter().find_map(|(start, data)| {
            let offset = usize::try_from(addr.checked_sub(*start)?).ok()?;
            let bytes = data.get(offset..offset.checked_add(len)?)?;
            Some(std::str::from_utf8(bytes).ok()?.to_owned())
        })
    }

    /// The image's components (their records), in order, each once; not
    /// the target or the application, which write records too.
    pub fn components(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for name in self.records.iter().filter(|r| r.kind == Kind::Component).map(Record::requester) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// The function containing `addr`, as `name+0xoffset`.
    pub fn symbolize(&self, addr: u64) -> Option<String> {
        let i = self.symbols.partition_point(|s| s.0 <= addr).checked_sub(1)?;
        let (start, size, name) = &self.symbols[i];
        (addr < start + (*size).max(1)).then(|| format!("{name}+{:#x}", addr - start))
    }
}

/// From the lowest to the highest physical address of the `PT_LOAD` segments.
fn load_extent(file: &object::File<'_>) -> Option<Range<u64>> {
    let object::File::Elf64(elf) = file else {
        return None;
    };
    let endian = elf.endian();
    let loads = elf.elf_program_headers().iter().filter(|h| h.p_type(endian) == object::elf::PT_LOAD);
    let ranges = loads.map(|h| h.p_paddr(endian)..h.p_paddr(endian).saturating_add(h.p_memsz(endian)));
    ranges.reduce(|a, b| a.start.min(b.start)..a.end.max(b.end))
}

fn has_pvh_note(file: &object::File<'_>) -> bool {
    let object::File::Elf64(elf) = file else {
        return false;
    };
    let endian = elf.endian();
    elf.elf_program_headers().iter().any(|header| {
        let Ok(Some(mut notes)) = header.notes(endian, elf.data()) else {
            return false;
        };
        while let Ok(Some(note)) = notes.next() {
            if note.name() == b"Xen" && note.n_type(endian) == PVH_NOTE_TYPE {
                return true;
            }
        }
        false
    })
}
