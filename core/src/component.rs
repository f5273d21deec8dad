//! Components: what `#[unikernel(...)]` and `main`'s parameters name.
//!
//! A component is any crate's type implementing [`Component`]. The crate
//! exports a macro under the component's name (`net`, `my_sensors::thermo`)
//! that checks the options written in the attribute and expands to an
//! [`Entry`] with [`component_entry!`](crate::component_entry); the
//! `#[unikernel]` macro calls it with the user's tokens and knows no
//! component by name. A parameter of `main` names its component through
//! [`Handle::Component`]. Every entry lands in [`COMPONENTS`], emitted in the
//! application crate: since a component crate is only linked when the
//! application mentions it, the slice holds exactly this image's components.

use crate::Error;
use crate::vmm::{Record, SIZE};
use alloc::vec::Vec;
use linkme::distributed_slice;

/// A part of the image that starts before `main`.
pub trait Component: 'static {
    /// Unique in an image: logs, the runner's banner, [`linked`].
    const NAME: &'static str;
    /// Names of components that must start first.
    const AFTER: &'static [&'static str] = &[];
    /// What the VMM must provide for it (a virtio device, say): written
    /// into the image by the application's expansion, so only images that
    /// name the component ask for them, not every image that links its crate.
    const NEEDS: &'static [Record] = &[];
    /// What the attribute's options build; `Default` when only a parameter
    /// of `main` names the component.
    type Options: Default;
    /// Brings the component up; runs once, before `main`.
    fn init(options: &Self::Options) -> Result<(), Error>;
}

/// A component's handle, the typed proof in `main`'s signature that the
/// component is in the image: `fn main(rng: Entropy)`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a component handle",
    label = "this parameter of `main` must be the handle of a component",
    note = "each parameter of `main` is a component's handle (e.g. `Net`); components without one are named in `#[unikernel(...)]`"
)]
pub trait Handle: Sized {
    /// The component this handle belongs to; naming the handle in `main`'s
    /// parameters links and starts it.
    type Component: Component;
    /// Called once, after every component started, to build the handle.
    fn take() -> Result<Self, Error>;
}

/// A component in the image, with its options bound into `init`.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// [`Component::NAME`].
    pub name: &'static str,
    /// [`Component::AFTER`].
    pub after: &'static [&'static str],
    /// [`Component::NEEDS`].
    pub needs: &'static [Record],
    /// Whether the attribute named it (with its options); otherwise only a
    /// parameter did, and the component starts with default options unless
    /// the attribute names it too.
    pub named: bool,
    /// Starts the component with its options.
    pub init: fn() -> Result<(), Error>,
}

impl Entry {
    /// The entry of a component that only a parameter of `main` names.
    pub const fn default_of<C: Component>() -> Self {
        Self { name: C::NAME, after: C::AFTER, needs: C::NEEDS, named: false, init: || C::init(&C::Options::default()) }
    }
}

/// The entry of component `$component` started with `$options`, an
/// expression of its `Options` type: what a component's macro expands to.
///
/// ```
/// use unikernel_core::{Error, component::Component};
///
/// pub struct Thermo;
/// #[derive(Default)]
/// pub struct Options { pub period_ms: u32 }
///
/// impl Component for Thermo {
///     const NAME: &'static str = "thermo";
///     type Options = Options;
///     fn init(options: &Options) -> Result<(), Error> {
///         assert_eq!(options.period_ms, 500);
///         Ok(())
///     }
/// }
///
/// // What `#[unikernel(thermo)]` expands `thermo!{}` to.
/// macro_rules! thermo {
///     () => { unikernel_core::component::entry!(Thermo, Options { period_ms: 500 }) };
/// }
///
/// # fn main() {
/// let entry = thermo!();
/// assert_eq!(entry.name, "thermo");
/// (entry.init)().unwrap();
/// # }
/// ```
#[macro_export]
macro_rules! component_entry {
    ($component:ty, $options:expr $(,)?) => {
        $crate::component::Entry {
            name: <$component as $crate::component::Component>::NAME,
            after: <$component as $crate::component::Component>::AFTER,
            needs: <$component as $crate::component::Component>::NEEDS,
            named: true,
            init: || <$component as $crate::component::Component>::init(&$options),
        }
    };
}

