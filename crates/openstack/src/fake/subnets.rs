//! Subnet pools and subnets: prefixes, CIDRs allocated from a pool
//! without overlap, default gateways and allocation pools.

use serde_json::{Map, Value, json};

use super::addr::{self, Cidr};
use super::resources::{obj, text};
use super::store::{Outcome, Refusal, Store};

pub(super) fn new_pool(id: &str, body: &Value) -> Outcome<Map<String, Value>> {
    let prefixes: Vec<Cidr> = body["prefixes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(Cidr::parse)
                .collect()
        })
        .unwrap_or_default();
    let Some(first) = prefixes.first() else {
        return Err(Refusal::bad("a subnet pool needs prefixes"));
    };
    Ok(obj(json!({
        "id": id, "name": "", "shared": false, "is_default": false,
        "ip_version": if first.v6 { 6 } else { 4 },
        "prefixes": prefixes.iter().map(|c| c.to_text()).collect::<Vec<_>>(),
        "default_prefixlen": body.get("default_prefixlen").cloned().unwrap_or(json!(first.prefix_len)),
        "min_prefixlen": first.prefix_len, "max_prefixlen": if first.v6 { 128 } else { 32 },
    })))
}

pub(super) fn pool_prefixes(pool: &Map<String, Value>) -> Vec<Cidr> {
    pool["prefixes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(Cidr::parse)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn subnet_cidr(s: &Map<String, Value>) -> Option<Cidr> {
    Cidr::parse(s.get("cidr")?.as_str()?)
}

/// The CIDR of a new subnet: the one asked for, checked against its pool,
/// or the first free block of the pool.
pub(super) fn choose_cidr(store: &Store, body: &Value, v6: bool) -> Outcome<Cidr> {
    let pool_id = text(body, "subnetpool_id");
    let asked = body.get("cidr").and_then(Value::as_str);
    if pool_id.is_empty() {
        let s = asked.ok_or_else(|| Refusal::bad("a subnet needs a cidr or a subnetpool_id"))?;
        return Cidr::parse(s)
            .ok_or_else(|| Refusal::bad(format!("Invalid input: {s} is not a valid CIDR")));
    }
    let pool = store
        .get("subnetpools", pool_id)
        .ok_or_else(|| Refusal::not_found("SubnetPool", pool_id))?;
    let taken: Vec<Cidr> = store
        .all("subnets")
        .filter(|s| s.get("subnetpool_id").and_then(Value::as_str) == Some(pool_id))
        .filter_map(subnet_cidr)
        .collect();
    let prefixes = pool_prefixes(pool);
    if let Some(s) = asked {
        let c = Cidr::parse(s)
            .ok_or_else(|| Refusal::bad(format!("Invalid input: {s} is not a valid CIDR")))?;
        if !prefixes
            .iter()
            .any(|p| p.contains(c.first) && p.contains(c.last))
        {
            return Err(Refusal::bad(format!(
                "Cidr {s} is not in the prefixes of subnet pool {pool_id}"
            )));
        }
        if taken.iter().any(|t| t.overlaps(&c)) {
            return Err(Refusal::new(
                500,
                "SubnetAllocationError",
                format!("Failed to allocate subnet: {s} overlaps"),
            ));
        }
        return Ok(c);
    }
    let len = body["prefixlen"]
        .as_u64()
        .or_else(|| pool["default_prefixlen"].as_u64())
        .unwrap_or(if v6 { 64 } else { 24 }) as u8;
    prefixes
        .iter()
        .flat_map(|p| p.blocks(len, 65_536))
        .find(|b| !taken.iter().any(|t| t.overlaps(b)))
        .ok_or_else(|| {
            Refusal::new(
                409,
                "SubnetAllocationError",
                "no free prefix left in the pool",
            )
        })
}

pub(super) fn new_subnet(store: &Store, id: &str, body: &Value) -> Outcome<Map<String, Value>> {
    let net = text(body, "network_id");
    if store.get("networks", net).is_none() {
        return Err(Refusal::not_found("Network", net));
    }
    let v6 = body["ip_version"].as_u64() == Some(6);
    let cidr = choose_cidr(store, body, v6)?;
    if cidr.v6 != v6 {
        return Err(Refusal::bad("ip_version does not match the cidr"));
    }
    let overlapping = store
        .all("subnets")
        .filter(|s| s.get("network_id").and_then(Value::as_str) == Some(net))
        .filter_map(subnet_cidr)
        .any(|c| c.overlaps(&cidr));
    if overlapping {
        return Err(Refusal::bad(format!(
            "Invalid input for operation: Requested subnet with cidr: {} for network: {net} overlaps with another subnet.",
            cidr.to_text()
        )));
    }
    let gateway = match body.get("gateway_ip") {
        None => json!(addr::text(cidr.first_host(), v6)),
        Some(g) => g.clone(),
    };
    let gw = gateway.as_str().and_then(addr::parse_ip).map(|(n, _)| n);
    let pools = match body.get("allocation_pools") {
        Some(p) => p.clone(),
        None => default_pools(&cidr, gw),
    };
    Ok(obj(json!({
        "id": id, "name": "", "network_id": net, "ip_version": if v6 { 6 } else { 4 },
        "cidr": cidr.to_text(), "gateway_ip": gateway, "enable_dhcp": true,
        "subnetpool_id": body.get("subnetpool_id").cloned().unwrap_or(Value::Null),
        "host_routes": [], "dns_nameservers": [], "allocation_pools": pools,
    })))
}

pub(super) fn default_pools(c: &Cidr, gateway: Option<u128>) -> Value {
    let (a, b) = (c.first_host(), c.last_host());
    let range =
        |x: u128, y: u128| json!({"start": addr::text(x, c.v6), "end": addr::text(y, c.v6)});
    match gateway.filter(|g| (a..=b).contains(g)) {
        Some(g) if g == a => json!([range(a + 1, b)]),
        Some(g) if g == b => json!([range(a, b - 1)]),
        Some(g) => json!([range(a, g - 1), range(g + 1, b)]),
        None => json!([range(a, b)]),
    }
}
