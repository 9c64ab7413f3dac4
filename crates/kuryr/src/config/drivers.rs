//! Port drivers and binding drivers, named as kuryr-libnetwork and kuryr-lib
//! name them, and which of them work together.

use std::fmt;
use std::str::FromStr;

/// How a container's Neutron port reaches the host network
/// (`kuryr_libnetwork.port_driver.drivers.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortDriverKind {
    /// Bare-metal hosts: a veth pair plugged into the local switch.
    Veth,
    /// Containers inside a Nova VM: macvlan/ipvlan on the VM's NIC, with the
    /// container addresses added to the VM port's allowed address pairs.
    Nested,
    /// Containers inside a Nova VM: one VLAN sub-interface per container on
    /// a Neutron trunk.
    Vlan,
    /// SR-IOV virtual functions (`vnic_type direct`).
    Sriov,
}

impl PortDriverKind {
    pub const ALL: [PortDriverKind; 4] = [
        PortDriverKind::Veth,
        PortDriverKind::Nested,
        PortDriverKind::Vlan,
        PortDriverKind::Sriov,
    ];

    /// Python package holding the port drivers.
    pub const MODULE_PREFIX: &'static str = "kuryr_libnetwork.port_driver.drivers.";

    /// The short name (`veth`, `nested`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            PortDriverKind::Veth => "veth",
            PortDriverKind::Nested => "nested",
            PortDriverKind::Vlan => "vlan",
            PortDriverKind::Sriov => "sriov",
        }
    }

    /// The full Python module path, as kuryr-libnetwork's defaults spell it.
    pub fn module_path(self) -> String {
        format!("{}{}", Self::MODULE_PREFIX, self.as_str())
    }

    /// Binding drivers this port driver can work with
    /// (`get_supported_bindings()` in kuryr-libnetwork).
    pub fn supported_bindings(self) -> &'static [BindingDriverKind] {
        match self {
            PortDriverKind::Veth => &[BindingDriverKind::Veth],
            PortDriverKind::Nested => &[BindingDriverKind::Macvlan, BindingDriverKind::Ipvlan],
            PortDriverKind::Vlan => &[BindingDriverKind::Vlan],
            PortDriverKind::Sriov => &[BindingDriverKind::HwVeb],
        }
    }

    /// Whether the driver binds with `[binding] default_driver`. The SR-IOV
    /// driver always asks for `hw_veb` instead.
    pub fn uses_default_binding(self) -> bool {
        self != PortDriverKind::Sriov
    }

    pub(crate) fn expected() -> String {
        format!(
            "one of {}, optionally as {}<name>",
            names(Self::ALL.iter().map(|d| d.as_str())),
            Self::MODULE_PREFIX
        )
    }
}

impl FromStr for PortDriverKind {
    type Err = String;

    /// Accepts the short name or the module path, as
    /// `_parse_port_driver_config` does.
    fn from_str(s: &str) -> Result<Self, String> {
        parse_name(s, Self::MODULE_PREFIX, &Self::ALL, |d| d.as_str()).ok_or_else(Self::expected)
    }
}

impl fmt::Display for PortDriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the host side of a port is created (`kuryr.lib.binding.drivers.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BindingDriverKind {
    Veth,
    Macvlan,
    Ipvlan,
    Vlan,
    /// SR-IOV "hardware virtual Ethernet bridge": the VF itself.
    HwVeb,
}

impl BindingDriverKind {
    pub const ALL: [BindingDriverKind; 5] = [
        BindingDriverKind::Veth,
        BindingDriverKind::Macvlan,
        BindingDriverKind::Ipvlan,
        BindingDriverKind::Vlan,
        BindingDriverKind::HwVeb,
    ];

    /// Python package holding the binding drivers.
    pub const MODULE_PREFIX: &'static str = "kuryr.lib.binding.drivers.";

    pub fn as_str(self) -> &'static str {
        match self {
            BindingDriverKind::Veth => "veth",
            BindingDriverKind::Macvlan => "macvlan",
            BindingDriverKind::Ipvlan => "ipvlan",
            BindingDriverKind::Vlan => "vlan",
            BindingDriverKind::HwVeb => "hw_veb",
        }
    }

    /// The full Python module path, the form kuryr-lib requires.
    pub fn module_path(self) -> String {
        format!("{}{}", Self::MODULE_PREFIX, self.as_str())
    }

    pub(crate) fn expected() -> String {
        format!(
            "one of {}, optionally as {}<name>",
            names(Self::ALL.iter().map(|d| d.as_str())),
            Self::MODULE_PREFIX
        )
    }
}

impl FromStr for BindingDriverKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_name(s, Self::MODULE_PREFIX, &Self::ALL, |d| d.as_str()).ok_or_else(Self::expected)
    }
}

impl fmt::Display for BindingDriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn parse_name<T: Copy>(
    s: &str,
    prefix: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Option<T> {
    let s = s.trim().to_ascii_lowercase();
    let short = s.strip_prefix(prefix).unwrap_or(&s);
    all.iter().copied().find(|d| name(*d) == short)
}

pub(crate) fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_full_names() {
        assert_eq!("veth".parse(), Ok(PortDriverKind::Veth));
        assert_eq!(
            "kuryr_libnetwork.port_driver.drivers.nested".parse(),
            Ok(PortDriverKind::Nested)
        );
        assert_eq!(" SRIOV ".parse(), Ok(PortDriverKind::Sriov));
        assert!(
            "kuryr.lib.binding.drivers.veth"
                .parse::<PortDriverKind>()
                .is_err()
        );
        assert!("".parse::<PortDriverKind>().is_err());
        assert_eq!(
            "kuryr.lib.binding.drivers.hw_veb".parse(),
            Ok(BindingDriverKind::HwVeb)
        );
        assert_eq!("macvlan".parse(), Ok(BindingDriverKind::Macvlan));
        assert!("nested".parse::<BindingDriverKind>().is_err());
        for d in PortDriverKind::ALL {
            assert_eq!(d.module_path().parse(), Ok(d));
        }
        for d in BindingDriverKind::ALL {
            assert_eq!(d.module_path().parse(), Ok(d));
        }
    }

    #[test]
    fn unknown_names_list_the_choices() {
        let err = "ovs".parse::<PortDriverKind>().expect_err("unknown");
        assert!(err.contains("veth, nested, vlan, sriov"), "{err}");
    }
}
