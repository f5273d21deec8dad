//! rustls's clock: the unikernel's wall clock (`SystemTime`, from the RTC
//! on bare metal, the OS when hosted), for certificate and ticket validity.

use rustls::pki_types::UnixTime;
use rustls::time_provider::TimeProvider;
use unikernel_core::time::SystemTime;

#[derive(Debug)]
pub(crate) struct WallClock;

impl TimeProvider for WallClock {
    fn current_time(&self) -> Option<UnixTime> {
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(UnixTime::since_unix_epoch)
    }
}
