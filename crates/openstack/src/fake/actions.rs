//! Security group rules, trunks and their sub-ports, tags.

use serde_json::{Map, Value, json};

use super::resources::{obj, text};
use super::store::{Outcome, Refusal, Store};

pub(super) fn new_rule(store: &Store, id: &str, body: &Value) -> Outcome<Map<String, Value>> {
    let sg = text(body, "security_group_id");
    let group = store
        .get("security-groups", sg)
        .ok_or_else(|| Refusal::not_found("SecurityGroup", sg))?;
    let same = |r: &Value| {
        [
            "direction",
            "ethertype",
            "protocol",
            "port_range_min",
            "port_range_max",
            "remote_ip_prefix",
        ]
        .iter()
        .all(|k| r.get(*k).unwrap_or(&Value::Null) == body.get(*k).unwrap_or(&Value::Null))
    };
    if group["security_group_rules"]
        .as_array()
        .is_some_and(|rules| rules.iter().any(same))
    {
        return Err(Refusal::new(
            409,
            "SecurityGroupRuleExists",
            "Security group rule already exists.",
        ));
    }
    Ok(obj(
        json!({"id": id, "security_group_id": sg, "direction": "ingress", "ethertype": "IPv4"}),
    ))
}

pub(super) fn new_trunk(store: &Store, id: &str, body: &Value) -> Outcome<Map<String, Value>> {
    let port = text(body, "port_id");
    if store.get("ports", port).is_none() {
        return Err(Refusal::not_found("Port", port));
    }
    if store
        .all("trunks")
        .any(|t| text(&Value::Object(t.clone()), "port_id") == port)
    {
        return Err(Refusal::new(
            409,
            "TrunkPortInUse",
            format!("Port {port} is in use by another trunk."),
        ));
    }
    Ok(obj(
        json!({"id": id, "name": "", "port_id": port, "status": "ACTIVE", "admin_state_up": true, "sub_ports": []}),
    ))
}

pub(super) fn tags(
    store: &mut Store,
    coll: &str,
    id: &str,
    method: &str,
    rest: &[String],
    body: &Value,
) -> Outcome {
    let o = store
        .get_mut(coll, id)
        .ok_or_else(|| Refusal::not_found("Resource", id))?;
    let mut tags: Vec<String> = o["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let out = match (method, rest) {
        ("GET", []) => json!({ "tags": tags }),
        ("PUT", []) => {
            let new: Vec<String> = body["tags"]
                .as_array()
                .ok_or_else(|| Refusal::bad("tags must be a list"))?
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect();
            if new.iter().any(|t| t.len() > 255 || t.contains(',')) {
                return Err(Refusal::bad("Invalid tag"));
            }
            tags = new;
            json!({ "tags": tags })
        }
        ("PUT", [t]) => {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
            Value::Null
        }
        ("DELETE", [t]) => {
            let before = tags.len();
            tags.retain(|x| x != t);
            if tags.len() == before {
                return Err(Refusal::new(
                    404,
                    "TagNotFound",
                    format!("Tag {t} could not be found for {id}."),
                ));
            }
            Value::Null
        }
        ("DELETE", []) => {
            tags.clear();
            Value::Null
        }
        _ => return Err(Refusal::new(405, "HTTPMethodNotAllowed", method)),
    };
    o.insert("tags".into(), json!(tags));
    let rev = o
        .get("revision_number")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    o.insert("revision_number".into(), json!(rev + 1));
    Ok(out)
}

pub(super) fn trunk_action(
    store: &mut Store,
    id: &str,
    method: &str,
    action: &str,
    body: &Value,
) -> Outcome {
    let trunk = Value::Object(store.get("trunks", id).cloned().unwrap_or_default());
    let mut subs: Vec<Value> = trunk["sub_ports"].as_array().cloned().unwrap_or_default();
    match (method, action) {
        ("GET", "get_subports") => return Ok(json!({ "sub_ports": subs })),
        ("PUT", "add_subports") => {
            for sp in body["sub_ports"].as_array().into_iter().flatten() {
                let port = text(sp, "port_id");
                let p = store
                    .get("ports", port)
                    .ok_or_else(|| Refusal::not_found("Port", port))?;
                if !p["device_id"].as_str().unwrap_or_default().is_empty() {
                    return Err(Refusal::new(
                        409,
                        "PortInUse",
                        format!("Port {port} is in use"),
                    ));
                }
                let in_other = store.all("trunks").any(|t| {
                    t["sub_ports"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|x| x["port_id"] == port))
                });
                if in_other || subs.iter().any(|x| x["port_id"] == port) {
                    return Err(Refusal::new(
                        409,
                        "PortInUseAsSubPort",
                        format!("Port {port} is currently a subport."),
                    ));
                }
                if subs
                    .iter()
                    .any(|x| x["segmentation_id"] == sp["segmentation_id"])
                {
                    return Err(Refusal::new(
                        409,
                        "DuplicateSubPort",
                        format!(
                            "segmentation id {} is in use on trunk {id}",
                            sp["segmentation_id"]
                        ),
                    ));
                }
                subs.push(json!({"port_id": port, "segmentation_type": sp.get("segmentation_type").cloned().unwrap_or(json!("vlan")), "segmentation_id": sp["segmentation_id"]}));
            }
        }
        ("PUT", "remove_subports") => {
            for sp in body["sub_ports"].as_array().into_iter().flatten() {
                let port = text(sp, "port_id");
                let before = subs.len();
                subs.retain(|x| x["port_id"] != port);
                if subs.len() == before {
                    return Err(Refusal::new(
                        404,
                        "SubPortNotFound",
                        format!(
                            "SubPort on trunk {id} with parent port {port} could not be found."
                        ),
                    ));
                }
            }
        }
        _ => return Err(Refusal::new(404, "HTTPNotFound", action)),
    }
    let mut t = trunk.as_object().cloned().unwrap_or_default();
    t.insert("sub_ports".into(), json!(subs));
    let parent = text(&trunk, "port_id").to_string();
    if let Some(p) = store.get_mut("ports", &parent) {
        p.insert(
            "trunk_details".into(),
            json!({"trunk_id": id, "sub_ports": subs}),
        );
    }
    let out = Value::Object(t.clone());
    store.insert("trunks", t);
    Ok(out)
}
