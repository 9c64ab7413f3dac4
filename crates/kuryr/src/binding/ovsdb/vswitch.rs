//! The two changes the binder makes to the `Open_vSwitch` database, with
//! the semantics of the ovs-vsctl commands they replace:
//!
//! - [`add_port`] = `ovs-vsctl --may-exist add-port BR DEV -- set Interface
//!   DEV external_ids:K=V...`: a new port gets its Interface, Port and
//!   Bridge `ports` entry in one transaction, so the OVS agent never sees
//!   it without its `iface-id`; a port already on `BR` only gets its
//!   `external_ids` keys set (other keys kept); a port on another bridge is
//!   an error, as with ovs-vsctl (it may be someone else's: not moved).
//! - [`del_ports`] = `ovs-vsctl --if-exists del-port DEV...`: each port
//!   leaves whatever bridge holds it, absent ones are skipped. Port and
//!   Interface are not root tables: once no Bridge refers to a Port,
//!   ovsdb-server deletes it, and with it its Interfaces.
//!
//! Each is a read (one `transact` of `select`s) then one write
//! transaction that starts with `wait` guards (timeout 0) asserting the
//! rows are still as read: if another client changed them in between, the
//! write fails as a whole and the operation starts again, as ovs-vsctl's
//! IDL does with `verify`. A write that would change nothing is skipped.
//!
//! Waiting: unless told not to, a write also increments
//! `Open_vSwitch.next_cfg` and reads it back; ovs-vswitchd copies it to
//! `cur_cfg` once it has applied the database. The operation then monitors
//! `cur_cfg` until it reaches that value, as ovs-vsctl without `--no-wait`
//! does, and warns (as ovs-vsctl does) when the new interface got no
//! OpenFlow port. Without ovs-vswitchd (tests with only an ovsdb-server),
//! this would wait until the timeout: use no-wait there.
//!
//! The whole operation, every retry and the wait included, is bounded by
//! the client's timeout, as `ovs-vsctl --timeout` bounds the command.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::OvsdbError;
use super::client::Client;
use super::ops::{Cond, Mutation, Op, OpResult};
use super::value::{Atom, Datum, Row};

/// The database ovsdb-server serves for Open vSwitch.
pub const DB: &str = "Open_vSwitch";

/// How often a write that lost a race with another client is retried.
const ATTEMPTS: u32 = 5;

/// Make `port` a port of `bridge` (with one interface of the same name)
/// whose interface has `external_ids` ⊇ `ids`. Idempotent. `wait`: wait
/// for ovs-vswitchd to apply it.
pub async fn add_port(
    client: &Client,
    bridge: &str,
    port: &str,
    ids: &[(&str, &str)],
    wait: bool,
) -> Result<(), OvsdbError> {
    let what = format!("add-port {port} to {bridge}");
    let deadline = deadline(client);
    let work = async {
        for _ in 0..ATTEMPTS {
            let found = read_port(client, bridge, port).await?;
            let Some(change) = plan_add(client, bridge, port, ids, &found).await? else {
                return Ok(());
            };
            if let Written::Committed { next_cfg } = write(client, change, wait).await? {
                if let Some(next_cfg) = next_cfg {
                    wait_for_reload(client, next_cfg, deadline).await?;
                    check_ofport(client, port).await?;
                }
                return Ok(());
            }
        }
        Err(contention(&what))
    };
    whole(client, &what, deadline, work).await
}

/// Remove each of `ports` from whatever bridge holds it; absent ones are
/// skipped. Idempotent. `wait`: wait for ovs-vswitchd to apply it.
pub async fn del_ports(client: &Client, ports: &[String], wait: bool) -> Result<(), OvsdbError> {
    if ports.is_empty() {
        return Ok(());
    }
    let what = format!("del-port {}", ports.join(" "));
    let deadline = deadline(client);
    let work = async {
        for _ in 0..ATTEMPTS {
            let change = plan_del(client, ports).await?;
            if change.ops.is_empty() {
                return Ok(());
            }
            if let Written::Committed { next_cfg } = write(client, change, wait).await? {
                if let Some(next_cfg) = next_cfg {
                    wait_for_reload(client, next_cfg, deadline).await?;
                }
                return Ok(());
            }
        }
        Err(contention(&what))
    };
    whole(client, &what, deadline, work).await
}

