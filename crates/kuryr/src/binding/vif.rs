//! Reading Neutron's `binding:vif_type` / `binding:vif_details`, and the
//! interface names derived from port and network IDs.
//!
//! The names are the ones kuryr-lib's scripts, Nova/os-vif and the Neutron
//! agents use, so that an agent recognises the devices: `qbr`, `qvb` and
//! `qvo` followed by `port_id[:11]` for the OVS hybrid plug, `brq` followed
//! by `network_id[:11]` for the linuxbridge agent.

use serde_json::{Map, Value};

/// Linux interface names are at most this long (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
/// How many characters of an ID go into a device name.
const ID_PREFIX_LEN: usize = 11;

/// `binding:vif_type`, as far as the veth binder is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VifType {
    /// Open vSwitch agent (hybrid or direct plug, see [`VifDetails`]).
    Ovs,
    /// Linuxbridge agent.
    Bridge,
    /// Leave the tap unplugged (something else handles it).
    Tap,
    /// Neutron did not bind the port: `unbound`, `binding_failed`, or empty.
    NotBound(String),
    /// Bound, but with a VIF type we cannot plug (`vhostuser`, `midonet`, ...).
    Unsupported(String),
}

impl VifType {
    /// Classify a `binding:vif_type` value.
    pub fn parse(s: &str) -> VifType {
        match s {
            "ovs" => VifType::Ovs,
            "bridge" => VifType::Bridge,
            "tap" => VifType::Tap,
            "" | "unbound" | "binding_failed" => VifType::NotBound(s.to_string()),
            other => VifType::Unsupported(other.to_string()),
        }
    }
}

/// The `binding:vif_details` keys the binder acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VifDetails {
    /// `ovs_hybrid_plug`: plug through a `qbr` Linux bridge (iptables
    /// firewall driver) instead of directly into the OVS bridge.
    pub ovs_hybrid_plug: bool,
    /// `datapath_type`: `system` (kernel) or `netdev` (userspace).
    pub datapath_type: Option<String>,
    /// `bridge_name`: the OVS bridge to plug into (trunk bridges, or a
    /// non-default integration bridge).
    pub bridge_name: Option<String>,
}

impl VifDetails {
    /// Read the keys we use; unknown keys and odd types are ignored.
    pub fn from_map(map: &Map<String, Value>) -> VifDetails {
        let string = |k: &str| match map.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        VifDetails {
            ovs_hybrid_plug: map.get("ovs_hybrid_plug").is_some_and(truthy),
            datapath_type: string("datapath_type"),
            bridge_name: string("bridge_name"),
        }
    }

    /// Userspace (DPDK/netdev) datapath: OVS reads frames with AF_PACKET
    /// and never fills in checksums the kernel left to "offload", so the
    /// container end must compute them itself.
    pub fn userspace_datapath(&self) -> bool {
        self.datapath_type.as_deref() == Some("netdev")
    }
}

/// Neutron sends JSON booleans; older plugins sent `"True"`.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn short_id(id: &str) -> &str {
    id.get(..ID_PREFIX_LEN).unwrap_or(id)
}

/// Host end of the veth: `tap` + `port_id[:11]`.
pub fn host_ifname(port_id: &str) -> String {
    format!("tap{}", short_id(port_id))
}

/// Container end of the veth: `t_c` + `port_id[:11]`.
pub fn container_ifname(port_id: &str) -> String {
    format!("t_c{}", short_id(port_id))
}

/// Hybrid plug Linux bridge: `qbr` + `port_id[:11]`.
pub fn hybrid_bridge_name(port_id: &str) -> String {
    format!("qbr{}", short_id(port_id))
}

/// Hybrid plug veth: (`qvb` + `port_id[:11]` on the Linux bridge,
/// `qvo` + `port_id[:11]` in OVS).
pub fn hybrid_veth_names(port_id: &str) -> (String, String) {
    let id = short_id(port_id);
    (format!("qvb{id}"), format!("qvo{id}"))
}

/// Bridge the linuxbridge agent uses for a network: `brq` + `net_id[:11]`.
pub fn linuxbridge_name(network_id: &str) -> String {
    format!("brq{}", short_id(network_id))
}

/// Why `name` cannot be a Linux interface name (the kernel's
/// `dev_valid_name`), or `None` if it can.
pub fn invalid_ifname(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > IFNAME_MAX {
        Some("is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is . or ..")
    } else if name.contains(['/', ':']) || name.chars().any(char::is_whitespace) {
        Some("contains '/', ':' or whitespace")
    } else {
        None
    }
}

