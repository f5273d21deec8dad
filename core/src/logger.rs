//! The `log` backend: records go to the console as `[LEVEL target] message`,
//! or to the sink a component installed with [`set_sink`].

use log::{LevelFilter, Log, Metadata, Record};

struct ConsoleLogger;

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        match SINK.get() {
            Some(sink) => sink(record),
            None => crate::println!("[{:<5} {}] {}", record.level(), record.target(), record.args()),
        }
    }

    fn flush(&self) {}
}

static LOGGER: ConsoleLogger = ConsoleLogger;

/// Where records go instead of the console, once a component installed it.
static SINK: spin::Once<fn(&Record<'_>)> = spin::Once::new();

/// Sends every later `log` record (those the level lets through) to `sink`
/// instead of the console, which then stays the application's: a log
/// channel of its own (`unikernel-virtio-console`). The first call wins;
/// returns whether this one did.
pub fn set_sink(sink: fn(&Record<'_>)) -> bool {
    let mut installed = false;
    SINK.call_once(|| {
        installed = true;
        sink
    });
    installed
}

/// Installs the logger at `level`. Safe to call more than once.
pub fn init(level: LevelFilter) {
    // Only the first call installs; later ones just change the level.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

    fn keep(record: &Record<'_>) {
        SEEN.lock().unwrap().push(format!("{} {}", record.level(), record.args()));
    }

    fn ignore(_: &Record<'_>) {}

    #[test]
    fn a_sink_takes_the_records_the_level_lets_through() {
        log::set_max_level(LevelFilter::Info);
        assert!(set_sink(keep));
        assert!(!set_sink(ignore), "the first sink stays");
        let record = |level| LOGGER.log(&Record::builder().level(level).args(format_args!("disk full")).build());
        record(log::Level::Warn);
        record(log::Level::Debug);
        assert_eq!(*SEEN.lock().unwrap(), ["WARN disk full"]);
    }
}
