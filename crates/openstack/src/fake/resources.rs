//! What each write means to the fake: defaults and checks per collection,
//! tags, trunk sub-ports. Neutron's rules are followed where the driver
//! depends on them; see the module doc of [`super`].

use serde_json::{Map, Value, json};

use super::PROJECT;
use super::actions::{new_rule, new_trunk, tags, trunk_action};
use super::delete::delete;
use super::ports::{bind, new_port, update_port};
use super::store::{Outcome, Refusal, Store, collection};
use super::subnets::{new_pool, new_subnet};

/// (`network`, `networks`): the body key of one object and of a list.
pub fn keys(coll: &str) -> Option<(&'static str, &'static str)> {
    let (c, one, _) = collection(coll)?;
    Some((one, list_key(c)))
}

fn list_key(coll: &'static str) -> &'static str {
    match coll {
        "security-groups" => "security_groups",
        "security-group-rules" => "security_group_rules",
        other => other,
    }
}

/// `%2F` and friends in a path segment.
fn decode(seg: &str) -> String {
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Route a write, a show or a tag/trunk action.
pub fn route(store: &mut Store, agent: bool, method: &str, path: &str, body: &Value) -> Outcome {
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let Some(&(coll, one, kind)) = segs.first().and_then(|c| collection(c)) else {
        return Err(Refusal::new(
            404,
            "HTTPNotFound",
            format!("no resource at {path}"),
        ));
    };
    match (method, segs.len()) {
        ("POST", 1) => create_request(store, agent, coll, one, body),
        (_, 1) => Err(Refusal::new(405, "HTTPMethodNotAllowed", method)),
        _ => {
            let id = segs[1].as_str();
            if store.get(coll, id).is_none() {
                return Err(Refusal::not_found(kind, id));
            }
            match (method, &segs[2..]) {
                ("GET", []) => Ok(json!({ one: store.get(coll, id) })),
                ("PUT", []) => {
                    update(store, agent, coll, id, &body[one]).map(|o| json!({ one: o }))
                }
                ("DELETE", []) => delete(store, coll, id).map(|()| Value::Null),
                (m, [t, rest @ ..]) if t == "tags" => tags(store, coll, id, m, rest, body),
                (m, [action]) if coll == "trunks" => trunk_action(store, id, m, action, body),
                _ => Err(Refusal::new(
                    404,
                    "HTTPNotFound",
                    format!("no resource at {path}"),
                )),
            }
        }
    }
}

/// `POST /coll` with one object or, for ports, a bulk list.
fn create_request(
    store: &mut Store,
    agent: bool,
    coll: &'static str,
    one: &str,
    body: &Value,
) -> Outcome {
    let many = list_key(coll);
    if let Some(items) = body.get(many).and_then(Value::as_array) {
        // Bulk: all or nothing.
        let mut made = Vec::new();
        for item in items {
            // Neutron takes tags in a port create
            // (`tag-ports-during-bulk-creation`), elsewhere only with
            // `tag-creation`.
            if coll != "ports" && !store.tag_creation && item.get("tags").is_some() {
                return Err(unrecognized_tags());
            }
            match create(store, agent, coll, item) {
                Ok(o) => made.push(o),
                Err(e) => {
                    for o in &made {
                        let _ = delete(store, coll, o["id"].as_str().unwrap_or_default());
                    }
                    return Err(e);
                }
            }
        }
        return Ok(json!({ many: made }));
    }
    match body.get(one) {
        Some(Value::Object(o))
            if o.contains_key("tags") && coll != "ports" && !store.tag_creation =>
        {
            Err(unrecognized_tags())
        }
        Some(Value::Object(_)) => create(store, agent, coll, &body[one]).map(|o| json!({ one: o })),
        _ => Err(Refusal::bad(format!("Resource body required: {one}"))),
    }
}

fn unrecognized_tags() -> Refusal {
    Refusal::bad("Unrecognized attribute(s) 'tags'")
}

pub(super) fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub(super) fn text<'a>(o: &'a Value, k: &str) -> &'a str {
    o.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// Fields the fake computes from the request rather than copying them.
const COMPUTED: &[&str] = &[
    "id",
    "status",
    "subnets",
    "fixed_ips",
    "gateway_ip",
    "allocation_pools",
    "cidr",
    "sub_ports",
    "mac_address",
    "prefixes",
    "default_prefixlen",
    "security_group_rules",
    "ip_version",
    "trunk_details",
];

fn create(store: &mut Store, agent: bool, coll: &'static str, body: &Value) -> Outcome {
    let id = store.new_id();
    let mut o = match coll {
        "networks" => obj(json!({
            "id": id, "name": "", "status": "ACTIVE", "admin_state_up": true, "shared": false,
            "mtu": 1450, "subnets": [], "port_security_enabled": true, "router:external": false,
        })),
        "subnetpools" => new_pool(&id, body)?,
        "subnets" => new_subnet(store, &id, body)?,
        "ports" => new_port(store, &id, body)?,
        "security-groups" => {
            obj(json!({"id": id, "name": "", "description": "", "security_group_rules": []}))
        }
        "security-group-rules" => new_rule(store, &id, body)?,
        "trunks" => new_trunk(store, &id, body)?,
        _ => return Err(Refusal::bad(format!("cannot create {coll}"))),
    };
    for (k, v) in body.as_object().into_iter().flatten() {
        if !COMPUTED.contains(&k.as_str()) {
            o.insert(k.clone(), v.clone());
        }
    }
    o.insert("id".into(), json!(id));
    o.entry("tags").or_insert_with(|| json!([]));
    o.entry("project_id").or_insert_with(|| json!(PROJECT));
    if coll == "ports" {
        bind(&mut o, agent);
    }
    store.insert(coll, o);
    // As stored: with its first revision_number, as Neutron answers.
    let out = Value::Object(store.get(coll, &id).cloned().unwrap_or_default());
    after_create(store, coll, &out);
    Ok(out)
}

/// Keep the parents' views (a network's subnet list, a group's rules, a
/// parent port's trunk details) in step with a new object.
fn after_create(store: &mut Store, coll: &str, o: &Value) {
    let id = o["id"].clone();
    match coll {
        "subnets" => {
            push(store, "networks", text(o, "network_id"), "subnets", id);
            // Neutron bumps a network's revision when a subnet joins it
            // (not when a port does).
            if let Some(n) = store.get_mut("networks", text(o, "network_id")) {
                let rev = n
                    .get("revision_number")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                n.insert("revision_number".into(), json!(rev + 1));
            }
        }
        "security-group-rules" => push(
            store,
            "security-groups",
            text(o, "security_group_id"),
            "security_group_rules",
            o.clone(),
        ),
        "trunks" => {
            if let Some(p) = store.get_mut("ports", text(o, "port_id")) {
                p.insert(
                    "trunk_details".into(),
                    json!({"trunk_id": id, "sub_ports": []}),
                );
            }
        }
        _ => {}
    }
}

fn push(store: &mut Store, coll: &str, id: &str, key: &str, v: Value) {
    if let Some(Value::Array(a)) = store.get_mut(coll, id).and_then(|p| p.get_mut(key)) {
        a.push(v);
    }
}

/// `PUT /coll/id`: merge the fields Neutron lets callers change.
fn update(store: &mut Store, agent: bool, coll: &str, id: &str, body: &Value) -> Outcome {
    let Some(fields) = body.as_object() else {
        return Err(Refusal::bad("Resource body required"));
    };
    let current = Value::Object(store.get(coll, id).cloned().unwrap_or_default());
    let mut next = current.as_object().cloned().unwrap_or_default();
    for (k, v) in fields {
        if matches!(
            k.as_str(),
            "id" | "network_id" | "cidr" | "ip_version" | "subnetpool_id" | "project_id" | "tags"
        ) {
            return Err(Refusal::bad(format!(
                "Cannot update read-only attribute {k}"
            )));
        }
        next.insert(k.clone(), v.clone());
    }
    if coll == "ports" {
        update_port(store, &current, &mut next, fields)?;
        bind(&mut next, agent);
    }
    let out = Value::Object(next.clone());
    store.insert(coll_static(coll), next);
    Ok(out)
}

fn coll_static(coll: &str) -> &'static str {
    collection(coll).map(|(c, _, _)| *c).unwrap_or("unknown")
}
