//! Ports: fixed IPs from allocation pools, MACs, bindings and the rules
//! of a port update.

use serde_json::{Map, Value, json};

use super::addr;
use super::resources::{obj, text};
use super::store::{Outcome, Refusal, Store};
use super::subnets::subnet_cidr;

/// Addresses of a subnet already held by ports.
pub(super) fn used_ips(store: &Store, subnet: &str) -> Vec<u128> {
    store
        .all("ports")
        .flat_map(|p| p["fixed_ips"].as_array().cloned().unwrap_or_default())
        .filter(|f| text(f, "subnet_id") == subnet)
        .filter_map(|f| addr::parse_ip(text(&f, "ip_address")).map(|(n, _)| n))
        .collect()
}

/// One fixed IP of a port: the address asked for (free, in the subnet),
/// or the lowest free one of the subnet's allocation pools.
pub(super) fn allocate(store: &Store, net: &str, want: &Value, keep: &[u128]) -> Outcome<Value> {
    let ip = text(want, "ip_address");
    let subnet_id = text(want, "subnet_id");
    let subnet = if subnet_id.is_empty() {
        let (n, _) = addr::parse_ip(ip)
            .ok_or_else(|| Refusal::bad(format!("Invalid input: {ip:?} is not an IP")))?;
        store
            .all("subnets")
            .find(|s| {
                s.get("network_id").and_then(Value::as_str) == Some(net)
                    && subnet_cidr(s).is_some_and(|c| c.contains(n))
            })
            .ok_or_else(|| Refusal::bad(format!("IP {ip} is in no subnet of network {net}")))?
    } else {
        store
            .get("subnets", subnet_id)
            .ok_or_else(|| Refusal::not_found("Subnet", subnet_id))?
    };
    if subnet.get("network_id").and_then(Value::as_str) != Some(net) {
        return Err(Refusal::bad(format!(
            "subnet {subnet_id} is not on network {net}"
        )));
    }
    let sid = subnet["id"].as_str().unwrap_or_default().to_string();
    let cidr = subnet_cidr(subnet).ok_or_else(|| Refusal::bad("subnet without cidr"))?;
    let used: Vec<u128> = used_ips(store, &sid)
        .into_iter()
        .filter(|u| !keep.contains(u))
        .collect();
    if !ip.is_empty() {
        let (n, _) = addr::parse_ip(ip)
            .filter(|(n, _)| cidr.contains(*n))
            .ok_or_else(|| {
                Refusal::bad(format!(
                    "IP address {ip} is not a valid IP for the specified subnet."
                ))
            })?;
        if used.contains(&n) {
            return Err(Refusal::new(
                409,
                "IpAddressAlreadyAllocated",
                format!("IP address {ip} already allocated in subnet {sid}"),
            ));
        }
        return Ok(json!({"subnet_id": sid, "ip_address": addr::text(n, cidr.v6)}));
    }
    let gw = subnet["gateway_ip"]
        .as_str()
        .and_then(addr::parse_ip)
        .map(|(n, _)| n);
    for pool in subnet["allocation_pools"].as_array().into_iter().flatten() {
        let (Some((a, _)), Some((b, _))) = (
            addr::parse_ip(text(pool, "start")),
            addr::parse_ip(text(pool, "end")),
        ) else {
            continue;
        };
        if let Some(n) = (a..=b)
            .take(1 << 16)
            .find(|n| !used.contains(n) && Some(*n) != gw)
        {
            return Ok(json!({"subnet_id": sid, "ip_address": addr::text(n, cidr.v6)}));
        }
    }
    Err(Refusal::new(
        409,
        "IpAddressGenerationFailure",
        format!("No more IP addresses available on network {net}."),
    ))
}

/// The fixed IPs a port asks for (`None`: one from each IP version).
pub(super) fn fixed_ips(
    store: &Store,
    net: &str,
    asked: Option<&Value>,
    keep: &[Value],
) -> Outcome<Vec<Value>> {
    let wants: Vec<Value> = match asked.and_then(Value::as_array) {
        Some(a) => a.clone(),
        None => {
            let mut versions = Vec::new();
            store
                .all("subnets")
                .filter(|s| s.get("network_id").and_then(Value::as_str) == Some(net))
                .filter(|s| {
                    let v = s["ip_version"].as_u64();
                    let first = !versions.contains(&v);
                    versions.push(v);
                    first
                })
                .map(|s| json!({"subnet_id": s["id"]}))
                .collect()
        }
    };
    let kept: Vec<u128> = keep
        .iter()
        .filter_map(|f| addr::parse_ip(text(f, "ip_address")).map(|(n, _)| n))
        .collect();
    let mut out: Vec<Value> = Vec::new();
    for w in &wants {
        let f = allocate(store, net, w, &kept)?;
        if out.contains(&f) {
            return Err(Refusal::bad("the same fixed IP twice"));
        }
        if out.iter().any(|o| o["ip_address"] == f["ip_address"]) {
            return Err(Refusal::new(
                409,
                "IpAddressAlreadyAllocated",
                "allocated twice in one request",
            ));
        }
        out.push(f);
    }
    Ok(out)
}

