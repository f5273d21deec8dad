//! The network stack's metrics (see `unikernel_core::metrics`): in an
//! image only when it names the `net` component. smoltcp keeps no
//! retransmission or drop statistics of its own, so what is counted here
//! is what the stack around it sees: frames in and out of the device,
//! frames it sends itself, frames dropped for a full device queue, and
//! the connection budget at work.

use unikernel_core::{counter, gauge};

counter!(pub static RX_FRAMES = "unikernel_net_rx_frames_total", "Frames received from the network device.");
counter!(pub static RX_BYTES = "unikernel_net_rx_bytes_total", "Bytes of the frames received from the network device.");
counter!(pub static TX_FRAMES = "unikernel_net_tx_frames_total", "Frames handed to the network device.");
counter!(pub static TX_BYTES = "unikernel_net_tx_bytes_total", "Bytes of the frames handed to the network device.");
counter!(
    pub static TX_DROPPED = "unikernel_net_tx_dropped_total",
    "Frames dropped because the network device's queue was full (TCP resends)."
);
counter!(
    pub static LOOPBACK_FRAMES = "unikernel_net_loopback_frames_total",
    "Frames the stack sent to its own address and received itself."
);
counter!(pub static TCP_ACCEPTED = "unikernel_tcp_accepted_total", "TCP connections accepted by listeners.");
counter!(pub static TCP_CONNECTED = "unikernel_tcp_connected_total", "Outgoing TCP connections established.");
counter!(
    pub static TCP_REFUSED = "unikernel_tcp_refused_total",
    "TCP sockets refused because the connection budget was spent."
);
counter!(
    pub static TCP_RECYCLED = "unikernel_tcp_half_open_recycled_total",
    "Half-open connections dropped to make room for a new one (a SYN flood's work)."
);
counter!(
    pub static TCP_RESET = "unikernel_tcp_linger_reset_total",
    "Closing connections reset because they lingered past the deadline."
);
gauge!(pub static TCP_SOCKETS = "unikernel_tcp_sockets", "TCP sockets open: listening, connected and closing.");
