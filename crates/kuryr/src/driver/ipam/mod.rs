//! IpamDriver: Docker pools are Neutron subnet pools ([`pool`]),
//! addresses are ports ([`address`]).

mod address;
mod pool;
mod ready;

pub(in crate::driver) use ready::{ReadyPorts, is_ready_port, log_adopted};

use ipnet::IpNet;
use kuryr_openstack::neutron::Port;

use super::{DriverError, Result};
use crate::names;

/// `device_id` of the ports reserving `--aux-address` values, so `--ip`
/// never hands one to a container (an unclaimed IPAM port has none).
pub(in crate::driver) const AUX_DEVICE_ID: &str = "kuryr-aux-address";
/// Lock key serializing the making and deleting of `kuryrPool-<cidr>`
/// pools of one CIDR in this daemon.
pub(super) fn pool_lock_key(cidr: &IpNet) -> String {
    format!("ipam-pool:{cidr}")
}

/// Lock key serializing carves from one parent pool (`None`: the default
/// pool of the family).
pub(super) fn carve_lock_key(v6: bool, parent: Option<&str>) -> String {
    let family = if v6 { 6 } else { 4 };
    format!("ipam-carve:v{family}:{}", parent.unwrap_or(""))
}
/// Parse a boolean option the way oslo and kuryr-libnetwork accept them.
pub(in crate::driver) fn parse_bool_option(
    key: &str,
    value: Option<&String>,
) -> Result<Option<bool>> {
    match value.map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) => match v.as_str() {
            "true" | "yes" | "on" | "1" => Ok(Some(true)),
            "false" | "no" | "off" | "0" | "" => Ok(Some(false)),
            _ => Err(DriverError::Invalid(format!(
                "option {key}={v:?}: expected true or false"
            ))),
        },
    }
}

pub(super) fn family_matches(cidr: &IpNet, v6: bool) -> bool {
    matches!(cidr, IpNet::V6(_)) == v6
}

/// Is this a port kuryr made (as opposed to a user's port)?
pub(in crate::driver) fn is_kuryr_port(port: &Port) -> bool {
    !port.tags.iter().any(|t| t == names::PORT_EXISTING_TAG)
        && (port.tags.iter().any(|t| t == names::PORT_CREATED_TAG)
            || port.device_owner == names::DEVICE_OWNER
            || port.name == names::UNBOUND_PORT_NAME)
}

/// Does Neutron consider the port bound (so its MAC cannot change)?
pub(in crate::driver) fn is_bound(port: &Port) -> bool {
    !matches!(port.vif_type.as_str(), "" | "unbound" | "binding_failed")
}

/// Is a user's port already used by something?
pub(super) fn in_use(port: &Port) -> bool {
    !port.device_id.is_empty() || !port.device_owner.is_empty() || !port.host_id.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bool_options() {
        let t = "True".to_string();
        assert_eq!(parse_bool_option("k", Some(&t)).unwrap(), Some(true));
        assert_eq!(parse_bool_option("k", None).unwrap(), None);
        let bad = "maybe".to_string();
        let err = parse_bool_option("neutron.net.shared", Some(&bad)).unwrap_err();
        assert!(err.to_string().contains("neutron.net.shared"));
    }

    #[test]
    fn kuryr_ports_are_recognized() {
        let mut p = Port {
            name: names::UNBOUND_PORT_NAME.into(),
            ..Default::default()
        };
        assert!(is_kuryr_port(&p));
        p.tags.push(names::PORT_EXISTING_TAG.into());
        assert!(!is_kuryr_port(&p));
        let user = Port::default();
        assert!(!is_kuryr_port(&user) && !in_use(&user));
    }
}
