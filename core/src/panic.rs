//! The bare-metal panic handler: print a report, then either go on with the
//! next test or exit with [`crate::exit::PANIC`].

use crate::{exit, platform, println, test};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    if PANICKING.swap(true, Ordering::SeqCst) {
        println!("\npanicked while panicking: {}", info.message());
        exit::exit(exit::PANIC);
    }
    let resume_tests = test::panicked();
    crate::report_panic(info.location(), &info.message());
    if let Some(resume) = resume_tests {
        PANICKING.store(false, Ordering::SeqCst);
        platform::get().restart(resume)
    }
    exit::exit(exit::PANIC)
}