/// The interfaces whose `external_ids` include every pair of `ids`: their
/// names and `external_ids:iface-id` (as `ovs-vsctl --columns=name,
/// external_ids find Interface external_ids:K=V`).
pub async fn interfaces_with(
    client: &Client,
    ids: &[(&str, &str)],
) -> Result<Vec<(String, Option<String>)>, OvsdbError> {
    let what = "find Interface".to_string();
    let deadline = deadline(client);
    let work = async {
        let ops = [Op::select(
            "Interface",
            vec![Cond::includes(
                "external_ids",
                Datum::string_map(ids.iter().copied()),
            )],
            &["name", "external_ids"],
        )];
        let res = client.transact(DB, &ops).await?;
        let rows = res[0].rows()?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let name = row.get("name")?.as_atom()?.as_str()?.to_string();
                let iface_id = row
                    .get("external_ids")
                    .and_then(|m| m.get("iface-id"))
                    .and_then(Atom::as_str)
                    .map(str::to_string);
                Some((name, iface_id))
            })
            .collect())
    };
    whole(client, &what, deadline, work).await
}

/// When the whole operation must be over.
fn deadline(client: &Client) -> Option<Instant> {
    client.timeout().map(|t| Instant::now() + t)
}

/// Bound a whole operation by `deadline`.
async fn whole<T>(
    client: &Client,
    what: &str,
    deadline: Option<Instant>,
    work: impl Future<Output = Result<T, OvsdbError>>,
) -> Result<T, OvsdbError> {
    until(deadline, work, || OvsdbError::Timeout {
        what: what.to_string(),
        target: client.target().to_string(),
        after: client.timeout().unwrap_or_default(),
    })
    .await
}

/// Run `fut` until `deadline` at most.
async fn until<T>(
    deadline: Option<Instant>,
    fut: impl Future<Output = Result<T, OvsdbError>>,
    timed_out: impl FnOnce() -> OvsdbError,
) -> Result<T, OvsdbError> {
    match deadline {
        None => fut.await,
        Some(d) => tokio::time::timeout_at(d, fut)
            .await
            .unwrap_or_else(|_| Err(timed_out())),
    }
}

fn contention(what: &str) -> OvsdbError {
    OvsdbError::Contention {
        what: what.to_string(),
        attempts: ATTEMPTS,
    }
}

/// A write transaction: guards and changes.
#[derive(Debug)]
pub(super) struct Change {
    pub(super) ops: Vec<Op>,
    /// Operations (`mutate`) that must match one row, else what was read
    /// is gone and the operation starts again.
    pub(super) must_match: Vec<usize>,
}

/// How a write went.
#[derive(Debug)]
pub(super) enum Written {
    /// The database changed since it was read: nothing was done.
    Stale,
    /// Committed; with `wait`, the `next_cfg` to wait for.
    Committed { next_cfg: Option<i64> },
}

/// What add-port found under the names it uses.
#[derive(Debug)]
pub(super) struct FoundPort {
    bridge: Option<Row>,
    port: Option<Row>,
    iface: Option<Row>,
}

/// The bridge, and the Port and Interface named `port`, in one snapshot.
pub(super) async fn read_port(
    client: &Client,
    bridge: &str,
    port: &str,
) -> Result<FoundPort, OvsdbError> {
    let ops = [
        Op::select(
            "Bridge",
            vec![Cond::eq("name", bridge)],
            &["_uuid", "ports"],
        ),
        Op::select(
            "Port",
            vec![Cond::eq("name", port)],
            &["_uuid", "interfaces"],
        ),
        Op::select(
            "Interface",
            vec![Cond::eq("name", port)],
            &["_uuid", "external_ids"],
        ),
    ];
    let res = client.transact(DB, &ops).await?;
    Ok(FoundPort {
        bridge: first_row(&res[0])?,
        port: first_row(&res[1])?,
        iface: first_row(&res[2])?,
    })
}

fn first_row(r: &OpResult) -> Result<Option<Row>, OvsdbError> {
    Ok(r.rows()?.into_iter().next())
}

/// A row's `_uuid` (always selected).
fn uuid_of(row: &Row) -> Result<&str, OvsdbError> {
    row.get("_uuid")
        .and_then(Datum::as_atom)
        .and_then(Atom::as_uuid)
        .ok_or_else(|| OvsdbError::Protocol(format!("a row without _uuid: {row:?}")))
}

/// The UUIDs in set column `column` of `row`.
fn uuids_in<'r>(row: &'r Row, column: &str) -> Vec<&'r str> {
    row.get(column)
        .map(|d| d.elements().iter().filter_map(Atom::as_uuid).collect())
        .unwrap_or_default()
}

