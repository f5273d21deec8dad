//! Harness for the `.unikernel.vmm` records the runner reads from an image
//! it did not build.

use crate::Target;
use unikernel_core::vmm::{self, Record};

/// The fuzz targets of this module, by the names `fuzz/Cargo.toml` gives them.
pub const TARGETS: &[Target] = &[("vmm_records", records)];

/// The bytes as a `.unikernel.vmm` section: the parser never panics, and
/// every record it accepts encodes to bytes that read back as itself.
pub fn records(data: &[u8]) {
    let Ok(records) = vmm::parse(data) else {
        return;
    };
    for record in records {
        assert_eq!(vmm::parse(&record.encode()), Ok(vec![record]), "{record:?}");
        let _ = Record::requester(&record);
    }
}
