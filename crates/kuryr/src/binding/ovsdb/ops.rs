//! The operations of a `transact` request (RFC 7047 §5.2) and their
//! results, typed, so that a transaction reads as the list of steps it is.
//!
//! Only what kuryr needs: `select`, `insert`, `update`, `mutate`,
//! `delete`, `wait` and `comment` (no `commit`/`abort`/`assert`).

use serde_json::{Map, Value, json};

use super::OvsdbError;
use super::value::{Atom, Datum, Row, row_from_json, row_to_json};

/// A `where` clause element: `[column, function, value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub column: String,
    /// `==`, `!=`, `includes`, `excludes`, `<`, `<=`, `>`, `>=`.
    pub function: &'static str,
    pub value: Datum,
}

impl Cond {
    /// `column == value`.
    pub fn eq(column: &str, value: impl Into<Atom>) -> Cond {
        Cond {
            column: column.to_string(),
            function: "==",
            value: Datum::atom(value),
        }
    }

    /// The row whose `_uuid` is `uuid`.
    pub fn uuid(uuid: &str) -> Cond {
        Cond {
            column: "_uuid".to_string(),
            function: "==",
            value: Datum::uuid(uuid),
        }
    }

    /// `column` (a set or map) holds every element of `value`.
    pub fn includes(column: &str, value: Datum) -> Cond {
        Cond {
            column: column.to_string(),
            function: "includes",
            value,
        }
    }

    fn to_json(&self) -> Value {
        json!([self.column, self.function, self.value.to_json()])
    }
}

/// A `mutations` element: `[column, mutator, value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub column: String,
    /// `+=`, `-=`, `*=`, `/=`, `%=`, `insert`, `delete`.
    pub mutator: &'static str,
    pub value: Datum,
}

impl Mutation {
    /// Add the elements (set) or the pairs whose key is not there yet (map).
    pub fn insert(column: &str, value: Datum) -> Mutation {
        Mutation {
            column: column.to_string(),
            mutator: "insert",
            value,
        }
    }

    /// Remove the elements (set), or the pairs with these keys (map given
    /// a set) or these exact pairs (map given a map).
    pub fn delete(column: &str, value: Datum) -> Mutation {
        Mutation {
            column: column.to_string(),
            mutator: "delete",
            value,
        }
    }

    /// Integer `column += n`.
    pub fn add(column: &str, n: i64) -> Mutation {
        Mutation {
            column: column.to_string(),
            mutator: "+=",
            value: Datum::atom(n),
        }
    }

    fn to_json(&self) -> Value {
        json!([self.column, self.mutator, self.value.to_json()])
    }
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Read `columns` (all if empty) of the rows matching `conds`.
    Select {
        table: String,
        conds: Vec<Cond>,
        columns: Vec<String>,
    },
    /// Insert `row`; `uuid_name` lets later operations refer to it with
    /// `["named-uuid", name]`.
    Insert {
        table: String,
        row: Row,
        uuid_name: Option<String>,
    },
    /// Set the columns of `row` on every row matching `conds`.
    Update {
        table: String,
        conds: Vec<Cond>,
        row: Row,
    },
    /// Apply `mutations`, in order, to every row matching `conds`.
    Mutate {
        table: String,
        conds: Vec<Cond>,
        mutations: Vec<Mutation>,
    },
    /// Delete the rows matching `conds`.
    Delete { table: String, conds: Vec<Cond> },
    /// Fail the transaction with "timed out" unless the rows matching
    /// `conds`, projected on `columns`, are (`equal`) or are not equal to
    /// `rows`. Used with timeout 0 as a guard: "still as I read it".
    Wait {
        table: String,
        conds: Vec<Cond>,
        columns: Vec<String>,
        equal: bool,
        rows: Vec<Row>,
    },
    /// Logged by ovsdb-server with the transaction.
    Comment(String),
}

fn conds_json(conds: &[Cond]) -> Value {
    Value::Array(conds.iter().map(Cond::to_json).collect())
}

impl Op {
    pub fn select(table: &str, conds: Vec<Cond>, columns: &[&str]) -> Op {
        Op::Select {
            table: table.to_string(),
            conds,
            columns: columns.iter().map(|c| c.to_string()).collect(),
        }
    }

    /// A guard: the rows matching `conds`, projected on `columns`, are
    /// exactly `rows` right now.
    pub fn wait_eq(table: &str, conds: Vec<Cond>, columns: &[&str], rows: Vec<Row>) -> Op {
        Op::Wait {
            table: table.to_string(),
            conds,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            equal: true,
            rows,
        }
    }