/// The write add-port needs, `None` if there is nothing to change.
pub(super) async fn plan_add(
    client: &Client,
    bridge: &str,
    port: &str,
    ids: &[(&str, &str)],
    found: &FoundPort,
) -> Result<Option<Change>, OvsdbError> {
    let br = found
        .bridge
        .as_ref()
        .ok_or_else(|| OvsdbError::NoBridge(bridge.to_string()))?;
    let br_uuid = uuid_of(br)?;
    let conflict = |reason: String| OvsdbError::Conflict {
        port: port.to_string(),
        reason,
    };
    let Some(p) = &found.port else {
        if found.iface.is_some() {
            return Err(conflict(format!(
                "an interface named {port} already belongs to another port"
            )));
        }
        return Ok(Some(create_port(br_uuid, port, ids)));
    };
    let p_uuid = uuid_of(p)?;
    if !uuids_in(br, "ports").contains(&p_uuid) {
        return Err(OvsdbError::PortOnOtherBridge {
            port: port.to_string(),
            bridge: bridge.to_string(),
            other: bridge_holding(client, p_uuid).await?,
        });
    }
    let iface = match &found.iface {
        Some(row) if uuids_in(p, "interfaces") == [uuid_of(row)?] => row,
        _ => {
            return Err(conflict(format!(
                "port {port} on {bridge} does not have exactly one interface, named {port}"
            )));
        }
    };
    let current = iface.get("external_ids");
    let unchanged = ids
        .iter()
        .all(|(k, v)| current.and_then(|m| m.get(k)).and_then(Atom::as_str) == Some(*v));
    if unchanged {
        return Ok(None);
    }
    Ok(Some(set_ids(port, p_uuid, uuid_of(iface)?, ids)))
}

/// A new Interface and Port, referenced from the bridge: guarded by "no
/// port of that name yet"; the Bridge `mutate` must match one row (a
/// deleted bridge leaves the new rows unreferenced, hence collected).
fn create_port(br_uuid: &str, port: &str, ids: &[(&str, &str)]) -> Change {
    let iface = BTreeMap::from([
        ("name".to_string(), Datum::atom(port)),
        (
            "external_ids".to_string(),
            Datum::string_map(ids.iter().copied()),
        ),
    ]);
    let port_row = BTreeMap::from([
        ("name".to_string(), Datum::atom(port)),
        ("interfaces".to_string(), Datum::named_uuid("iface")),
    ]);
    let ops = vec![
        Op::wait_eq("Port", vec![Cond::eq("name", port)], &["name"], vec![]),
        Op::Insert {
            table: "Interface".into(),
            row: iface,
            uuid_name: Some("iface".into()),
        },
        Op::Insert {
            table: "Port".into(),
            row: port_row,
            uuid_name: Some("port".into()),
        },
        Op::Mutate {
            table: "Bridge".into(),
            conds: vec![Cond::uuid(br_uuid)],
            mutations: vec![Mutation::insert("ports", Datum::named_uuid("port"))],
        },
    ];
    Change {
        ops,
        must_match: vec![3],
    }
}

/// `external_ids` keys of an existing interface replaced (other keys
/// kept), guarded by "the port is still the row read".
fn set_ids(port: &str, p_uuid: &str, i_uuid: &str, ids: &[(&str, &str)]) -> Change {
    let same_port = BTreeMap::from([("_uuid".to_string(), Datum::uuid(p_uuid))]);
    let ops = vec![
        Op::wait_eq(
            "Port",
            vec![Cond::eq("name", port)],
            &["_uuid"],
            vec![same_port],
        ),
        Op::Mutate {
            table: "Interface".into(),
            conds: vec![Cond::uuid(i_uuid)],
            mutations: vec![
                Mutation::delete("external_ids", Datum::strings(ids.iter().map(|(k, _)| k))),
                Mutation::insert("external_ids", Datum::string_map(ids.iter().copied())),
            ],
        },
    ];
    Change {
        ops,
        must_match: vec![1],
    }
}

/// The name of the bridge whose `ports` hold `port_uuid` (for errors).
async fn bridge_holding(client: &Client, port_uuid: &str) -> Result<String, OvsdbError> {
    let ops = [Op::select(
        "Bridge",
        vec![Cond::includes("ports", Datum::uuid(port_uuid))],
        &["name"],
    )];
    let res = client.transact(DB, &ops).await?;
    let name = first_row(&res[0])?
        .and_then(|r| r.get("name").and_then(Datum::as_atom).cloned())
        .and_then(|a| a.as_str().map(str::to_string));
    Ok(name.unwrap_or_else(|| "(none)".to_string()))
}

