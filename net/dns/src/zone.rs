//! A zone as the records `zone!` compiled into the image, indexed at boot.

use crate::master::{MasterFileError, ZoneLimits};
use alloc::vec::Vec;
use core::fmt;
use domain::base::iana::Rtype;
use domain::base::name::{Name, ToName};
use domain::base::record::Ttl;

/// One record: its owner and data point into the compiled zone.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub owner: Name<&'static [u8]>,
    pub rtype: Rtype,
    pub ttl: Ttl,
    pub data: &'static [u8],
}

/// The memory one record takes in the index.
pub(crate) const RECORD_SIZE: usize = size_of::<Record>();

/// The records of one zone, SOA first. Built once at boot from
/// [`zone!`](crate::zone)'s output; lookups compare names
/// case-insensitively.
#[derive(Debug)]
pub struct Zone {
    records: Vec<Record>,
}

/// Bytes that are not a zone as `zone!` writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneError(&'static str);

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid compiled zone: {}", self.0)
    }
}

impl core::error::Error for ZoneError {}

/// Splits off the first `n` bytes of `wire`.
fn take(wire: &mut &'static [u8], n: usize) -> Result<&'static [u8], ZoneError> {
    let (head, tail) = wire.split_at_checked(n).ok_or(ZoneError("a record runs past the end"))?;
    *wire = tail;
    Ok(head)
}

impl Zone {
    /// Indexes records in wire format (uncompressed, SOA first), as
    /// `zone!` expands to.
    pub fn new(mut wire: &'static [u8]) -> Result<Self, ZoneError> {
        let mut records = Vec::new();
        while !wire.is_empty() {
            let mut len = 0;
            while let Some(&label) = wire.get(len) {
                len += 1 + usize::from(label);
                if label == 0 {
                    break;
                }
            }
            let owner = Name::from_octets(take(&mut wire, len)?).map_err(|_| ZoneError("an owner is not a name"))?;
            let fixed = take(&mut wire, 10)?;
            let field = |at: usize| u16::from_be_bytes([fixed[at], fixed[at + 1]]);
            let ttl = Ttl::from_secs(u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]));
            let data = take(&mut wire, usize::from(field(8)))?;
            records.push(Record { owner, rtype: field(0).into(), ttl, data });
        }
        let soa =
            records.first().filter(|r| r.rtype == Rtype::SOA).ok_or(ZoneError("the first record is not a SOA"))?;
        // A negative answer reads the SOA's MINIMUM field (its last 4 bytes).
        if soa.data.len() < 20 {
            return Err(ZoneError("the SOA's data is too short"));
        }
        if !records.iter().all(|r| r.owner.ends_with(&soa.owner)) {
            return Err(ZoneError("a record is outside the zone"));
        }
        Ok(Self { records })
    }

    /// Reads the master file `text` at run time, strictly and within
    /// `limits` ([`compile`](crate::master::compile)); its records stay in
    /// memory for as long as the program runs.
    pub fn from_master_file(text: &[u8], limits: &ZoneLimits) -> Result<Self, MasterFileError> {
        let wire = crate::master::compile(text, limits)?.into_boxed_slice();
        // `compile` checks what `new` does; a failure would be a bug, not
        // bad input, yet it is reported, never unwrapped.
        Self::new(alloc::boxed::Box::leak(wire)).map_err(MasterFileError::zone)
    }

    /// The zone's apex (its SOA's owner).
    pub fn apex(&self) -> &Name<&'static [u8]> {
        &self.records[0].owner
    }

    /// Its number of records.
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn soa(&self) -> Record {
        self.records[0].clone()
    }

    /// The records owned by `name`.
    pub(crate) fn at<'a>(&'a self, name: &'a impl ToName) -> impl Iterator<Item = Record> + 'a {
        self.records.iter().filter(move |r| r.owner.name_eq(name)).cloned()
    }

    /// Whether `name` exists: it owns records or is an ancestor of a name
    /// that does (an empty non-terminal, RFC 8020: NODATA, not NXDOMAIN).
    pub(crate) fn exists(&self, name: &impl ToName) -> bool {
        self.records.iter().any(|r| r.owner.ends_with(name))
    }
}
