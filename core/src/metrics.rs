//! Counters and gauges: what the runtime and the components count (heap,
//! tasks, interrupts, packets, connections, block I/O), read from inside
//! ([`Counter::get`], [`all`]) or rendered in the Prometheus text format
//! ([`render`]) for a `/metrics` endpoint or the runner at exit.
//!
//! A metric is a static declared with [`counter!`](crate::counter) or
//! [`gauge!`](crate::gauge), which also registers it in [`METRICS`] (a
//! linkme slice), so [`render`] finds every metric of every crate linked
//! into the image and no other: the net counters are in an image only when
//! it names the `net` component. Counting is one relaxed atomic add; a
//! metric costs its name, its help text and a pointer in the image.
//!
//! An image that names the [`at_exit`] component
//! (`#[unikernel(unikernel::metrics::at_exit)]`) sends its rendered
//! metrics on the host channel's [`METRICS`](stream::METRICS) stream when
//! `main` returns, if the kernel command line has `metrics=exit` (the
//! runner's `--metrics` adds it and prints them). Only such an image
//! carries the rendering and the channel's encoder: the runtime reaches
//! them through a hook the component's `init` sets.

use crate::Error;
use crate::channel::{self, stream};
use crate::component::Component;
use crate::vmm::Record;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};
use linkme::distributed_slice;

pub use crate::{counter, gauge};
#[doc(hidden)]
pub use linkme;

/// The runtime's own metrics (the components declare theirs).
pub use crate::executor::{LIVE_TASKS, POLLS, TASKS_PEAK, TASKS_SPAWNED};
pub use crate::heap::{HEAP_PEAK, HEAP_SIZE, HEAP_USED};
pub use crate::interrupt::{INTERRUPTS, INTERRUPTS_UNEXPECTED};

/// What a metric measures, as Prometheus types it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// Only goes up (a total since boot).
    Counter,
    /// Goes up and down (a current amount), or a peak.
    Gauge,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
        }
    }
}

/// Where a metric's value comes from.
enum Source {
    /// Kept by the code that counts.
    Stored(AtomicU64),
    /// Read when asked, from state its owner keeps anyway (the heap's).
    Read(fn() -> u64),
}

/// A named value; [`Counter`] and [`Gauge`] are the typed handles.
pub struct Metric {
    name: &'static str,
    help: &'static str,
    kind: Type,
    source: Source,
}

impl Metric {
    const fn new(name: &'static str, help: &'static str, kind: Type, source: Source) -> Self {
        assert!(valid_name(name), "a metric name is [a-zA-Z_:][a-zA-Z0-9_:]*");
        Self { name, help, kind, source }
    }

    /// The Prometheus metric name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// What it counts, in a sentence.
    pub fn help(&self) -> &'static str {
        self.help
    }

    /// Counter or gauge.
    pub fn kind(&self) -> Type {
        self.kind
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        match &self.source {
            Source::Stored(value) => value.load(Ordering::Relaxed),
            Source::Read(read) => read(),
        }
    }

    fn stored(&self) -> &AtomicU64 {
        match &self.source {
            Source::Stored(value) => value,
            // Only the declaring module counts into a metric, and it declares
            // one it reads (`read = ...`) to leave it alone.
            Source::Read(_) => unreachable!("a metric read from elsewhere is not counted into"),
        }
    }
}

/// Checked at compile time: the names Prometheus accepts.
const fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes[0].is_ascii_digit() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
            return false;
        }
        i += 1;
    }
    true
}

/// A total since boot; declared with [`counter!`](crate::counter).
pub struct Counter(Metric);

impl Counter {
    #[doc(hidden)]
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        Self(Metric::new(name, help, Type::Counter, Source::Stored(AtomicU64::new(0))))
    }

    /// A counter whose value `read` returns when asked; it must not be counted into.
    #[doc(hidden)]
    pub const fn read(name: &'static str, help: &'static str, read: fn() -> u64) -> Self {
        Self(Metric::new(name, help, Type::Counter, Source::Read(read)))
    }

    /// Counts one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Counts `n`.
    pub fn add(&self, n: u64) {
        self.0.stored().fetch_add(n, Ordering::Relaxed);
    }

    /// The total so far.
    pub fn get(&self) -> u64 {
        self.0.get()
    }

    #[doc(hidden)]
    pub const fn metric(&self) -> &Metric {
        &self.0
    }
}

/// A current amount or a peak; declared with [`gauge!`](crate::gauge).
pub struct Gauge(Metric);