/// Parse a MAC address (`fa:16:3e:..`, either case, or `-` separated).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for byte in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Lowercase `aa:bb:..` form, as OVS `attached-mac` and kuryr use.
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// IDs end up in interface names and OVS `external_ids`: accept only what
/// Neutron and Docker IDs are made of.
pub(crate) fn is_plain_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PORT: &str = "3f1e2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b";

    #[test]
    fn names() {
        assert_eq!(host_ifname(PORT), "tap3f1e2a4b-5c");
        assert_eq!(container_ifname(PORT), "t_c3f1e2a4b-5c");
        assert_eq!(hybrid_bridge_name(PORT), "qbr3f1e2a4b-5c");
        assert_eq!(
            hybrid_veth_names(PORT),
            ("qvb3f1e2a4b-5c".to_string(), "qvo3f1e2a4b-5c".to_string())
        );
        assert_eq!(linuxbridge_name(PORT), "brq3f1e2a4b-5c");
        for n in [
            host_ifname(PORT),
            container_ifname(PORT),
            hybrid_bridge_name(PORT),
            linuxbridge_name(PORT),
        ] {
            assert_eq!(n.len(), 14);
            assert_eq!(invalid_ifname(&n), None);
        }
        // Short IDs are used whole.
        assert_eq!(host_ifname("abc"), "tapabc");
    }

    #[test]
    fn ifname_validation() {
        assert!(invalid_ifname("").is_some());
        assert!(invalid_ifname("0123456789abcdef").is_some());
        assert!(invalid_ifname("0123456789abcde").is_none());
        assert!(invalid_ifname("a/b").is_some());
        assert!(invalid_ifname("a b").is_some());
        assert!(invalid_ifname("a:b").is_some());
        assert!(invalid_ifname("..").is_some());
    }

    #[test]
    fn vif_types() {
        assert_eq!(VifType::parse("ovs"), VifType::Ovs);
        assert_eq!(VifType::parse("bridge"), VifType::Bridge);
        assert_eq!(VifType::parse("tap"), VifType::Tap);
        for s in ["", "unbound", "binding_failed"] {
            assert_eq!(VifType::parse(s), VifType::NotBound(s.into()));
        }
        assert_eq!(
            VifType::parse("vhostuser"),
            VifType::Unsupported("vhostuser".into())
        );
    }

    #[test]
    fn vif_details() {
        let m = |v: serde_json::Value| v.as_object().unwrap().clone();
        let d = VifDetails::from_map(&m(json!({
            "port_filter": true,
            "ovs_hybrid_plug": true,
            "datapath_type": "netdev",
            "bridge_name": "tbr-1",
            "connectivity": "l2"
        })));
        assert!(d.ovs_hybrid_plug);
        assert!(d.userspace_datapath());
        assert_eq!(d.bridge_name.as_deref(), Some("tbr-1"));

        let d = VifDetails::from_map(&m(json!({
            "ovs_hybrid_plug": false,
            "datapath_type": "system",
            "bridge_name": ""
        })));
        assert_eq!(
            d,
            VifDetails {
                ovs_hybrid_plug: false,
                datapath_type: Some("system".into()),
                bridge_name: None
            }
        );
        assert!(!d.userspace_datapath());

        assert!(VifDetails::from_map(&m(json!({"ovs_hybrid_plug": "True"}))).ovs_hybrid_plug);
        assert!(!VifDetails::from_map(&m(json!({"ovs_hybrid_plug": 1}))).ovs_hybrid_plug);
        assert_eq!(VifDetails::from_map(&Map::new()), VifDetails::default());
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("FA:16:3E:0a:0B:ff"),
            Some([0xfa, 0x16, 0x3e, 0x0a, 0x0b, 0xff])
        );
        assert_eq!(
            parse_mac("fa-16-3e-00-00-01"),
            Some([0xfa, 0x16, 0x3e, 0, 0, 1])
        );
        assert_eq!(parse_mac("fa:16:3e:00:00"), None);
        assert_eq!(parse_mac("fa:16:3e:00:00:01:02"), None);
        assert_eq!(parse_mac("fa:16:3e:00:00:1"), None);
        assert_eq!(parse_mac("fa:16:3e:00:00:zz"), None);
        assert_eq!(parse_mac(""), None);
        assert_eq!(
            format_mac(&[0xfa, 0x16, 0x3e, 0x0a, 0x0b, 0xff]),
            "fa:16:3e:0a:0b:ff"
        );
    }

    #[test]
    fn plain_ids() {
        assert!(is_plain_id(PORT));
        assert!(is_plain_id("a1b2c3"));
        assert!(!is_plain_id(""));
        assert!(!is_plain_id("a b"));
        assert!(!is_plain_id("a\"b"));
        assert!(!is_plain_id("a=b"));
        assert!(!is_plain_id("--x,y"));
    }
}
