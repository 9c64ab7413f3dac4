//! The fake's objects: one JSON object per resource, by collection, and
//! Neutron's list filters (`key=value` ORed per key, `tags`, `tags-any`,
//! `not-tags`, `not-tags-any`, `fixed_ips`, `fields`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A Neutron error: HTTP status, `NeutronError.type`, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub kind: String,
    pub message: String,
}

impl Refusal {
    pub fn new(status: u16, kind: &str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            kind: kind.to_string(),
            message: message.into(),
        }
    }

    pub fn not_found(what: &str, id: &str) -> Refusal {
        Refusal::new(
            404,
            &format!("{what}NotFound"),
            format!("{what} {id} could not be found."),
        )
    }

    pub fn bad(message: impl Into<String>) -> Refusal {
        Refusal::new(400, "BadRequest", message)
    }

    /// Neutron's error body.
    pub fn body(&self) -> Value {
        serde_json::json!({"NeutronError": {"type": self.kind, "message": self.message, "detail": ""}})
    }
}

pub type Outcome<T = Value> = Result<T, Refusal>;

/// Every object, by collection (`networks`, ...) and ID.
#[derive(Debug, Default)]
pub struct Store {
    objects: BTreeMap<&'static str, BTreeMap<String, Map<String, Value>>>,
    next: u64,
    /// Newer Neutron (`tag-creation`): tags in any create request, not
    /// only a port's.
    pub tag_creation: bool,
}

/// The collections the fake serves, with their singular body keys and the
/// type names Neutron uses in errors.
pub const COLLECTIONS: &[(&str, &str, &str)] = &[
    ("networks", "network", "Network"),
    ("subnets", "subnet", "Subnet"),
    ("subnetpools", "subnetpool", "SubnetPool"),
    ("ports", "port", "Port"),
    ("security-groups", "security_group", "SecurityGroup"),
    (
        "security-group-rules",
        "security_group_rule",
        "SecurityGroupRule",
    ),
    ("trunks", "trunk", "Trunk"),
];

pub fn collection(name: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    COLLECTIONS.iter().find(|(c, _, _)| *c == name)
}

impl Store {
    /// A fresh UUID-shaped ID (deterministic: a counter).
    pub fn new_id(&mut self) -> String {
        self.next += 1;
        let n = self.next;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            0x6b75_7279u32, // "kury"
            (n >> 48) & 0xffff,
            (n >> 36) & 0xfff,
            (n >> 24) & 0xfff,
            n & 0xff_ffff_ffff
        )
    }

    /// A fresh Neutron-style MAC (`fa:16:3e:..`).
    pub fn new_mac(&mut self) -> String {
        self.next += 1;
        let n = self.next;
        format!(
            "fa:16:3e:{:02x}:{:02x}:{:02x}",
            (n >> 16) & 0xff,
            (n >> 8) & 0xff,
            n & 0xff
        )
    }

    pub fn all(&self, coll: &str) -> impl Iterator<Item = &Map<String, Value>> {
        self.objects.get(coll).into_iter().flat_map(|m| m.values())
    }

    pub fn get(&self, coll: &str, id: &str) -> Option<&Map<String, Value>> {
        self.objects.get(coll)?.get(id)
    }

    pub fn get_mut(&mut self, coll: &str, id: &str) -> Option<&mut Map<String, Value>> {
        self.objects.get_mut(coll)?.get_mut(id)
    }

    /// Store an object, new or changed: its `revision_number` goes up by
    /// one, as Neutron bumps it on every change.
    pub fn insert(&mut self, coll: &'static str, mut obj: Map<String, Value>) {
        let id = obj["id"].as_str().unwrap_or_default().to_string();
        let rev = self
            .get(coll, &id)
            .and_then(|o| o.get("revision_number")?.as_u64())
            .map_or(1, |r| r + 1);
        obj.insert("revision_number".into(), Value::from(rev));
        self.objects.entry(coll).or_default().insert(id, obj);
    }

    pub fn remove(&mut self, coll: &str, id: &str) -> Option<Map<String, Value>> {
        self.objects.get_mut(coll)?.remove(id)
    }

    pub fn count(&self, coll: &str) -> usize {
        self.objects.get(coll).map_or(0, BTreeMap::len)
    }

    /// The objects of `coll` that pass Neutron's filters in `query`,
    /// projected to `fields` when given.
    pub fn list(&self, coll: &str, query: &[(String, String)]) -> Vec<Value> {
        let filter = Filter::new(query);
        self.all(coll)
            .filter(|o| filter.matches(o))
            .map(|o| filter.project(o))
            .collect()
    }
}

