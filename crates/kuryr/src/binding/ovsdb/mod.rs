//! A small client of the Open vSwitch database (OVSDB, RFC 7047) over its
//! unix socket, so that binding a port to OVS needs neither the
//! `ovs-vsctl` binary (absent from the managed plugin's rootfs: only the
//! socket is mounted in) nor a fork per bind.
//!
//! Layers, bottom up:
//! - `framing`: the byte stream split into JSON messages (OVSDB sends
//!   them back to back, undelimited);
//! - `value`, `ops`: OVSDB's value encoding (`["uuid", ..]`,
//!   `["named-uuid", ..]`, `["set", ..]`, `["map", ..]`) and the `transact`
//!   operations, typed;
//! - `client`: one connection, its JSON-RPC requests (`transact`,
//!   `monitor`, `monitor_cancel`, `echo`) multiplexed by id, the server's
//!   `echo` requests answered, `update` notifications routed to their
//!   monitor; every call bounded by the client's timeout;
//! - `vswitch`: what the binder does with it on the `Open_vSwitch`
//!   schema, `ovs-vsctl --may-exist add-port ... -- set Interface ...` and
//!   `--if-exists del-port ...`, with the same semantics, and the wait for
//!   ovs-vswitchd that ovs-vsctl does unless `--no-wait`.
//!
//! Only `monitor` (RFC 7047) is implemented, not the `monitor_cond`
//! extension: kuryr monitors one row of one column (`cur_cfg`), where
//! conditions and `update2` diffs would buy nothing.
//!
//! Cost of a bind's OVS step (add-port of a new port with its
//! `external_ids`, no wait) against a private ovsdb-server on the
//! project's 2-core dev machine, debug build: medians of 50, the range over
//! six runs (`ovsdb_step_timing` in this module's tests):
//!
//! | | add-port | del-port |
//! |---|---|---|
//! | fork of `ovs-vsctl` 3.1 (before) | 5.3–5.5 ms | 4.1–6.3 ms |
//! | this client, fresh connection | 0.64–0.71 ms | |
//! | this client, open connection (the binder's case after its first call) | 0.32–0.33 ms | 0.22 ms |

mod client;
mod framing;
mod ops;
mod value;
mod vswitch;

use std::time::Duration;

pub use client::{Client, Monitor, TableUpdates};
pub use ops::{Cond, Mutation, Op, OpResult};
pub use value::{Atom, Datum, Row};
pub use vswitch::{DB, add_port, del_ports, interfaces_with};

/// Where ovsdb-server listens when nothing else is said: ovs-vsctl's
/// default, `unix:$OVS_RUNDIR/db.sock`, with Debian's and Red Hat's rundir.
pub const DEFAULT_RUNDIR: &str = crate::paths::OVS_RUNDIR;

/// `unix:$OVS_RUNDIR/db.sock`, `OVS_RUNDIR` defaulting to
/// [`DEFAULT_RUNDIR`], as ovs-vsctl without `--db`.
pub fn default_target() -> String {
    let rundir = std::env::var("OVS_RUNDIR")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| DEFAULT_RUNDIR.to_string());
    format!("unix:{rundir}/db.sock")
}

/// Why an OVSDB call or a vswitch operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OvsdbError {
    /// The database address is not `unix:<path>`.
    #[error("unsupported OVSDB address {0:?}: expected unix:<path to db.sock>")]
    Address(String),
    /// The socket could not be connected to.
    #[error("cannot connect to ovsdb-server at {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: std::io::Error,
    },
    /// The server did not answer in time.
    #[error(
        "{what}: no answer from ovsdb-server at {target} within {}",
        secs(after)
    )]
    Timeout {
        what: String,
        target: String,
        after: Duration,
    },
    /// The connection broke, or was closed by the server.
    #[error("connection to ovsdb-server lost: {0}")]
    Disconnected(String),
    /// The server sent something that is not OVSDB JSON-RPC.
    #[error("unexpected data from ovsdb-server: {0}")]
    Protocol(String),
    /// The server refused a request as a whole (unknown database, bad
    /// syntax, ...).
    #[error("ovsdb-server refused {method}: {error}{}", details_suffix(details))]
    Rpc {
        method: String,
        error: String,
        details: Option<String>,
    },
    /// A transaction was aborted: operation `index` (`op`), or the commit
    /// (`op` is `"commit"`, e.g. a constraint violation), failed.
    #[error(
        "transaction failed at operation {index} ({op}): {error}{}",
        details_suffix(details)
    )]
    Operation {
        index: usize,
        op: &'static str,
        error: String,
        details: Option<String>,
    },
    /// The bridge to add a port to does not exist.
    #[error("no bridge named {0}")]
    NoBridge(String),
    /// add-port found the port on another bridge (as `ovs-vsctl
    /// --may-exist add-port`, kuryr does not move it).
    #[error(
        "cannot add port {port} to bridge {bridge}: a port named {port} is already on \
         bridge {other}"
    )]
    PortOnOtherBridge {
        port: String,
        bridge: String,
        other: String,
    },
    /// add-port found rows under the port's name it cannot adopt.
    #[error("cannot add port {port}: {reason}")]
    Conflict { port: String, reason: String },
    /// Every attempt found the database changed since it was read.
    #[error("{what}: the database changed under every one of {attempts} attempts")]
    Contention { what: String, attempts: u32 },
    /// ovs-vswitchd did not apply the transaction in time.
    #[error(
        "ovs-vswitchd did not apply the change within {} (cur_cfg {cur_cfg}, waiting for \
         next_cfg {next_cfg}): is ovs-vswitchd running?",
        secs(after)
    )]
    ReloadTimeout {
        next_cfg: i64,
        cur_cfg: i64,
        after: Duration,
    },
}

impl OvsdbError {
    /// The OS error behind a failed connect, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            OvsdbError::Connect { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Whether the connection this came from is unusable (or suspect):
    /// the caller should drop it and connect anew.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            OvsdbError::Disconnected(_) | OvsdbError::Timeout { .. } | OvsdbError::Protocol(_)
        )
    }
}

fn secs(d: &Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

fn details_suffix(details: &Option<String>) -> String {
    match details {
        Some(d) if !d.is_empty() => format!(" ({d})"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
