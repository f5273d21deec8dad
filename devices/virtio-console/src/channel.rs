//! The `channel` component: the host channel (`unikernel_core::channel`)
//! on a virtio console of its own, ~70x the serial port's bytes per second
//! under TCG (`examples/bench_channel.rs`): the serial port moves a byte
//! with two port I/Os where the console moves a whole line with one
//! notification.
//!
//! ```
//! use unikernel::prelude::*;
//!
//! // With `unikernel_net::pcap` too, the capture takes the fast way.
//! #[unikernel(unikernel_virtio_console::channel)]
//! fn main() {
//!     unikernel_core::channel::send(unikernel_core::channel::stream::DISCARD, b"bytes");
//! }
//! ```
//!
//! The runner attaches the console to a socket it reads and puts its lines
//! where the serial console's would have gone. A line the console does not
//! take whole (it failed to take a buffer within its deadline, and is then
//! never used again, saying so in the log) goes to the serial console:
//! never lost, never a hang. Hosted, the channel stays on standard output.

use unikernel_core::Error;
use unikernel_core::component::Component;
use unikernel_core::vmm::{Record, virtio};

/// The component; named in `#[unikernel(...)]` with [`channel!`](crate::channel).
#[derive(Debug)]
pub struct Channel;

/// Options of `channel(...)`: none yet.
#[derive(Debug, Default)]
pub struct ChannelOptions {}

impl Component for Channel {
    const NAME: &'static str = "channel";
    /// A console for the channel, told apart from the log's
    /// (`virtio_console`) by its instance.
    const NEEDS: &'static [Record] =
        &[Record::virtio(virtio::CONSOLE, Self::NAME).instance(virtio::CHANNEL_CONSOLE).required()];
    type Options = ChannelOptions;

    fn init(_options: &ChannelOptions) -> Result<(), Error> {
        #[cfg(target_os = "none")]
        {
            crate::machine::start(&crate::machine::CHANNEL)?;
            if !unikernel_core::channel::set_transport(deliver) {
                return Err(Error::msg("the host channel already has a transport"));
            }
        }
        Ok(())
    }
}

/// Sends one channel line on the channel's console; whether it took all.
#[cfg(target_os = "none")]
fn deliver(line: &[u8]) -> bool {
    crate::machine::send(&crate::machine::CHANNEL, line).is_empty()
}
