//! What an image needs from the VMM, as records in the ELF section
//! `.unikernel.vmm`: the guest side writes them in `const` (the
//! `#[unikernel]` expansion names each component with the devices it
//! declares in [`Component::NEEDS`](crate::component::Component::NEEDS);
//! the target declares its own with [`vmm_records!`](crate::vmm_records)),
//! the runner decodes them and builds the VMM's devices from them, never
//! from component names.
//!
//! # Layout, version 1
//!
//! 64 bytes per record, little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"UKVM"` |
//! | 4 | 2 | layout version, 1 |
//! | 6 | 2 | record size, 64; readers step by it |
//! | 8 | 2 | kind: 1 component, 2 virtio device, 3 exit port, 4 port forward, 5 channel stream |
//! | 10 | 2 | flags: bit 0 [`REQUIRED`] |
//! | 12 | 2 | virtio device id (kind 2; [`virtio`]) |
//! | 14 | 2 | instance among records of the same device id |
//! | 16 | 8 | argument 0: kind 3, the I/O port; kind 4, the protocol (0 TCP, 1 UDP) plus the guest port << 16; kind 5, the stream id; 0 otherwise |
//! | 24 | 8 | argument 1: kind 4, the host port; 0 otherwise |
//! | 32 | 32 | the requesting component's name, NUL-padded |
//!
//! # Compatibility
//!
//! - New kinds and flag bits do not change the version: a reader skips a
//!   kind it does not know unless the record is [`REQUIRED`], and then
//!   refuses to boot.
//! - Fields are only appended: `size` grows, and readers ignore the bytes
//!   past the fields they know.
//! - The version changes only when a field changes meaning; a reader
//!   refuses a version it does not know.
//! - Zero bytes between records (alignment padding between objects) are
//!   skipped 8 at a time; anything else without the magic is malformed.

use crate::forward::{Forward, Protocol};
use alloc::vec::Vec;
use core::fmt;

/// The ELF section holding the records.
pub const SECTION: &str = ".unikernel.vmm";
/// The layout version this code writes and reads.
pub const VERSION: u16 = 1;
/// The size of a version-1 record.
pub const SIZE: usize = 64;
const MAGIC: [u8; 4] = *b"UKVM";
const NAME: core::ops::Range<usize> = 32..SIZE;
/// Record flag: the image cannot run without what the record asks for.
pub const REQUIRED: u16 = 1 << 0;

/// Device ids of the virtio specification (section 5), not component names.
pub mod virtio {
    /// virtio-net, a network card.
    pub const NET: u16 = 1;
    /// virtio-blk, a disk.
    pub const BLOCK: u16 = 2;
    /// virtio-console, a console port (a second channel beside the serial one).
    pub const CONSOLE: u16 = 3;
    /// virtio-rng, an entropy source.
    pub const ENTROPY: u16 = 4;
    /// Instance 1 of [`CONSOLE`]: the host channel's console
    /// (`unikernel_virtio_console::channel`); instance 0 is the log's.
    pub const CHANNEL_CONSOLE: u16 = 1;
    /// The channel's console tells itself from the log's by its
    /// configuration (the driver cannot rely on probe order, which differs
    /// between virtio-mmio and PCI): the VMM gives it this many ports
    /// (`max_nr_ports`), the log's console any other number (QEMU's 31).
    pub const CHANNEL_CONSOLE_PORTS: u32 = 2;
}

/// What a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A component in the image (its name is the requester).
    Component,
    /// A virtio device: `device` is its id, `index` tells instances apart.
    Virtio,
    /// An exit device at I/O port `arg0` (QEMU's `isa-debug-exit`): the
    /// guest writes [`exit::device_value`](crate::exit::device_value).
    ExitPort,
    /// A port forward the image asks for by default (see [`Record::forward`]).
    Forward,
    /// A stream the image sends on the host channel: `arg0` is its id
    /// ([`crate::channel::stream`]).
    Stream,
    /// A kind this code does not know (written by a newer guest).
    Unknown(u16),
}

impl Kind {
    const fn code(self) -> u16 {
        match self {
            Self::Component => 1,
            Self::Virtio => 2,
            Self::ExitPort => 3,
            Self::Forward => 4,
            Self::Stream => 5,
            Self::Unknown(code) => code,
        }
    }

    const fn from_code(code: u16) -> Self {
        match code {
            1 => Self::Component,
            2 => Self::Virtio,
            3 => Self::ExitPort,
            4 => Self::Forward,
            5 => Self::Stream,
            code => Self::Unknown(code),
        }
    }
}

