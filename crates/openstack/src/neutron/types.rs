//! Neutron v2.0 resources, as read and as created.
//!
//! Reads tolerate missing and unknown fields (deployments differ in their
//! extensions); creates and updates send only the fields that are set.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Neutron sends some integers as strings depending on the release.
fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    })
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A Neutron network.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Network {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub admin_state_up: bool,
    #[serde(default)]
    pub shared: bool,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub mtu: Option<u32>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub subnets: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub port_security_enabled: Option<bool>,
    #[serde(rename = "router:external", default)]
    pub router_external: bool,
    #[serde(rename = "provider:network_type", default)]
    pub network_type: Option<String>,
    #[serde(rename = "provider:physical_network", default)]
    pub physical_network: Option<String>,
    #[serde(
        rename = "provider:segmentation_id",
        default,
        deserialize_with = "lenient_u32"
    )]
    pub segmentation_id: Option<u32>,
    /// Free text; kuryr marks what it makes with the Docker ID.
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    /// When Neutron made it (RFC 3339), for grace periods.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Bumped by Neutron on every change; `If-Match` compares it.
    #[serde(default)]
    pub revision_number: Option<u64>,
}

/// Body of `POST /v2.0/networks`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NetworkCreate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_security_enabled: Option<bool>,
    #[serde(
        rename = "provider:network_type",
        skip_serializing_if = "Option::is_none"
    )]
    pub network_type: Option<String>,
    #[serde(
        rename = "provider:physical_network",
        skip_serializing_if = "Option::is_none"
    )]
    pub physical_network: Option<String>,
    #[serde(
        rename = "provider:segmentation_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub segmentation_id: Option<u32>,
    /// Any other attribute an extension adds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Only where Neutron has `tag-creation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A host route of a subnet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct HostRoute {
    pub destination: String,
    pub nexthop: String,
}

/// An allocation pool of a subnet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct AllocationPool {
    pub start: String,
    pub end: String,
}

/// A Neutron subnet.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Subnet {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    pub network_id: String,
    pub ip_version: u8,
    pub cidr: String,
    #[serde(default)]
    pub gateway_ip: Option<String>,
    #[serde(default)]
    pub subnetpool_id: Option<String>,
    #[serde(default)]
    pub enable_dhcp: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub host_routes: Vec<HostRoute>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub dns_nameservers: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub allocation_pools: Vec<AllocationPool>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub ipv6_ra_mode: Option<String>,
    #[serde(default)]
    pub ipv6_address_mode: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    /// Free text; kuryr marks what it makes with the Docker ID.
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    /// When Neutron made it (RFC 3339), for grace periods.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Bumped by Neutron on every change; `If-Match` compares it.
    #[serde(default)]
    pub revision_number: Option<u64>,
}

/// Body of `POST /v2.0/subnets`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SubnetCreate {
    pub network_id: String,
    pub ip_version: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Omit to let `subnetpool_id` + `prefixlen` pick one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefixlen: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnetpool_id: Option<String>,
    /// `Some(None)` sends `"gateway_ip": null` (no gateway).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_ip: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_dhcp: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocation_pools: Option<Vec<AllocationPool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_routes: Option<Vec<HostRoute>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_nameservers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_ra_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Only where Neutron has `tag-creation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A Neutron subnet pool.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct SubnetPool {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub prefixes: Vec<String>,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub default_prefixlen: Option<u32>,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub min_prefixlen: Option<u32>,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub max_prefixlen: Option<u32>,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub ip_version: Option<u32>,
    #[serde(default)]
    pub shared: bool,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    /// When Neutron made it (RFC 3339), for grace periods.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Bumped by Neutron on every change; `If-Match` compares it.
    #[serde(default)]
    pub revision_number: Option<u64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
}

/// Body of `POST /v2.0/subnetpools`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SubnetPoolCreate {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub prefixes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_prefixlen: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_prefixlen: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_prefixlen: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A fixed IP of a port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct FixedIp {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip_address: String,
}

/// An allowed address pair of a port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct AddressPair {
    pub ip_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
}

/// Subports of a trunk parent, as shown on the parent port.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct TrunkDetails {
    pub trunk_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sub_ports: Vec<SubPort>,
}

/// A Neutron port.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Port {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    pub network_id: String,
    #[serde(default)]
    pub mac_address: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub fixed_ips: Vec<FixedIp>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub device_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub device_owner: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub admin_state_up: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub security_groups: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub allowed_address_pairs: Vec<AddressPair>,
    #[serde(default)]
    pub port_security_enabled: Option<bool>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(
        rename = "binding:host_id",
        default,
        deserialize_with = "null_as_default"
    )]
    pub host_id: String,
    #[serde(
        rename = "binding:vif_type",
        default,
        deserialize_with = "null_as_default"
    )]
    pub vif_type: String,
    #[serde(
        rename = "binding:vnic_type",
        default,
        deserialize_with = "null_as_default"
    )]
    pub vnic_type: String,
    #[serde(
        rename = "binding:vif_details",
        default,
        deserialize_with = "null_as_default"
    )]
    pub vif_details: Map<String, Value>,
    #[serde(
        rename = "binding:profile",
        default,
        deserialize_with = "null_as_default"
    )]
    pub binding_profile: Map<String, Value>,
    #[serde(default)]
    pub trunk_details: Option<TrunkDetails>,
    /// Free text; kuryr marks what it makes with the Docker ID.
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    /// When Neutron made it (RFC 3339), for grace periods.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Bumped by Neutron on every change; `If-Match` compares it.
    #[serde(default)]
    pub revision_number: Option<u64>,
}

