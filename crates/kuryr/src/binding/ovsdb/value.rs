//! OVSDB's JSON encoding of values (RFC 7047 §5.1), so that the rest of the
//! client handles typed atoms, sets and maps instead of nested JSON arrays.
//!
//! OVSDB has no scalar columns: every column holds a set (a scalar is a set
//! of exactly one element) or a map. [`Datum`] mirrors that: a bare atom
//! on the wire decodes to a one-element set, and a one-element set encodes
//! back to the bare atom, as ovsdb-server itself does.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// One scalar: `"text"`, `42`, `1.5`, `true`, `["uuid", ...]` or
/// `["named-uuid", ...]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Atom {
    String(String),
    Integer(i64),
    Real(f64),
    Boolean(bool),
    /// A row's `_uuid`, or a reference to a row.
    Uuid(String),
    /// A row inserted earlier in the same transaction, by its `uuid-name`.
    NamedUuid(String),
}

/// A column's value: a set of atoms (a scalar is a set of one) or a map.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Set(Vec<Atom>),
    Map(Vec<(Atom, Atom)>),
}

/// A row, or the columns of one, by column name.
pub type Row = BTreeMap<String, Datum>;

impl From<&str> for Atom {
    fn from(s: &str) -> Atom {
        Atom::String(s.to_string())
    }
}

impl From<String> for Atom {
    fn from(s: String) -> Atom {
        Atom::String(s)
    }
}

impl From<i64> for Atom {
    fn from(i: i64) -> Atom {
        Atom::Integer(i)
    }
}

impl From<bool> for Atom {
    fn from(b: bool) -> Atom {
        Atom::Boolean(b)
    }
}

impl Atom {
    /// The JSON form of this atom.
    pub fn to_json(&self) -> Value {
        match self {
            Atom::String(s) => json!(s),
            Atom::Integer(i) => json!(i),
            Atom::Real(r) => json!(r),
            Atom::Boolean(b) => json!(b),
            Atom::Uuid(u) => json!(["uuid", u]),
            Atom::NamedUuid(n) => json!(["named-uuid", n]),
        }
    }

    /// Decode an atom; `None` if `v` is not one.
    pub fn from_json(v: &Value) -> Option<Atom> {
        match v {
            Value::String(s) => Some(Atom::String(s.clone())),
            Value::Bool(b) => Some(Atom::Boolean(*b)),
            Value::Number(n) => n
                .as_i64()
                .map(Atom::Integer)
                .or_else(|| n.as_f64().map(Atom::Real)),
            Value::Array(a) => match (a.as_slice(), a.get(1).and_then(Value::as_str)) {
                ([tag, _], Some(id)) if tag == "uuid" => Some(Atom::Uuid(id.to_string())),
                ([tag, _], Some(id)) if tag == "named-uuid" => {
                    Some(Atom::NamedUuid(id.to_string()))
                }
                _ => None,
            },
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_uuid(&self) -> Option<&str> {
        match self {
            Atom::Uuid(u) => Some(u),
            _ => None,
        }
    }
}

impl Datum {
    /// A set of one: what a scalar column holds.
    pub fn atom(a: impl Into<Atom>) -> Datum {
        Datum::Set(vec![a.into()])
    }

    /// The empty set: an optional column with no value.
    pub fn empty() -> Datum {
        Datum::Set(Vec::new())
    }

    pub fn uuid(u: &str) -> Datum {
        Datum::Set(vec![Atom::Uuid(u.to_string())])
    }

    pub fn named_uuid(name: &str) -> Datum {
        Datum::Set(vec![Atom::NamedUuid(name.to_string())])
    }

    /// A set of strings.
    pub fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Datum {
        Datum::Set(items.into_iter().map(|s| s.as_ref().into()).collect())
    }

    /// A set of row references.
    pub fn uuids<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Datum {
        Datum::Set(
            items
                .into_iter()
                .map(|s| Atom::Uuid(s.as_ref().to_string()))
                .collect(),
        )
    }

    /// A string-to-string map, such as `external_ids`.
    pub fn string_map<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Datum {
        Datum::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_ref().into(), v.as_ref().into()))
                .collect(),
        )
    }

    /// The JSON form: a one-element set is sent as its bare atom.
    pub fn to_json(&self) -> Value {
        match self {
            Datum::Set(atoms) if atoms.len() == 1 => atoms[0].to_json(),
            Datum::Set(atoms) => {
                json!(["set", atoms.iter().map(Atom::to_json).collect::<Vec<_>>()])
            }
            Datum::Map(pairs) => json!([
                "map",
                pairs
                    .iter()
                    .map(|(k, v)| json!([k.to_json(), v.to_json()]))
                    .collect::<Vec<_>>()
            ]),
        }
    }

    /// Decode a datum; `None` if `v` is not one.
    pub fn from_json(v: &Value) -> Option<Datum> {
        if let Some(a) = Atom::from_json(v) {
            return Some(Datum::Set(vec![a]));
        }
        let (tag, items) = match v.as_array()?.as_slice() {
            [Value::String(tag), Value::Array(items)] => (tag.as_str(), items),
            _ => return None,
        };
        match tag {
            "set" => items
                .iter()
                .map(Atom::from_json)
                .collect::<Option<_>>()
                .map(Datum::Set),
            "map" => items
                .iter()
                .map(|pair| match pair.as_array()?.as_slice() {
                    [k, v] => Some((Atom::from_json(k)?, Atom::from_json(v)?)),
                    _ => None,
                })
                .collect::<Option<_>>()
                .map(Datum::Map),
            _ => None,
        }
    }

    /// The only element of a one-element set (a scalar column's value).
    pub fn as_atom(&self) -> Option<&Atom> {
        match self {
            Datum::Set(atoms) if atoms.len() == 1 => atoms.first(),
            _ => None,
        }
    }

    /// The elements of a set (empty for a map).
    pub fn elements(&self) -> &[Atom] {
        match self {
            Datum::Set(atoms) => atoms,
            Datum::Map(_) => &[],
        }
    }

    /// The value under string key `key` of a map.
    pub fn get(&self, key: &str) -> Option<&Atom> {
        match self {
            Datum::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            Datum::Set(_) => None,
        }
    }
}

/// The JSON object form of a row.
pub fn row_to_json(row: &Row) -> Value {
    Value::Object(
        row.iter()
            .map(|(col, d)| (col.clone(), d.to_json()))
            .collect(),
    )
}

/// Decode a row; `None` if `v` is not an object of data.
pub fn row_from_json(v: &Value) -> Option<Row> {
    v.as_object()?
        .iter()
        .map(|(col, d)| Some((col.clone(), Datum::from_json(d)?)))
        .collect()
}
