//! How the interface gets its IPv4 address: from the macro's options,
//! overridden by the kernel command line (`ip=dhcp` or
//! `ip=10.0.2.15/24 gw=10.0.2.2 dns=10.0.2.3`; `gateway=` is read when
//! `gw=` is absent, as urunc writes it for its `mewz` unikernel type), and
//! the TCP socket budget (`max_connections=N`).

use core::net::Ipv4Addr;
use unikernel_core::{Error, cmdline};

/// The address configuration of the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    /// Ask a DHCPv4 server.
    Dhcp,
    /// A fixed address.
    Static(Static),
}

/// A fixed IPv4 configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Static {
    /// The unikernel's own address.
    pub address: Ipv4Addr,
    /// Length of the network prefix: 24 for a `/24`.
    pub prefix_len: u8,
    /// Router for destinations outside the prefix; without one only the local network is reachable.
    pub gateway: Option<Ipv4Addr>,
    /// DNS server, if any.
    pub dns: Option<Ipv4Addr>,
}

/// Options of `net(...)` in `#[unikernel]`.
#[derive(Debug)]
pub struct Options {
    /// How the interface gets its address.
    pub config: Config,
}

impl Default for Options {
    /// DHCP: what QEMU's user networking and most hosts offer.
    fn default() -> Self {
        Self { config: Config::Dhcp }
    }
}

/// Parses `a.b.c.d/len`.
pub fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (address, len) = text.split_once('/')?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((address.parse().ok()?, len))
}

/// The configuration to use: the command line's, else `built_in`.
pub fn effective(built_in: Config) -> Result<Config, Error> {
    effective_in(built_in, cmdline::value)
}

/// [`effective`] with the command line's `key=value` words from `value`.
pub fn effective_in<'a>(built_in: Config, value: impl Fn(&str) -> Option<&'a str>) -> Result<Config, Error> {
    let address = |key: &str| -> Result<Option<Ipv4Addr>, Error> {
        value(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| Error::msg(alloc::format!("`{key}={v}` on the command line is not an IPv4 address")))
            })
            .transpose()
    };
    Ok(match value("ip") {
        None => built_in,
        Some("dhcp") => Config::Dhcp,
        Some(ip) => {
            let (address_, prefix_len) = parse_cidr(ip).ok_or_else(|| {
                Error::msg(alloc::format!(
                    "`ip={ip}` on the command line: expected `dhcp` or an address like 10.0.2.15/24"
                ))
            })?;
            let gateway = match address("gw")? {
                Some(gw) => Some(gw),
                None => address("gateway")?,
            };
            Config::Static(Static { address: address_, prefix_len, gateway, dns: address("dns")? })
        }
    })
}

/// The TCP socket budget from `max_connections=N` on the command line, if
/// given (`value` is the word's value).
pub fn max_connections(value: Option<&str>) -> Result<Option<usize>, Error> {
    value
        .map(|v| {
            v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                Error::msg(alloc::format!("`max_connections={v}` on the command line: expected a positive number"))
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effective_for(cmdline: &str) -> Result<Config, Error> {
        let value = |key: &str| {
            cmdline.split_ascii_whitespace().filter_map(|w| w.strip_prefix(key)?.strip_prefix('=')).next_back()
        };
        effective_in(Config::Dhcp, value)
    }

    fn gateway(cmdline: &str) -> Option<Ipv4Addr> {
        match effective_for(cmdline) {
            Ok(Config::Static(s)) => s.gateway,
            other => panic!("{cmdline:?}: {other:?}"),
        }
    }

    #[test]
    fn the_gateway_is_gw_else_urunc_s_gateway_word() {
        assert_eq!(gateway("ip=10.0.0.5/24 gw=10.0.0.1"), Some([10, 0, 0, 1].into()));
        // What urunc appends for its `mewz` type (an OCI image from `--oci-layout`).
        assert_eq!(gateway("ip=10.244.1.7/24 gateway=10.244.1.1 "), Some([10, 244, 1, 1].into()));
        assert_eq!(gateway("ip=10.0.0.5/24 gateway=10.0.0.9 gw=10.0.0.1"), Some([10, 0, 0, 1].into()));
        assert_eq!(gateway("ip=10.0.0.5/24"), None);
        assert!(effective_for("ip=10.0.0.5/24 gateway=router").is_err());
    }
}
