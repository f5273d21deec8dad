//! The `pcap` component: every frame the NIC sends or receives, as a pcap
//! stream on the host channel (`unikernel_core::channel`), which the
//! runner writes to a file `tcpdump -r` and Wireshark read (`--pcap FILE`).
//!
//! The stack's NIC adapter ([`crate::phy`]) hands each frame to [`tap`],
//! which costs an image without the component one load and branch per
//! frame: the recorder is reached only through the hook this component's
//! `init` sets, so its code is linked only into images that name it.
//! Hosted, the host's sockets carry the packets: capture them on the host
//! (`tcpdump -i lo`).

use alloc::vec::Vec;
use smoltcp::phy::{PcapLinkType, PcapSink};
use unikernel_core::Error;
use unikernel_core::channel::{self, stream};
use unikernel_core::component::Component;
use unikernel_core::time::SystemTime;
use unikernel_core::vmm::Record;

/// Called with each frame once the component started.
static HOOK: spin::Once<fn(&[u8])> = spin::Once::new();

/// Records `frame` if the image captures. Not inlined: one copy of the
/// check, however many places hand frames over.
#[inline(never)]
#[cfg(any(target_os = "none", test))]
pub(crate) fn tap(frame: &[u8]) {
    if let Some(record) = HOOK.get() {
        record(frame);
    }
}

/// The component; named in `#[unikernel(...)]` as `unikernel_net::pcap`.
#[derive(Debug)]
pub struct Pcap;

/// Options of `pcap(...)`: none yet.
#[derive(Debug, Default)]
pub struct Options {}

impl Component for Pcap {
    const NAME: &'static str = "pcap";
    /// The runner's place for the capture.
    const NEEDS: &'static [Record] = &[Record::stream(stream::PCAP, Self::NAME).required()];
    type Options = Options;

    fn init(_options: &Options) -> Result<(), Error> {
        if cfg!(target_os = "none") {
            let mut header = Sink(Vec::new());
            header.global_header(PcapLinkType::Ethernet);
            channel::send(stream::PCAP, &header.0);
            HOOK.call_once(|| record);
        } else {
            log::warn!("pcap: hosted, the host's sockets carry the packets; capture them on the host instead");
        }
        Ok(())
    }
}

/// One frame as a pcap record, sent at once: a record is never split
/// between two sends, so the file is whole up to the last frame even if
/// the guest stops mid-run.
fn record(frame: &[u8]) {
    let mut record = Sink(Vec::with_capacity(16 + frame.len()));
    let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let micros = i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX);
    record.packet(smoltcp::time::Instant::from_micros(micros), frame);
    channel::send(stream::PCAP, &record.0);
}

/// smoltcp's pcap encoder, writing into a buffer.
struct Sink(Vec<u8>);

impl PcapSink for Sink {
    fn write(&mut self, data: &[u8]) {
        self.0.extend_from_slice(data);
    }
}
