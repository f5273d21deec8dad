//! The `log` backend: records go to the console as `[LEVEL target] message`.

use log::{LevelFilter, Log, Metadata, Record};

struct ConsoleLogger;

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            crate::println!("[{:<5} {}] {}", record.level(), record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: ConsoleLogger = ConsoleLogger;

/// Installs the logger at `level`. Safe to call more than once.
pub fn init(level: LevelFilter) {
    // Only the first call installs; later ones just change the level.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
