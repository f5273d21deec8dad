//! The component registry.
//!
//! Every component named in `#[unikernel(...)]` gets an entry in
//! [`COMPONENTS`], emitted by the macro in the application crate. Since a
//! component crate is only linked when the macro mentions it, the slice holds
//! exactly the components of this image.

use crate::Error;
use alloc::vec::Vec;
use linkme::distributed_slice;

/// A component linked into the image.
#[derive(Debug)]
pub struct Component {
    /// The name used in `#[unikernel(...)]`.
    pub name: &'static str,
    /// Components that must be started before this one.
    pub after: &'static [&'static str],
    /// Brings the component up; runs once, before `main`.
    pub init: fn() -> Result<(), Error>,
}

/// The components of this image, in link order.
#[distributed_slice]
pub static COMPONENTS: [Component];

/// Whether the image contains the component `name`.
pub fn linked(name: &str) -> bool {
    COMPONENTS.iter().any(|c| c.name == name)
}

/// Starts every linked component, dependencies first.
pub fn init_all() -> Result<(), Error> {
    if COMPONENTS.is_empty() {
        return Ok(()); // most images: skip the ordering work at boot
    }
    for component in start_order(&COMPONENTS)? {
        log::debug!("starting component {}", component.name);
        (component.init)()
            .map_err(|e| Error::msg(alloc::format!("component `{}` failed to start: {e}", component.name)))?;
    }
    Ok(())
}

/// Orders `components` so each comes after those it names in `after`;
/// ties keep link order. Fails on a missing dependency or a cycle.
fn start_order(components: &[Component]) -> Result<Vec<&Component>, Error> {
    for c in components {
        if let Some(missing) = c.after.iter().find(|d| !components.iter().any(|o| o.name == **d)) {
            return Err(Error::msg(alloc::format!(
                "component `{}` needs `{missing}`, which is not in this image",
                c.name
            )));
        }
    }
    let mut order: Vec<&Component> = Vec::with_capacity(components.len());
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

/// A component's handle, the typed proof in `main`'s signature that the
/// component is in the image: `fn main(rng: Entropy)`.
pub trait Handle: Sized {
    /// Called once, after every component started, to build the handle.
    fn take() -> Result<Self, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Result<(), Error> {
        Ok(())
    }

    fn c(name: &'static str, after: &'static [&'static str]) -> Component {
        Component { name, after, init: ok }
    }

    fn names(cs: &[Component]) -> Result<Vec<&'static str>, String> {
        start_order(cs).map(|o| o.iter().map(|c| c.name).collect()).map_err(|e| e.to_string())
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
}