/// One record, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// What the record is about.
    pub kind: Kind,
    /// Flag bits, such as [`REQUIRED`].
    pub flags: u16,
    /// The virtio device id ([`virtio`]) of a [`Kind::Virtio`] record; 0 otherwise.
    pub device: u16,
    /// Tells apart records of the same device id.
    pub index: u16,
    /// Argument 0; its meaning depends on the kind (0 today).
    pub arg0: u64,
    /// Argument 1; its meaning depends on the kind (0 today).
    pub arg1: u64,
    name: [u8; NAME.end - NAME.start],
}

impl Record {
    const fn new(kind: Kind, requester: &str) -> Self {
        let bytes = requester.as_bytes();
        assert!(bytes.len() <= NAME.end - NAME.start, "a requester name has at most 32 bytes");
        let mut name = [0; NAME.end - NAME.start];
        let mut i = 0;
        while i < bytes.len() {
            assert!(bytes[i] != 0, "a requester name has no NUL byte");
            name[i] = bytes[i];
            i += 1;
        }
        Self { kind, flags: 0, device: 0, index: 0, arg0: 0, arg1: 0, name }
    }

    /// Names a component of the image.
    pub const fn component(name: &str) -> Self {
        Self::new(Kind::Component, name)
    }

    /// Virtio device `device` (a [`virtio`] id), asked for by `requester`.
    pub const fn virtio(device: u16, requester: &str) -> Self {
        Self { device, ..Self::new(Kind::Virtio, requester) }
    }

    /// An exit device at I/O `port`, asked for by `requester` (a target).
    pub const fn exit_port(port: u16, requester: &str) -> Self {
        Self { arg0: port as u64, ..Self::new(Kind::ExitPort, requester) }
    }

    /// Host port `forward.host` forwarded to the guest's `forward.guest`,
    /// unless the user gives forwards of their own.
    pub const fn forward(forward: Forward, requester: &str) -> Self {
        let protocol = match forward.protocol {
            Protocol::Tcp => 0,
            Protocol::Udp => 1,
        };
        let arg0 = protocol | (forward.guest as u64) << 16;
        Self { arg0, arg1: forward.host as u64, ..Self::new(Kind::Forward, requester) }
    }

    /// A [`Kind::Forward`] record that forwards nothing: the image declares
    /// that it wants no forward at all (not even the runner's default).
    pub const fn no_forward(requester: &str) -> Self {
        Self::new(Kind::Forward, requester)
    }

    /// Host-channel stream `id` ([`crate::channel::stream`]), sent on by
    /// `requester`: the runner has a place for it.
    pub const fn stream(id: u16, requester: &str) -> Self {
        Self { arg0: id as u64, ..Self::new(Kind::Stream, requester) }
    }

    /// The forward of a [`Kind::Forward`] record; `None` for another kind
    /// or one whose ports or protocol make no forward.
    pub fn as_forward(&self) -> Option<Forward> {
        let protocol = match self.arg0 & 0xffff {
            0 => Protocol::Tcp,
            1 => Protocol::Udp,
            _ => return None,
        };
        let port = |value: u64| u16::try_from(value).ok().filter(|p| *p != 0);
        let forward = Forward { protocol, host: port(self.arg1)?, guest: port(self.arg0 >> 16)? };
        (self.kind == Kind::Forward).then_some(forward)
    }

    /// The same record for instance `index` of its device (a second
    /// console, say).
    pub const fn instance(self, index: u16) -> Self {
        Self { index, ..self }
    }

    /// The same record, marked [`REQUIRED`].
    pub const fn required(self) -> Self {
        Self { flags: self.flags | REQUIRED, ..self }
    }

    /// Whether the image cannot run without what this record asks for.
    pub const fn is_required(&self) -> bool {
        self.flags & REQUIRED != 0
    }

    /// The name of the component that wrote the record.
    pub fn requester(&self) -> &str {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(self.name.len());
        // Checked when decoding, and `new` takes a `&str`.
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }

    /// The record's bytes, for a `#[used]` static in the section.
    pub const fn encode(&self) -> [u8; SIZE] {
        let mut out = [0; SIZE];
        put(&mut out, 0, &MAGIC);
        put(&mut out, 4, &VERSION.to_le_bytes());
        put(&mut out, 6, &(SIZE as u16).to_le_bytes());
        put(&mut out, 8, &self.kind.code().to_le_bytes());
        put(&mut out, 10, &self.flags.to_le_bytes());
        put(&mut out, 12, &self.device.to_le_bytes());
        put(&mut out, 14, &self.index.to_le_bytes());
        put(&mut out, 16, &self.arg0.to_le_bytes());
        put(&mut out, 24, &self.arg1.to_le_bytes());
        put(&mut out, NAME.start, &self.name);
        out
    }

