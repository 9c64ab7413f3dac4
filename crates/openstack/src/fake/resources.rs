//! What each write means to the fake: defaults and checks per collection,
//! tags, trunk sub-ports. Neutron's rules are followed where the driver
//! depends on them; see the module doc of [`super`].

use serde_json::{Map, Value, json};

use super::PROJECT;
use super::addr::{self, Cidr};
use super::store::{Outcome, Refusal, Store, collection};

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
            // Neutron takes tags in a bulk port create
            // (`tag_ports_during_bulk_creation`), nowhere else.
            if coll != "ports" && item.get("tags").is_some() {
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
        Some(Value::Object(o)) if o.contains_key("tags") => Err(unrecognized_tags()),
        Some(Value::Object(_)) => create(store, agent, coll, &body[one]).map(|o| json!({ one: o })),
        _ => Err(Refusal::bad(format!("Resource body required: {one}"))),
    }
}

fn unrecognized_tags() -> Refusal {
    Refusal::bad("Unrecognized attribute(s) 'tags'")
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn text<'a>(o: &'a Value, k: &str) -> &'a str {
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
    let out = Value::Object(o.clone());
    store.insert(coll, o);
    after_create(store, coll, &out);
    Ok(out)
}

/// Keep the parents' views (a network's subnet list, a group's rules, a
/// parent port's trunk details) in step with a new object.
fn after_create(store: &mut Store, coll: &str, o: &Value) {
    let id = o["id"].clone();
    match coll {
        "subnets" => push(store, "networks", text(o, "network_id"), "subnets", id),
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

fn new_pool(id: &str, body: &Value) -> Outcome<Map<String, Value>> {
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

fn pool_prefixes(pool: &Map<String, Value>) -> Vec<Cidr> {
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

fn subnet_cidr(s: &Map<String, Value>) -> Option<Cidr> {
    Cidr::parse(s.get("cidr")?.as_str()?)
}

/// The CIDR of a new subnet: the one asked for, checked against its pool,
/// or the first free block of the pool.
fn choose_cidr(store: &Store, body: &Value, v6: bool) -> Outcome<Cidr> {
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

fn new_subnet(store: &Store, id: &str, body: &Value) -> Outcome<Map<String, Value>> {
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

fn default_pools(c: &Cidr, gateway: Option<u128>) -> Value {
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

/// Addresses of a subnet already held by ports.
fn used_ips(store: &Store, subnet: &str) -> Vec<u128> {
    store
        .all("ports")
        .flat_map(|p| p["fixed_ips"].as_array().cloned().unwrap_or_default())
        .filter(|f| text(f, "subnet_id") == subnet)
        .filter_map(|f| addr::parse_ip(text(&f, "ip_address")).map(|(n, _)| n))
        .collect()
}

/// One fixed IP of a port: the address asked for (free, in the subnet),
/// or the lowest free one of the subnet's allocation pools.
fn allocate(store: &Store, net: &str, want: &Value, keep: &[u128]) -> Outcome<Value> {
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
fn fixed_ips(
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

fn new_port(store: &mut Store, id: &str, body: &Value) -> Outcome<Map<String, Value>> {
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

fn check_mac_free(store: &Store, net: &str, mac: &str, except: &str) -> Outcome<()> {
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
fn bind(p: &mut Map<String, Value>, agent: bool) {
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

fn new_rule(store: &Store, id: &str, body: &Value) -> Outcome<Map<String, Value>> {
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

fn new_trunk(store: &Store, id: &str, body: &Value) -> Outcome<Map<String, Value>> {
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

fn update_port(
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

fn coll_static(coll: &str) -> &'static str {
    collection(coll).map(|(c, _, _)| *c).unwrap_or("unknown")
}

fn delete(store: &mut Store, coll: &str, id: &str) -> Outcome<()> {
    let refuse = |kind: &str, msg: String| Err(Refusal::new(409, kind, msg));
    match coll {
        "networks" => {
            let in_use = store.all("ports").any(|p| {
                p["network_id"] == id
                    && !p["device_owner"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with("network:")
            });
            if in_use {
                return refuse(
                    "NetworkInUse",
                    format!(
                        "Unable to complete operation on network {id}. There are one or more ports still in use on the network."
                    ),
                );
            }
            let doomed: Vec<(String, String)> = store
                .all("ports")
                .filter(|p| p["network_id"] == id)
                .map(|p| {
                    (
                        "ports".to_string(),
                        p["id"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .chain(
                    store
                        .all("subnets")
                        .filter(|s| s["network_id"] == id)
                        .map(|s| {
                            (
                                "subnets".to_string(),
                                s["id"].as_str().unwrap_or_default().to_string(),
                            )
                        }),
                )
                .collect();
            for (c, i) in doomed {
                store.remove(&c, &i);
            }
        }
        "subnets" => {
            let used = store.all("ports").any(|p| {
                p["fixed_ips"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|f| f["subnet_id"] == id))
            });
            if used {
                return refuse(
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
        }
        "subnetpools" => {
            if store.all("subnets").any(|s| s["subnetpool_id"] == id) {
                return Err(Refusal::new(
                    400,
                    "SubnetPoolDeleteError",
                    format!(
                        "Unable to delete subnet pool: Subnet pool {id} has subnets allocated from it."
                    ),
                ));
            }
        }
        "ports" => {
            if store.all("trunks").any(|t| t["port_id"] == id) {
                return refuse(
                    "PortInUseAsTrunkParent",
                    format!("Port {id} is currently a parent port for trunk."),
                );
            }
            if store.all("trunks").any(|t| {
                t["sub_ports"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|sp| sp["port_id"] == id))
            }) {
                return refuse(
                    "PortInUseAsSubPort",
                    format!("Port {id} is currently a subport."),
                );
            }
        }
        "security-groups" => {
            if store.all("ports").any(|p| {
                p["security_groups"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|g| g == id))
            }) {
                return refuse("SecurityGroupInUse", format!("Security Group {id} in use."));
            }
            let rules: Vec<String> = store
                .all("security-group-rules")
                .filter(|r| r["security_group_id"] == id)
                .filter_map(|r| r["id"].as_str().map(str::to_string))
                .collect();
            for r in rules {
                store.remove("security-group-rules", &r);
            }
        }
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

fn tags(
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
    Ok(out)
}

fn trunk_action(store: &mut Store, id: &str, method: &str, action: &str, body: &Value) -> Outcome {
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