/// For each of `ports` that exists: "still the same row" and "out of the
/// bridge that holds it". Empty if none exists.
pub(super) async fn plan_del(client: &Client, ports: &[String]) -> Result<Change, OvsdbError> {
    let reads: Vec<Op> = ports
        .iter()
        .map(|p| Op::select("Port", vec![Cond::eq("name", p.as_str())], &["_uuid"]))
        .collect();
    let res = client.transact(DB, &reads).await?;
    let mut ops = Vec::new();
    for (name, r) in ports.iter().zip(&res) {
        let Some(row) = first_row(r)? else { continue };
        let uuid = uuid_of(&row)?.to_string();
        ops.push(Op::wait_eq(
            "Port",
            vec![Cond::eq("name", name.as_str())],
            &["_uuid"],
            vec![row],
        ));
        ops.push(Op::Mutate {
            table: "Bridge".into(),
            conds: vec![Cond::includes("ports", Datum::uuid(&uuid))],
            mutations: vec![Mutation::delete("ports", Datum::uuid(&uuid))],
        });
    }
    // A Port always hangs off a bridge (or is collected): the mutates
    // cannot miss while the guards hold.
    Ok(Change {
        ops,
        must_match: Vec::new(),
    })
}

/// Commit `change` (plus the `next_cfg` increment and read-back if
/// `wait`), unless a guard fails.
pub(super) async fn write(
    client: &Client,
    change: Change,
    wait: bool,
) -> Result<Written, OvsdbError> {
    let Change {
        mut ops,
        must_match,
    } = change;
    let n = ops.len();
    if wait {
        ops.push(Op::Mutate {
            table: "Open_vSwitch".into(),
            conds: vec![],
            mutations: vec![Mutation::add("next_cfg", 1)],
        });
        ops.push(Op::select("Open_vSwitch", vec![], &["next_cfg"]));
    }
    let res = match client.transact(DB, &ops).await {
        Ok(res) => res,
        Err(OvsdbError::Operation {
            op: "wait", error, ..
        }) if error == "timed out" => {
            tracing::debug!("OVSDB changed since read, starting again");
            return Ok(Written::Stale);
        }
        Err(e) => return Err(e),
    };
    if must_match.iter().any(|&i| res[i].count() == Some(0)) {
        tracing::debug!("a row read is gone, starting again");
        return Ok(Written::Stale);
    }
    let next_cfg = if wait {
        first_row(&res[n + 1])?.and_then(|r| r.get("next_cfg")?.as_atom()?.as_integer())
    } else {
        None
    };
    Ok(Written::Committed { next_cfg })
}

/// Wait until `Open_vSwitch.cur_cfg` ≥ `next_cfg` (ovs-vswitchd applied
/// the database as of our commit), or `deadline`.
async fn wait_for_reload(
    client: &Client,
    next_cfg: i64,
    deadline: Option<Instant>,
) -> Result<(), OvsdbError> {
    let mut monitor = client
        .monitor(DB, &[("Open_vSwitch", &["cur_cfg"])])
        .await?;
    let mut cur_cfg = max_cur_cfg(monitor.initial().rows("Open_vSwitch")?, i64::MIN);
    while cur_cfg < next_cfg {
        let update = until(deadline, monitor.next(), || OvsdbError::ReloadTimeout {
            next_cfg,
            cur_cfg,
            after: client.timeout().unwrap_or_default(),
        });
        cur_cfg = max_cur_cfg(update.await?.rows("Open_vSwitch")?, cur_cfg);
    }
    Ok(())
}

fn max_cur_cfg(rows: Vec<(String, Option<Row>)>, seen: i64) -> i64 {
    rows.into_iter()
        .filter_map(|(_, row)| row?.get("cur_cfg")?.as_atom()?.as_integer())
        .fold(seen, i64::max)
}

/// As ovs-vsctl after a reload: warn if ovs-vswitchd could not open the
/// interface (no OpenFlow port, or -1).
async fn check_ofport(client: &Client, port: &str) -> Result<(), OvsdbError> {
    let ops = [Op::select(
        "Interface",
        vec![Cond::eq("name", port)],
        &["ofport", "error"],
    )];
    let res = client.transact(DB, &ops).await?;
    let Some(row) = first_row(&res[0])? else {
        return Ok(());
    };
    let ofport = row
        .get("ofport")
        .and_then(Datum::as_atom)
        .and_then(Atom::as_integer);
    if ofport.is_none_or(|p| p < 0) {
        let error = row
            .get("error")
            .and_then(Datum::as_atom)
            .and_then(Atom::as_str);
        tracing::warn!(
            interface = port,
            error = error.unwrap_or(""),
            "ovs-vswitchd could not set the interface up (no OpenFlow port): see its log"
        );
    }
    Ok(())
}