    /// The operation's name on the wire, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Select { .. } => "select",
            Op::Insert { .. } => "insert",
            Op::Update { .. } => "update",
            Op::Mutate { .. } => "mutate",
            Op::Delete { .. } => "delete",
            Op::Wait { .. } => "wait",
            Op::Comment(_) => "comment",
        }
    }

    /// The JSON object of this operation.
    pub fn to_json(&self) -> Value {
        let mut o = json!({ "op": self.name() });
        let m = o.as_object_mut().expect("an object");
        match self {
            Op::Select {
                table,
                conds,
                columns,
            } => {
                m.insert("table".into(), json!(table));
                m.insert("where".into(), conds_json(conds));
                if !columns.is_empty() {
                    m.insert("columns".into(), json!(columns));
                }
            }
            Op::Insert {
                table,
                row,
                uuid_name,
            } => {
                m.insert("table".into(), json!(table));
                m.insert("row".into(), row_to_json(row));
                if let Some(n) = uuid_name {
                    m.insert("uuid-name".into(), json!(n));
                }
            }
            Op::Update { table, conds, row } => {
                m.insert("table".into(), json!(table));
                m.insert("where".into(), conds_json(conds));
                m.insert("row".into(), row_to_json(row));
            }
            Op::Mutate {
                table,
                conds,
                mutations,
            } => {
                m.insert("table".into(), json!(table));
                m.insert("where".into(), conds_json(conds));
                let ms: Vec<Value> = mutations.iter().map(Mutation::to_json).collect();
                m.insert("mutations".into(), Value::Array(ms));
            }
            Op::Delete { table, conds } => {
                m.insert("table".into(), json!(table));
                m.insert("where".into(), conds_json(conds));
            }
            Op::Wait {
                table,
                conds,
                columns,
                equal,
                rows,
            } => {
                m.insert("table".into(), json!(table));
                m.insert("where".into(), conds_json(conds));
                m.insert("columns".into(), json!(columns));
                m.insert("until".into(), json!(if *equal { "==" } else { "!=" }));
                let rows: Vec<Value> = rows.iter().map(row_to_json).collect();
                m.insert("rows".into(), Value::Array(rows));
                m.insert("timeout".into(), json!(0));
            }
            Op::Comment(c) => {
                m.insert("comment".into(), json!(c));
            }
        }
        o
    }
}

/// The result of one successful operation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OpResult(pub Map<String, Value>);

impl OpResult {
    /// `insert`: the new row's UUID.
    pub fn uuid(&self) -> Option<&str> {
        match self.0.get("uuid")?.as_array()?.as_slice() {
            [tag, Value::String(u)] if tag == "uuid" => Some(u),
            _ => None,
        }
    }

    /// `update`, `mutate`, `delete`: how many rows matched.
    pub fn count(&self) -> Option<u64> {
        self.0.get("count")?.as_u64()
    }

    /// `select`: the rows read.
    pub fn rows(&self) -> Result<Vec<Row>, OvsdbError> {
        let rows = self
            .0
            .get("rows")
            .and_then(Value::as_array)
            .ok_or_else(|| OvsdbError::Protocol("a select result without \"rows\"".into()))?;
        rows.iter()
            .map(|r| {
                row_from_json(r).ok_or_else(|| OvsdbError::Protocol(format!("undecodable row {r}")))
            })
            .collect()
    }
}

/// Split a `transact` reply into per-operation results, or the first error:
/// the error of operation `i` (`i < ops.len()`), or of the commit (an extra
/// element after the operations' results).
pub fn results(ops: &[Op], reply: Value) -> Result<Vec<OpResult>, OvsdbError> {
    let Value::Array(items) = reply else {
        return Err(OvsdbError::Protocol(format!(
            "a transact result that is not an array: {reply}"
        )));
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        match item {
            Value::Object(m) if m.contains_key("error") => {
                let text = |k: &str| {
                    m.get(k)
                        .map(|v| v.as_str().map_or(v.to_string(), str::to_string))
                };
                return Err(OvsdbError::Operation {
                    index,
                    op: ops.get(index).map_or("commit", Op::name),
                    error: text("error").unwrap_or_default(),
                    details: text("details"),
                });
            }
            Value::Object(m) => out.push(OpResult(m)),
            // Operations after a failed one are null; a failure reported
            // without an error object is still a failure.
            other => {
                return Err(OvsdbError::Protocol(format!(
                    "operation {index} has result {other} and no error"
                )));
            }
        }
    }
    if out.len() < ops.len() {
        return Err(OvsdbError::Protocol(format!(
            "{} results for {} operations",
            out.len(),
            ops.len()
        )));
    }
    Ok(out)
}
