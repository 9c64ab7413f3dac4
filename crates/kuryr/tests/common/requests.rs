//! Request bodies exactly as dockerd 20.10 sends them, one builder per
//! call shape.

use serde_json::{Value, json};

use super::env::docker_id;

pub const ADDRESS_SPACE: &str = "no_address_space";

pub fn sandbox_key() -> String {
    format!("/var/run/docker/netns/{}", &docker_id()[..12])
}

/// `IpamDriver.RequestPool`: `--subnet`, `--ip-range`, `--ipam-opt`.
pub fn request_pool(pool: &str, sub_pool: &str, v6: bool, options: Value) -> Value {
    json!({"AddressSpace": ADDRESS_SPACE, "Pool": pool, "SubPool": sub_pool,
           "Options": options, "V6": v6})
}

/// The gateway `IpamDriver.RequestAddress` (`--gateway` or none).
pub fn request_gateway(pool_id: &str, address: &str) -> Value {
    json!({"PoolID": pool_id, "Address": address,
           "Options": {"RequestAddressType": "com.docker.network.gateway"}})
}

/// A container's (or an aux address's) `IpamDriver.RequestAddress`.
pub fn request_address(pool_id: &str, address: &str) -> Value {
    json!({"PoolID": pool_id, "Address": address, "Options": null})
}

pub fn release_address(pool_id: &str, address: &str) -> Value {
    json!({"PoolID": pool_id, "Address": address})
}

pub fn release_pool(pool_id: &str) -> Value {
    json!({"PoolID": pool_id})
}

/// One element of `IPv4Data`/`IPv6Data`; `gateway` is a CIDR with host bits.
pub fn ipam_data(pool: &str, gateway: &str) -> Value {
    json!({"AddressSpace": ADDRESS_SPACE, "Pool": pool, "Gateway": gateway})
}

pub fn create_network(nid: &str, generic: Value, v4: Vec<Value>, v6: Vec<Value>) -> Value {
    json!({"NetworkID": nid,
           "Options": {"com.docker.network.enable_ipv6": !v6.is_empty(),
                       "com.docker.network.generic": generic},
           "IPv4Data": v4, "IPv6Data": v6})
}

pub fn network(nid: &str) -> Value {
    json!({"NetworkID": nid})
}

fn sandbox_labels(exposed: Value) -> Value {
    json!({"com.docker.network.endpoint.exposedports": exposed,
           "com.docker.network.portmap": []})
}

pub fn create_endpoint(nid: &str, eid: &str, address: &str, address6: &str) -> Value {
    json!({"NetworkID": nid, "EndpointID": eid,
           "Interface": {"Address": address, "AddressIPv6": address6, "MacAddress": ""},
           "Options": sandbox_labels(json!([]))})
}

pub fn join(nid: &str, eid: &str) -> Value {
    json!({"NetworkID": nid, "EndpointID": eid, "SandboxKey": sandbox_key(),
           "Options": sandbox_labels(json!([]))})
}

pub fn program(nid: &str, eid: &str, exposed: Value) -> Value {
    json!({"NetworkID": nid, "EndpointID": eid, "Options": sandbox_labels(exposed)})
}

/// Leave, DeleteEndpoint, EndpointOperInfo, RevokeExternalConnectivity.
pub fn endpoint(nid: &str, eid: &str) -> Value {
    json!({"NetworkID": nid, "EndpointID": eid})
}