/// A parsed list query.
struct Filter<'q> {
    equal: BTreeMap<&'q str, Vec<&'q str>>,
    tags: Vec<&'q str>,
    tags_any: Vec<&'q str>,
    not_tags: Vec<&'q str>,
    not_tags_any: Vec<&'q str>,
    fixed_ip: Vec<&'q str>,
    fixed_subnet: Vec<&'q str>,
    fields: Vec<&'q str>,
}

fn split(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').filter(|t| !t.is_empty())
}

/// A field value as Neutron compares it with a query string.
fn as_query_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

impl<'q> Filter<'q> {
    fn new(query: &'q [(String, String)]) -> Filter<'q> {
        let mut f = Filter {
            equal: BTreeMap::new(),
            tags: Vec::new(),
            tags_any: Vec::new(),
            not_tags: Vec::new(),
            not_tags_any: Vec::new(),
            fixed_ip: Vec::new(),
            fixed_subnet: Vec::new(),
            fields: Vec::new(),
        };
        for (k, v) in query {
            match k.as_str() {
                "tags" => f.tags.extend(split(v)),
                "tags-any" => f.tags_any.extend(split(v)),
                "not-tags" => f.not_tags.extend(split(v)),
                "not-tags-any" => f.not_tags_any.extend(split(v)),
                "fields" => f.fields.push(v),
                "limit" | "marker" | "sort_key" | "sort_dir" | "page_reverse" => {}
                "fixed_ips" => match v.split_once('=') {
                    Some(("ip_address", ip)) => f.fixed_ip.push(ip),
                    Some(("subnet_id", s)) => f.fixed_subnet.push(s),
                    _ => {}
                },
                key => f.equal.entry(key).or_default().push(v),
            }
        }
        f
    }

    fn matches(&self, o: &Map<String, Value>) -> bool {
        let tags: Vec<&str> = o
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let has = |t: &&str| tags.contains(t);
        let equal = self.equal.iter().all(|(k, values)| {
            o.get(*k)
                .and_then(as_query_text)
                .is_some_and(|have| values.iter().any(|v| v.eq_ignore_ascii_case(&have)))
        });
        let fixed = (self.fixed_ip.is_empty() && self.fixed_subnet.is_empty())
            || o.get("fixed_ips")
                .and_then(Value::as_array)
                .is_some_and(|ips| {
                    ips.iter().any(|f| {
                        let ip = f["ip_address"].as_str().unwrap_or_default();
                        let subnet = f["subnet_id"].as_str().unwrap_or_default();
                        (self.fixed_ip.is_empty() || self.fixed_ip.contains(&ip))
                            && (self.fixed_subnet.is_empty() || self.fixed_subnet.contains(&subnet))
                    })
                });
        equal
            && fixed
            && self.tags.iter().all(has)
            && (self.tags_any.is_empty() || self.tags_any.iter().any(has))
            && (self.not_tags.is_empty() || !self.not_tags.iter().all(has))
            && !self.not_tags_any.iter().any(has)
    }

    fn project(&self, o: &Map<String, Value>) -> Value {
        if self.fields.is_empty() {
            return Value::Object(o.clone());
        }
        Value::Object(
            o.iter()
                .filter(|(k, _)| self.fields.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}
