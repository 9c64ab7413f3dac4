//! `[binding]`: how container interfaces are created on the host (kuryr-lib).

use super::default::parse_each;
use super::drivers::BindingDriverKind;
use super::error::ConfigError;
use super::source::{Group, Opt, Sources};

/// The `[binding]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingSection {
    /// Name prefix of the interface inside the container (libnetwork
    /// `DstPrefix`): `eth` gives `eth0`, `eth1`, ...
    pub veth_dst_prefix: String,
    /// `default_driver` (formerly `driver`).
    pub default_driver: BindingDriverKind,
    pub enabled_drivers: Vec<BindingDriverKind>,
    /// The VM NIC that nested, macvlan, ipvlan and vlan bindings hang off;
    /// `None` lets the driver find it.
    pub link_iface: Option<String>,
}

pub(crate) const SECTION: &str = "binding";

const VETH_DST_PREFIX: Opt = Opt::new("veth_dst_prefix").default("eth");
pub(crate) const DEFAULT_DRIVER: Opt = Opt::new("default_driver")
    .default("kuryr.lib.binding.drivers.veth")
    .deprecated(&["driver"]);
pub(crate) const ENABLED_DRIVERS: Opt =
    Opt::new("enabled_drivers").default("kuryr.lib.binding.drivers.veth");
const LINK_IFACE: Opt = Opt::new("link_iface").default("");

pub(crate) const OPTS: &[Opt] = &[VETH_DST_PREFIX, DEFAULT_DRIVER, ENABLED_DRIVERS, LINK_IFACE];

/// Linux interface names are at most 15 bytes; Docker appends an index to
/// the prefix, so leave room for a few digits.
const MAX_DST_PREFIX_LEN: usize = 12;

impl BindingSection {
    pub(crate) fn load(src: &Sources) -> Result<Self, ConfigError> {
        let g = Group::new(src, SECTION);
        let veth_dst_prefix = g.parse(
            &VETH_DST_PREFIX,
            "an interface name prefix of 1 to 12 characters without '/', ':' or whitespace",
            |s| {
                let ok = s.len() <= MAX_DST_PREFIX_LEN
                    && !s.contains(|c: char| {
                        c == '/' || c == ':' || c.is_whitespace() || c.is_control()
                    });
                ok.then(|| s.to_string())
            },
        )?;
        Ok(BindingSection {
            veth_dst_prefix,
            default_driver: g.parse(&DEFAULT_DRIVER, &BindingDriverKind::expected(), |s| {
                s.parse().ok()
            })?,
            enabled_drivers: parse_each(&g, &ENABLED_DRIVERS, &BindingDriverKind::expected())?,
            link_iface: g
                .opt_string(&LINK_IFACE)?
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        })
    }
}