/// The entry of `$component` with options written as `field = value`
/// over `$options`'s defaults: the whole grammar of a component whose
/// options are plain values. A misspelt field or a value of the wrong type
/// is the compiler's error on the user's token.
///
/// ```
/// use unikernel_core::{Error, component::Component};
///
/// pub struct Thermo;
/// #[derive(Default)]
/// pub struct Options { pub period_ms: u32, pub fahrenheit: bool }
///
/// impl Component for Thermo {
///     const NAME: &'static str = "thermo";
///     type Options = Options;
///     fn init(options: &Options) -> Result<(), Error> {
///         assert_eq!((options.period_ms, options.fahrenheit), (500, false));
///         Ok(())
///     }
/// }
///
/// // In the component's crate, with `pub use unikernel as __unikernel;`
/// // (here `unikernel_core`, at the crate root):
/// // #[unikernel(my_sensors::thermo(period_ms = 500))].
/// #[doc(hidden)]
/// #[macro_export]
/// macro_rules! __thermo {
///     ($($options:tt)*) => {
///         unikernel_core::component::options!(Thermo, Options; $($options)*)
///     };
/// }
/// pub use __thermo as thermo;
///
/// # fn main() {
/// (thermo!(period_ms = 500).init)().unwrap();
/// # }
/// ```
#[macro_export]
macro_rules! component_options {
    ($component:ty, $options:ty; $($field:ident = $value:expr),* $(,)?) => {
        $crate::component_entry!($component, {
            // A struct expression needs a path; `$options` is a type, which
            // may itself be spelt `Options`: the alias must not shadow it.
            type __UnikernelOptions = $options;
            // Every field may be written; the defaults then go unused.
            #[allow(clippy::needless_update)]
            let options = __UnikernelOptions { $($field: $value,)* ..::core::default::Default::default() };
            options
        })
    };
}

pub use crate::{component_entry as entry, component_options as options};

/// Fails to compile when two entries the attribute wrote name the same
/// component (through two paths, which the macro cannot tell apart).
pub const fn check_distinct(named: &[&str]) {
    let mut i = 0;
    while i < named.len() {
        let mut j = i + 1;
        while j < named.len() {
            if eq(named[i], named[j]) {
                panic!("a component is named twice in #[unikernel(...)], through two paths");
            }
            j += 1;
        }
        i += 1;
    }
}

/// How many records [`records`] writes for `entries`.
pub const fn records_len(entries: &[Entry]) -> usize {
    let (mut len, mut i) = (0, 0);
    while i < entries.len() {
        if first_at(entries, i) {
            len += 1 + entries[i].needs.len();
        }
        i += 1;
    }
    len
}

/// The image's records for the runner: per component (each once, in the
/// order first written) its name, then what it needs from the VMM. `N` is
/// [`records_len`]`(entries)`.
pub const fn records<const N: usize>(entries: &[Entry]) -> [[u8; SIZE]; N] {
    let mut out = [[0; SIZE]; N];
    let (mut i, mut next) = (0, 0);
    while i < entries.len() {
        if first_at(entries, i) {
            out[next] = Record::component(entries[i].name).encode();
            next += 1;
            let mut k = 0;
            while k < entries[i].needs.len() {
                out[next] = entries[i].needs[k].encode();
                (next, k) = (next + 1, k + 1);
            }
        }
        i += 1;
    }
    out
}

/// Whether `entries[i]`'s component does not occur before `i`.
const fn first_at(entries: &[Entry], i: usize) -> bool {
    let mut j = 0;
    while j < i {
        if eq(entries[j].name, entries[i].name) {
            return false;
        }
        j += 1;
    }
    true
}

const fn eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The components of this image, in link order.
#[distributed_slice]
pub static COMPONENTS: [Entry];

/// Whether the image contains the component `name`.
pub fn linked(name: &str) -> bool {
    COMPONENTS.iter().any(|c| c.name == name)
}

/// Starts every linked component, dependencies first.
pub fn init_all() -> Result<(), Error> {
    for component in start_order(&distinct(&COMPONENTS))? {
        log::debug!("starting component {}", component.name);
        (component.init)()
            .map_err(|e| Error::msg(alloc::format!("component `{}` failed to start: {e}", component.name)))?;
    }
    Ok(())
}