impl Port {
    /// The fixed IPs of one subnet.
    pub fn ips_in(&self, subnet_id: &str) -> impl Iterator<Item = &str> {
        self.fixed_ips
            .iter()
            .filter(move |f| f.subnet_id == subnet_id)
            .map(|f| f.ip_address.as_str())
    }
}

/// Body of `POST /v2.0/ports`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PortCreate {
    pub network_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_ips: Option<Vec<FixedIp>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_address_pairs: Option<Vec<AddressPair>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_security_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(rename = "binding:host_id", skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    #[serde(rename = "binding:vnic_type", skip_serializing_if = "Option::is_none")]
    pub vnic_type: Option<String>,
    #[serde(rename = "binding:profile", skip_serializing_if = "Option::is_none")]
    pub binding_profile: Option<Map<String, Value>>,
    /// Only where Neutron has `tag-ports-during-bulk-creation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `PUT /v2.0/ports/{id}`: only what is set changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PortUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_ips: Option<Vec<FixedIp>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_address_pairs: Option<Vec<AddressPair>>,
    #[serde(rename = "binding:host_id", skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    #[serde(rename = "binding:profile", skip_serializing_if = "Option::is_none")]
    pub binding_profile: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PortUpdate {
    /// Nothing to change: the call can be skipped.
    pub fn is_empty(&self) -> bool {
        *self == PortUpdate::default()
    }
}

/// A security group rule.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct SecurityGroupRule {
    pub id: String,
    pub security_group_id: String,
    pub direction: String,
    #[serde(default)]
    pub ethertype: String,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub port_range_min: Option<u32>,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub port_range_max: Option<u32>,
    #[serde(default)]
    pub remote_ip_prefix: Option<String>,
    #[serde(default)]
    pub remote_group_id: Option<String>,
}

/// Body of `POST /v2.0/security-group-rules`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecurityGroupRuleCreate {
    pub security_group_id: String,
    pub direction: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ethertype: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_range_min: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_range_max: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_ip_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A security group.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct SecurityGroup {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub security_group_rules: Vec<SecurityGroupRule>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub project_id: Option<String>,
}

/// Body of `POST /v2.0/security-groups`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecurityGroupCreate {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

/// A trunk subport.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SubPort {
    pub port_id: String,
    #[serde(default = "vlan")]
    pub segmentation_type: String,
    pub segmentation_id: u32,
}

fn vlan() -> String {
    "vlan".into()
}

/// A trunk (VLAN-aware VM port).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Trunk {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    pub port_id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub admin_state_up: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sub_ports: Vec<SubPort>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub project_id: Option<String>,
}

/// Body of `POST /v2.0/trunks`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrunkCreate {
    pub port_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_ports: Option<Vec<SubPort>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

/// A Neutron API extension.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Extension {
    pub alias: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// A Neutron agent (`GET /v2.0/agents`), for health checks.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Agent {
    pub id: String,
    pub agent_type: String,
    pub host: String,
    #[serde(default)]
    pub alive: bool,
    #[serde(default)]
    pub admin_state_up: bool,
    #[serde(default)]
    pub binary: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub configurations: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn port_reads_binding_fields_and_nulls() {
        let p: Port = serde_json::from_value(json!({
            "id": "p1", "name": null, "network_id": "n1", "mac_address": "fa:16:3e:00:00:01",
            "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}],
            "device_id": "", "device_owner": "compute:kuryr", "status": "DOWN",
            "tags": null, "binding:host_id": "vm", "binding:vif_type": "ovs",
            "binding:vif_details": {"datapath_type": "netdev", "ovs_hybrid_plug": false},
            "allowed_address_pairs": [], "unknown_future_field": 1
        }))
        .unwrap();
        assert_eq!(p.host_id, "vm");
        assert_eq!(p.vif_details["datapath_type"], "netdev");
        assert!(p.tags.is_empty() && p.name.is_empty());
        assert_eq!(p.ips_in("s1").collect::<Vec<_>>(), vec!["10.0.0.5"]);
    }

    #[test]
    fn subnetpool_prefixlen_may_be_string() {
        let sp: SubnetPool = serde_json::from_value(json!({
            "id": "x", "name": "kuryr", "prefixes": ["10.10.0.0/16"],
            "default_prefixlen": "24", "min_prefixlen": 8, "ip_version": 4
        }))
        .unwrap();
        assert_eq!(sp.default_prefixlen, Some(24));
        assert_eq!(sp.min_prefixlen, Some(8));
    }

    #[test]
    fn creates_send_only_what_is_set() {
        let body = serde_json::to_value(SubnetCreate {
            network_id: "n".into(),
            ip_version: 4,
            cidr: Some("10.0.0.0/24".into()),
            gateway_ip: Some(None),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"network_id": "n", "ip_version": 4, "cidr": "10.0.0.0/24", "gateway_ip": null})
        );
        let upd = PortUpdate {
            host_id: Some("h".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&upd).unwrap(),
            json!({"binding:host_id": "h"})
        );
        assert!(PortUpdate::default().is_empty());
    }
}