    /// Decodes the version-1 fields of `bytes` (at least [`SIZE`] long).
    fn decode(bytes: &[u8], offset: usize) -> Result<Self, Malformed> {
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let mut name = [0; NAME.end - NAME.start];
        name.copy_from_slice(&bytes[NAME]);
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        core::str::from_utf8(&name[..len]).map_err(|_| Malformed::Name { offset })?;
        Ok(Self {
            kind: Kind::from_code(u16_at(8)),
            flags: u16_at(10),
            device: u16_at(12),
            index: u16_at(14),
            arg0: u64_at(16),
            arg1: u64_at(24),
            name,
        })
    }
}

const fn put(out: &mut [u8; SIZE], at: usize, bytes: &[u8]) {
    let mut i = 0;
    while i < bytes.len() {
        out[at + i] = bytes[i];
        i += 1;
    }
}

/// Why a `.unikernel.vmm` section cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Bytes at `offset` are neither a record nor padding.
    Magic {
        /// Byte offset of the record in the section.
        offset: usize,
    },
    /// The record at `offset` is written in a layout version this code does not read.
    Version {
        /// Byte offset of the record in the section.
        offset: usize,
        /// The version the record states.
        version: u16,
    },
    /// The record at `offset` states a size that no version-1 reader can step by.
    Size {
        /// Byte offset of the record in the section.
        offset: usize,
        /// The size the record states.
        size: u16,
    },
    /// The section ends inside the record at `offset`.
    Truncated {
        /// Byte offset of the record in the section.
        offset: usize,
    },
    /// The requester name of the record at `offset` is not UTF-8.
    Name {
        /// Byte offset of the record in the section.
        offset: usize,
    },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Magic { offset } => write!(f, "no record at offset {offset} (bad magic)"),
            Self::Version { offset, version } => write!(
                f,
                "the record at offset {offset} has layout version {version}, this reader knows version {VERSION}: update it"
            ),
            Self::Size { offset, size } => {
                write!(f, "the record at offset {offset} has size {size}, expected a multiple of 8 of at least {SIZE}")
            }
            Self::Truncated { offset } => write!(f, "the section ends inside the record at offset {offset}"),
            Self::Name { offset } => write!(f, "the record at offset {offset} has a name that is not UTF-8"),
        }
    }
}

/// The records of a `.unikernel.vmm` section, in order.
pub fn parse(section: &[u8]) -> Result<Vec<Record>, Malformed> {
    let mut records = Vec::new();
    let mut offset = 0;
    while offset < section.len() {
        let rest = &section[offset..];
        let word = &rest[..rest.len().min(8)];
        if word.iter().all(|&b| b == 0) {
            offset += word.len(); // padding between records
            continue;
        }
        if rest.len() < 8 {
            return Err(Malformed::Truncated { offset });
        }
        if rest[..4] != MAGIC {
            return Err(Malformed::Magic { offset });
        }
        let version = u16::from_le_bytes([rest[4], rest[5]]);
        if version != VERSION {
            return Err(Malformed::Version { offset, version });
        }
        let size = u16::from_le_bytes([rest[6], rest[7]]);
        if usize::from(size) < SIZE || !size.is_multiple_of(8) {
            return Err(Malformed::Size { offset, size });
        }
        let Some(bytes) = rest.get(..usize::from(size)) else {
            return Err(Malformed::Truncated { offset });
        };
        records.push(Record::decode(bytes, offset)?);
        offset += usize::from(size);
    }
    Ok(records)
}

