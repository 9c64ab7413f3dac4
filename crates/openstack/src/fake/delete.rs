//! Deletes, with Neutron's "in use" refusals.

use serde_json::Value;

use super::store::{Outcome, Refusal, Store};

fn in_use(kind: &str, message: String) -> Outcome<()> {
    Err(Refusal::new(409, kind, message))
}

/// IDs of the objects of `coll` whose `key` is `id`.
fn ids_where(store: &Store, coll: &str, key: &str, id: &str) -> Vec<String> {
    store
        .all(coll)
        .filter(|o| o[key] == id)
        .filter_map(|o| o["id"].as_str().map(str::to_string))
        .collect()
}

pub(super) fn delete(store: &mut Store, coll: &str, id: &str) -> Outcome<()> {
    match coll {
        "networks" => delete_network(store, id)?,
        "subnets" => delete_subnet(store, id)?,
        "subnetpools" if store.all("subnets").any(|s| s["subnetpool_id"] == id) => {
            return Err(Refusal::new(
                400,
                "SubnetPoolDeleteError",
                format!(
                    "Unable to delete subnet pool: Subnet pool {id} has subnets allocated from it."
                ),
            ));
        }
        "ports" => delete_port(store, id)?,
        "security-groups" => delete_security_group(store, id)?,
        "trunks" => {
            let port = store
                .get("trunks", id)
                .map(|t| t["port_id"].clone())
                .unwrap_or_default();
            if let Some(p) = store.get_mut("ports", port.as_str().unwrap_or_default()) {
                p.remove("trunk_details");
            }
        }
        _ => {}
    }
    store.remove(coll, id);
    Ok(())
}

/// Refused while a port other than Neutron's own (`network:*`) is on it;
/// its subnets and Neutron's ports go with it.
fn delete_network(store: &mut Store, id: &str) -> Outcome<()> {
    let used = store.all("ports").any(|p| {
        p["network_id"] == id
            && !p["device_owner"]
                .as_str()
                .unwrap_or_default()
                .starts_with("network:")
    });
    if used {
        return in_use(
            "NetworkInUse",
            format!(
                "Unable to complete operation on network {id}. There are one or more ports still in use on the network."
            ),
        );
    }
    for port in ids_where(store, "ports", "network_id", id) {
        store.remove("ports", &port);
    }
    for subnet in ids_where(store, "subnets", "network_id", id) {
        store.remove("subnets", &subnet);
    }
    Ok(())
}

/// Refused while a port holds an address of it.
fn delete_subnet(store: &mut Store, id: &str) -> Outcome<()> {
    let used = store.all("ports").any(|p| {
        p["fixed_ips"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f["subnet_id"] == id))
    });
    if used {
        return in_use(
            "SubnetInUse",
            format!(
                "Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."
            ),
        );
    }
    let net = store
        .get("subnets", id)
        .map(|s| s["network_id"].clone())
        .unwrap_or_default();
    if let Some(Value::Array(a)) = store
        .get_mut("networks", net.as_str().unwrap_or_default())
        .and_then(|n| n.get_mut("subnets"))
    {
        a.retain(|s| s != id);
    }
    Ok(())
}

/// Refused for a trunk's parent or one of its sub-ports.
fn delete_port(store: &Store, id: &str) -> Outcome<()> {
    if store.all("trunks").any(|t| t["port_id"] == id) {
        return in_use(
            "PortInUseAsTrunkParent",
            format!("Port {id} is currently a parent port for trunk."),
        );
    }
    let subport = store.all("trunks").any(|t| {
        t["sub_ports"]
            .as_array()
            .is_some_and(|s| s.iter().any(|sp| sp["port_id"] == id))
    });
    if subport {
        return in_use(
            "PortInUseAsSubPort",
            format!("Port {id} is currently a subport."),
        );
    }
    Ok(())
}

/// Refused while a port uses it; its rules go with it.
fn delete_security_group(store: &mut Store, id: &str) -> Outcome<()> {
    let used = store.all("ports").any(|p| {
        p["security_groups"]
            .as_array()
            .is_some_and(|a| a.iter().any(|g| g == id))
    });
    if used {
        return in_use("SecurityGroupInUse", format!("Security Group {id} in use."));
    }
    for rule in ids_where(store, "security-group-rules", "security_group_id", id) {
        store.remove("security-group-rules", &rule);
    }
    Ok(())
}