impl Gauge {
    #[doc(hidden)]
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        Self(Metric::new(name, help, Type::Gauge, Source::Stored(AtomicU64::new(0))))
    }

    /// A gauge whose value `read` returns when asked; its setters must not be called.
    #[doc(hidden)]
    pub const fn read(name: &'static str, help: &'static str, read: fn() -> u64) -> Self {
        Self(Metric::new(name, help, Type::Gauge, Source::Read(read)))
    }

    /// Sets the value.
    pub fn set(&self, value: u64) {
        self.0.stored().store(value, Ordering::Relaxed);
    }

    /// Adds `n`; returns the new value.
    pub fn add(&self, n: u64) -> u64 {
        self.0.stored().fetch_add(n, Ordering::Relaxed).wrapping_add(n)
    }

    /// Subtracts `n`, stopping at zero.
    pub fn sub(&self, n: u64) {
        let _ = self.0.stored().fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(n)));
    }

    /// Raises the value to `value` if it is higher: a peak.
    pub fn raise(&self, value: u64) {
        self.0.stored().fetch_max(value, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.get()
    }

    #[doc(hidden)]
    pub const fn metric(&self) -> &Metric {
        &self.0
    }
}

/// Every metric linked into the image, in link order.
#[distributed_slice]
pub static METRICS: [&'static Metric];

/// Every metric linked into the image.
pub fn all() -> impl Iterator<Item = &'static Metric> {
    RUNTIME.iter().copied().chain(METRICS.iter().copied())
}

/// The runtime's own metrics, listed here rather than registered in
/// [`METRICS`]: a registration is kept in every image that links the
/// runtime (even the bench's floor kernel), a list only in those that read
/// it. Updating one costs an image only the metric it updates.
static RUNTIME: [&Metric; 9] = [
    HEAP_USED.metric(),
    HEAP_SIZE.metric(),
    HEAP_PEAK.metric(),
    LIVE_TASKS.metric(),
    TASKS_PEAK.metric(),
    TASKS_SPAWNED.metric(),
    POLLS.metric(),
    INTERRUPTS.metric(),
    INTERRUPTS_UNEXPECTED.metric(),
];

/// The metric named `name`, if the image has it.
pub fn find(name: &str) -> Option<&'static Metric> {
    all().find(|m| m.name == name)
}

/// Declares a registered [`Counter`]:
/// `counter!(pub static REQUESTS = "app_requests_total", "Requests served.");`
/// Names follow Prometheus: `snake_case`, counters end in `_total`. With
/// `, read = FN` its value is `FN()`, a total kept elsewhere.
#[macro_export]
macro_rules! counter {
    ($($declaration:tt)*) => { $crate::__metric!(Counter; $($declaration)*); };
}

/// Declares a registered [`Gauge`]: as [`counter!`](crate::counter), or
/// `gauge!(static HEAP = "heap_bytes", "Help.", read = heap_bytes);` for one
/// read from state kept elsewhere.
#[macro_export]
macro_rules! gauge {
    ($($declaration:tt)*) => { $crate::__metric!(Gauge; $($declaration)*); };
}