/// Places records in the image's `.unikernel.vmm` section from a crate that
/// every image of a target links (the target's own devices, such as its
/// exit port): a `#[used]` static reaches every image that links the crate,
/// even one that only uses it as a library, which is why components declare
/// theirs in `Component::NEEDS` instead.
/// `vmm_records!(Record::exit_port(0xf4, "x86_64").required());`
#[macro_export]
macro_rules! vmm_records {
    ($($record:expr),+ $(,)?) => {
        #[used]
        #[unsafe(link_section = ".unikernel.vmm")]
        static __UNIKERNEL_VMM_RECORDS: [[u8; $crate::vmm::SIZE]; [$(::core::stringify!($record)),+].len()] =
            [$($crate::vmm::Record::encode(&$record)),+];
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(records: &[Record]) -> Vec<u8> {
        records.iter().flat_map(Record::encode).collect()
    }

    #[test]
    fn records_round_trip() {
        let records = [
            Record::component("thermo"),
            Record::virtio(virtio::BLOCK, "thermo").required(),
            Record::stream(crate::channel::stream::PCAP, "capture"),
        ];
        let parsed = parse(&section(&records)).unwrap();
        assert_eq!(parsed, records);
        assert_eq!((parsed[2].kind, parsed[2].arg0), (Kind::Stream, 1));
        assert_eq!(parsed[0].requester(), "thermo");
        assert_eq!((parsed[1].kind, parsed[1].device, parsed[1].is_required()), (Kind::Virtio, virtio::BLOCK, true));
        assert!(!parsed[0].is_required());
        let long = "a-name-of-exactly-thirty-two-byt";
        assert_eq!(parse(&section(&[Record::component(long)])).unwrap()[0].requester(), long);
    }

    #[test]
    fn forwards_round_trip_and_nonsense_is_no_forward() {
        let dns = Forward { protocol: Protocol::Udp, host: 5353, guest: 53 };
        let parsed = parse(&section(&[Record::forward(dns, "main")])).unwrap();
        assert_eq!((parsed[0].kind, parsed[0].as_forward()), (Kind::Forward, Some(dns)));
        let mut bad = Record::forward(dns, "main");
        for (arg0, arg1) in [(2 | 53 << 16, 5353), (1, 5353), (1 | 53 << 16, 0), (1 | 53 << 16, 70_000)] {
            (bad.arg0, bad.arg1) = (arg0, arg1);
            assert_eq!(bad.as_forward(), None, "{arg0:#x} {arg1}");
        }
        assert_eq!(Record::component("net").as_forward(), None);
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let bytes = Record::virtio(virtio::NET, "nic").required().encode();
        assert_eq!(&bytes[..16], b"UKVM\x01\x00\x40\x00\x02\x00\x01\x00\x01\x00\x00\x00");
        assert_eq!(&bytes[32..36], b"nic\0");
        assert_eq!(parse(&[]).unwrap(), []);
    }

    #[test]
    fn padding_is_skipped_and_unknown_kinds_are_kept_for_the_reader() {
        let mut bytes = vec![0; 16];
        let mut future = Record::component("x").encode();
        future[8] = 99; // a kind from a newer guest
        bytes.extend(future);
        bytes.extend([0; 8]);
        bytes.extend(Record::component("y").encode());
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.iter().map(|r| r.kind).collect::<Vec<_>>(), [Kind::Unknown(99), Kind::Component]);
    }

    #[test]
    fn a_longer_record_from_a_newer_guest_is_read_by_its_first_fields() {
        let mut bytes = Record::component("x").encode().to_vec();
        bytes[6] = 72;
        bytes.extend([0xaa; 8]); // an appended field
        bytes.extend(Record::component("y").encode());
        let names: Vec<_> = parse(&bytes).unwrap().iter().map(|r| r.requester().to_owned()).collect();
        assert_eq!(names, ["x", "y"]);
    }

    #[test]
    fn malformed_sections_are_refused_with_the_offset() {
        let good = Record::component("x").encode();
        let with = |at: usize, value: u8| {
            let mut bytes = [good, good].concat();
            bytes[SIZE + at] = value;
            bytes
        };
        assert_eq!(parse(&with(0, b'X')), Err(Malformed::Magic { offset: 64 }));
        assert_eq!(parse(&with(4, 2)), Err(Malformed::Version { offset: 64, version: 2 }));
        assert_eq!(parse(&with(6, 8)), Err(Malformed::Size { offset: 64, size: 8 }));
        assert_eq!(parse(&with(6, 65)), Err(Malformed::Size { offset: 64, size: 65 }));
        assert_eq!(parse(&with(6, 128)), Err(Malformed::Truncated { offset: 64 }));
        assert_eq!(parse(&with(NAME.start, 0xff)), Err(Malformed::Name { offset: 64 }));
        assert_eq!(parse(&good[..40]), Err(Malformed::Truncated { offset: 0 }));
        assert_eq!(parse(&good[..5]), Err(Malformed::Truncated { offset: 0 }));
        assert_eq!(parse(&[0, 0, 0, 0, 0, 0, 0, 0, 1]), Err(Malformed::Truncated { offset: 8 }));
        let message = Malformed::Version { offset: 64, version: 2 }.to_string();
        assert!(message.contains("version 2") && message.contains("version 1"), "{message}");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep; the fuzz target covers the rest.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..200 {
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = parse(&bytes);
            if len >= 8 {
                bytes[..8].copy_from_slice(&good_header());
                let _ = parse(&bytes);
            }
        }
    }

    fn good_header() -> [u8; 8] {
        Record::component("x").encode()[..8].try_into().unwrap()
    }
}