pub(super) fn new_port(store: &mut Store, id: &str, body: &Value) -> Outcome<Map<String, Value>> {
    let net = text(body, "network_id");
    if store.get("networks", net).is_none() {
        return Err(Refusal::not_found("Network", net));
    }
    let ips = fixed_ips(store, net, body.get("fixed_ips"), &[])?;
    let mac = match body.get("mac_address").and_then(Value::as_str) {
        Some(m) => {
            check_mac_free(store, net, m, id)?;
            m.to_ascii_lowercase()
        }
        None => store.new_mac(),
    };
    Ok(obj(json!({
        "id": id, "name": "", "network_id": net, "mac_address": mac, "fixed_ips": ips,
        "device_id": "", "device_owner": "", "admin_state_up": true, "status": "DOWN",
        "security_groups": [], "allowed_address_pairs": [], "port_security_enabled": true,
        "binding:host_id": "", "binding:vnic_type": "normal", "binding:profile": {},
    })))
}

pub(super) fn check_mac_free(store: &Store, net: &str, mac: &str, except: &str) -> Outcome<()> {
    let taken = store.all("ports").any(|p| {
        p.get("network_id").and_then(Value::as_str) == Some(net)
            && p["id"] != except
            && p.get("mac_address")
                .and_then(Value::as_str)
                .is_some_and(|m| m.eq_ignore_ascii_case(mac))
    });
    if taken {
        return Err(Refusal::new(
            409,
            "MacAddressInUse",
            format!(
                "Unable to complete operation for network {net}. The mac address {mac} is in use."
            ),
        ));
    }
    Ok(())
}

/// A port's binding and status from its host: bound to a host means the
/// OVS mechanism driver bound it, ACTIVE when an agent plugs it.
pub(super) fn bind(p: &mut Map<String, Value>, agent: bool) {
    let host = p
        .get("binding:host_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let bound = !host.is_empty();
    p.insert(
        "binding:vif_type".into(),
        json!(if bound { "ovs" } else { "unbound" }),
    );
    p.insert(
        "binding:vif_details".into(),
        if bound {
            json!({"port_filter": true, "ovs_hybrid_plug": false, "datapath_type": "system"})
        } else {
            json!({})
        },
    );
    let up = p
        .get("admin_state_up")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    p.insert(
        "status".into(),
        json!(if bound && up && agent {
            "ACTIVE"
        } else {
            "DOWN"
        }),
    );
}

pub(super) fn update_port(
    store: &Store,
    current: &Value,
    next: &mut Map<String, Value>,
    fields: &Map<String, Value>,
) -> Outcome<()> {
    let net = text(current, "network_id");
    if let Some(mac) = fields.get("mac_address").and_then(Value::as_str)
        && !mac.eq_ignore_ascii_case(text(current, "mac_address"))
    {
        let vif = text(current, "binding:vif_type");
        if !matches!(vif, "" | "unbound" | "binding_failed") {
            return Err(Refusal::new(
                409,
                "PortBound",
                "Unable to complete operation on port: the port is bound",
            ));
        }
        check_mac_free(store, net, mac, text(current, "id"))?;
    }
    if let Some(asked) = fields.get("fixed_ips") {
        let keep = current["fixed_ips"].as_array().cloned().unwrap_or_default();
        next.insert(
            "fixed_ips".into(),
            json!(fixed_ips(store, net, Some(asked), &keep)?),
        );
    }
    for sg in fields
        .get("security_groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let sg = sg.as_str().unwrap_or_default();
        if store.get("security-groups", sg).is_none() {
            return Err(Refusal::not_found("SecurityGroup", sg));
        }
    }
    if fields.contains_key("allowed_address_pairs")
        && current["port_security_enabled"] == json!(false)
    {
        return Err(Refusal::bad(
            "Port Security must be enabled in order to have allowed address pairs on a port.",
        ));
    }
    Ok(())
}