/// A registered metric of type `$kind` ([`Counter`] or [`Gauge`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __metric {
    ($kind:ident; $(#[$attr:meta])* $vis:vis static $id:ident = $($rest:tt)*) => {
        $crate::__declare_metric!($kind; $(#[$attr])* $vis static $id = $($rest)*);
        $crate::__register_metric!($id);
    };
}

/// A metric of type `$kind`, stored or read from elsewhere, not registered:
/// the runtime's own, which `metrics::all` lists.
#[doc(hidden)]
#[macro_export]
macro_rules! __declare_metric {
    ($kind:ident; $(#[$attr:meta])* $vis:vis static $id:ident = $name:literal, $help:literal $(;)?) => {
        $(#[$attr])*
        #[doc = $help]
        $vis static $id: $crate::metrics::$kind = $crate::metrics::$kind::new($name, $help);
    };
    ($kind:ident; $(#[$attr:meta])* $vis:vis static $id:ident = $name:literal, $help:literal, read = $read:expr $(;)?) => {
        $(#[$attr])*
        #[doc = $help]
        $vis static $id: $crate::metrics::$kind = $crate::metrics::$kind::read($name, $help, $read);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __register_metric {
    ($id:ident) => {
        const _: () = {
            #[$crate::metrics::linkme::distributed_slice($crate::metrics::METRICS)]
            #[linkme(crate = $crate::metrics::linkme)]
            static REGISTERED: &$crate::metrics::Metric = $id.metric();
        };
    };
}

/// Writes `metrics` in the Prometheus text exposition format, version
/// 0.0.4: for each, `# HELP`, `# TYPE` and the sample line.
pub fn render_each<'a>(out: &mut impl Write, metrics: impl Iterator<Item = &'a Metric>) -> fmt::Result {
    for metric in metrics {
        out.write_str("# HELP ")?;
        out.write_str(metric.name)?;
        out.write_char(' ')?;
        // The format escapes `\` and line feeds in help text.
        for c in metric.help.chars() {
            match c {
                '\\' => out.write_str("\\\\")?,
                '\n' => out.write_str("\\n")?,
                c => out.write_char(c)?,
            }
        }
        writeln!(out, "\n# TYPE {} {}\n{} {}", metric.name, metric.kind.name(), metric.name, metric.get())?;
    }
    Ok(())
}

/// Writes every metric of the image in the Prometheus text format.
pub fn render(out: &mut impl Write) -> fmt::Result {
    render_each(out, all())
}

/// Set by [`AtExit`]'s `init` when the metrics are to be sent at exit.
static HOOK: spin::Once<fn()> = spin::Once::new();

/// Called by the runtime when `main` returned, before it exits.
pub(crate) fn before_exit() {
    if let Some(send) = HOOK.get() {
        send();
    }
}

/// Sends every metric, rendered, on the host channel.
fn send() {
    let mut text = alloc::string::String::new();
    // Writing into a String cannot fail.
    let _ = render(&mut text);
    channel::send(stream::METRICS, text.as_bytes());
}

/// The component that sends the metrics at exit; named in
/// `#[unikernel(...)]` as `unikernel::metrics::at_exit`.
#[derive(Debug)]
pub struct AtExit;

/// Options of `at_exit(...)`: none yet.
#[derive(Debug, Default)]
pub struct Options {}

impl Component for AtExit {
    const NAME: &'static str = "metrics";
    /// The runner's place for the metrics: optional, the image runs without.
    const NEEDS: &'static [Record] = &[Record::stream(stream::METRICS, Self::NAME)];
    type Options = Options;

    fn init(_options: &Options) -> Result<(), Error> {
        if crate::cmdline::value("metrics") == Some("exit") {
            HOOK.call_once(|| send);
        }
        Ok(())
    }
}

/// Names [`AtExit`] in `#[unikernel(...)]`: `unikernel::metrics::at_exit`.
#[doc(hidden)]
#[macro_export]
macro_rules! __metrics_at_exit {
    ($($options:tt)*) => {
        $crate::component::options!($crate::metrics::AtExit, $crate::metrics::Options; $($options)*)
    };
}
pub use crate::__metrics_at_exit as at_exit;

#[cfg(test)]
mod tests {
    use super::*;

    crate::counter!(static EVENTS = "test_events_total", "Events.\nTwo lines, a \\ too.");
    crate::gauge!(static LEVEL = "test_level", "Level.");
    crate::gauge!(static READ = "test_read", "Read.", read = || 42);

    #[test]
    fn counters_and_gauges_count() {
        let before = EVENTS.get();
        EVENTS.inc();
        EVENTS.add(2);
        assert_eq!(EVENTS.get(), before + 3);
        LEVEL.set(5);
        assert_eq!(LEVEL.add(3), 8);
        LEVEL.sub(10);
        assert_eq!(LEVEL.get(), 0, "a gauge stops at zero");
        LEVEL.raise(7);
        LEVEL.raise(4);
        assert_eq!(LEVEL.get(), 7, "raise keeps the peak");
        assert_eq!(READ.get(), 42);
    }

    #[test]
    fn every_declared_metric_is_registered() {
        for name in ["test_events_total", "test_level", "test_read", "unikernel_heap_used_bytes"] {
            assert!(find(name).is_some(), "{name}");
        }
        let names: Vec<&str> = all().map(Metric::name).collect();
        let mut distinct = names.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), names.len(), "each name once: {names:?}");
    }

    #[test]
    fn rendering_follows_the_text_format_and_escapes_help() {
        let mut text = String::new();
        render_each(&mut text, [EVENTS.metric(), READ.metric()].into_iter()).unwrap();
        let events = EVENTS.get();
        assert_eq!(
            text,
            format!(
                "# HELP test_events_total Events.\\nTwo lines, a \\\\ too.\n# TYPE test_events_total counter\n\
                 test_events_total {events}\n# HELP test_read Read.\n# TYPE test_read gauge\ntest_read 42\n"
            )
        );
    }

    #[test]
    fn only_prometheus_names_are_valid() {
        for good in ["a", "_a", "a:b_c9", "unikernel_heap_used_bytes"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "9a", "a-b", "a b", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