/// Each component once: the attribute's entry when it has one (its
/// options), else the first parameter's.
fn distinct(entries: &[Entry]) -> Vec<&Entry> {
    let mut out: Vec<&Entry> = Vec::with_capacity(entries.len());
    for entry in entries {
        match out.iter_mut().find(|o| o.name == entry.name) {
            Some(kept) if entry.named && !kept.named => *kept = entry,
            Some(_) => {}
            None => out.push(entry),
        }
    }
    out
}

/// Orders `components` so each comes after those it names in `after`;
/// ties keep link order. Fails on a missing dependency or a cycle.
fn start_order<'a>(components: &[&'a Entry]) -> Result<Vec<&'a Entry>, Error> {
    for c in components {
        if let Some(missing) = c.after.iter().find(|d| !components.iter().any(|o| o.name == **d)) {
            return Err(Error::msg(alloc::format!(
                "component `{}` needs `{missing}`, which is not in this image",
                c.name
            )));
        }
    }
    let mut order: Vec<&Entry> = Vec::with_capacity(components.len());
    while order.len() < components.len() {
        let ready = components.iter().find(|c| {
            !order.iter().any(|o| o.name == c.name) && c.after.iter().all(|d| order.iter().any(|o| o.name == *d))
        });
        match ready {
            Some(c) => order.push(c),
            None => return Err(Error::msg("components depend on each other in a cycle")),
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Result<(), Error> {
        Ok(())
    }

    fn named() -> Result<(), Error> {
        Err(Error::msg("named"))
    }

    fn c(name: &'static str, after: &'static [&'static str]) -> Entry {
        Entry { name, after, needs: &[], named: true, init: ok }
    }

    fn names(cs: &[Entry]) -> Result<Vec<&'static str>, String> {
        start_order(&distinct(cs)).map(|o| o.iter().map(|c| c.name).collect()).map_err(|e| e.to_string())
    }

    #[test]
    fn dependencies_start_first_and_ties_keep_link_order() {
        let cs = [c("net", &["virtio-net"]), c("entropy", &[]), c("virtio-net", &["pci"]), c("pci", &[])];
        assert_eq!(names(&cs).unwrap(), ["entropy", "pci", "virtio-net", "net"]);
    }

    #[test]
    fn missing_dependency_and_cycle_are_errors() {
        let missing = [c("net", &["virtio-net"])];
        assert_eq!(names(&missing).unwrap_err(), "component `net` needs `virtio-net`, which is not in this image");
        let cycle = [c("a", &["b"]), c("b", &["a"])];
        assert!(names(&cycle).unwrap_err().contains("cycle"));
    }

    #[test]
    fn a_component_named_by_a_parameter_and_the_attribute_starts_once_with_the_attributes_options() {
        let param = Entry { named: false, ..c("net", &[]) };
        let attribute = Entry { init: named, ..c("net", &[]) };
        for entries in [[param, attribute], [attribute, param]] {
            let kept = distinct(&entries);
            assert_eq!(kept.len(), 1);
            assert_eq!((kept[0].init)().unwrap_err().to_string(), "named");
        }
        assert_eq!(distinct(&[param, param]).len(), 1);
    }

    #[test]
    fn records_name_each_component_once_in_the_order_written_with_its_needs() {
        const DISK: &[Record] = &[Record::virtio(crate::vmm::virtio::BLOCK, "block").required()];
        const fn entry(name: &'static str, needs: &'static [Record], named: bool) -> Entry {
            Entry { name, after: &[], needs, named, init: ok }
        }
        const ENTRIES: &[Entry] = &[
            entry("net", &[], true),
            entry("block", DISK, true),
            entry("net", &[], false),
            entry("block", DISK, false),
            entry("thermo", &[], true),
        ];
        const RECORDS: [[u8; SIZE]; records_len(ENTRIES)] = records(ENTRIES);
        let parsed = crate::vmm::parse(RECORDS.as_flattened()).unwrap();
        let written: Vec<(&str, crate::vmm::Kind)> = parsed.iter().map(|r| (r.requester(), r.kind)).collect();
        use crate::vmm::Kind::{Component, Virtio};
        assert_eq!(written, [("net", Component), ("block", Component), ("block", Virtio), ("thermo", Component)]);
    }

    #[test]
    fn names_compare_by_bytes_in_const() {
        assert!(eq("net", "net") && !eq("net", "nett") && !eq("net", "neT"));
        check_distinct(&["net", "entropy", "block"]);
        assert!(std::panic::catch_unwind(|| check_distinct(&["net", "entropy", "net"])).is_err());
    }
}
