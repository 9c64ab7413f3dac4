//! One connection to ovsdb-server and its JSON-RPC 1.0 calls.
//!
//! A task owns the socket: it writes the requests [`Client`] hands it
//! (numbering them), matches responses to callers by id, answers the
//! server's `echo` requests at any time (ovsdb-server probes idle TCP
//! clients this way and drops those that stay silent), and forwards
//! `update` notifications to the [`Monitor`] they belong to. Cloning a
//! [`Client`] shares the connection; the task ends, closing the socket,
//! when the last clone and monitor are gone or the server hangs up.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use super::OvsdbError;
use super::framing::Framer;
use super::ops::{self, Op, OpResult};
use super::value::{Row, row_from_json};

type Reply = Result<Value, OvsdbError>;

/// A handle on one connection. Every call is bounded by the client's
/// timeout (`None`: unbounded).
#[derive(Debug, Clone)]
pub struct Client {
    tx: mpsc::UnboundedSender<Command>,
    target: Arc<str>,
    timeout: Option<Duration>,
    monitors: Arc<AtomicU64>,
}

/// What a [`Client`] asks the connection task to do.
#[derive(Debug)]
enum Command {
    /// Send a request; its response goes to `reply`. `monitor`: register
    /// this monitor id for `update` notifications first.
    Call {
        method: &'static str,
        params: Value,
        reply: oneshot::Sender<Reply>,
        monitor: Option<(String, mpsc::UnboundedSender<Value>)>,
    },
    /// Forget a monitor and tell the server, without waiting for it.
    Cancel { monitor: String },
}

/// Run `fut` for at most `limit`.
pub(super) async fn bounded<T>(
    limit: Option<Duration>,
    fut: impl Future<Output = Result<T, OvsdbError>>,
    timed_out: impl FnOnce(Duration) -> OvsdbError,
) -> Result<T, OvsdbError> {
    match limit {
        None => fut.await,
        Some(d) => tokio::time::timeout(d, fut)
            .await
            .unwrap_or_else(|_| Err(timed_out(d))),
    }
}

impl Client {
    /// Connect to `target` (`unix:<path>`), within `timeout`.
    pub async fn connect(target: &str, timeout: Option<Duration>) -> Result<Client, OvsdbError> {
        let path = target
            .strip_prefix("unix:")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| OvsdbError::Address(target.to_string()))?;
        let connect = async {
            UnixStream::connect(Path::new(path))
                .await
                .map_err(|source| OvsdbError::Connect {
                    target: target.to_string(),
                    source,
                })
        };
        let stream = bounded(timeout, connect, |after| OvsdbError::Timeout {
            what: "connect".into(),
            target: target.to_string(),
            after,
        })
        .await?;
        Ok(Client::from_stream(stream, target, timeout))
    }

    /// A client over an already open stream (`target` names it in errors).
    /// Spawns the connection task on the current tokio runtime.
    pub fn from_stream<S>(stream: S, target: &str, timeout: Option<Duration>) -> Client
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(stream, rx));
        Client {
            tx,
            target: target.into(),
            timeout,
            monitors: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Whether the connection is gone (closed by the server, or broken).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    fn timeout_error(&self, what: &str, after: Duration) -> OvsdbError {
        OvsdbError::Timeout {
            what: what.to_string(),
            target: self.target.to_string(),
            after,
        }
    }

    async fn call(
        &self,
        method: &'static str,
        params: Value,
        monitor: Option<(String, mpsc::UnboundedSender<Value>)>,
    ) -> Reply {
        let lost = || OvsdbError::Disconnected(format!("{method}: the connection is closed"));
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Call {
            method,
            params,
            reply,
            monitor,
        };
        self.tx.send(cmd).map_err(|_| lost())?;
        let answer = async { rx.await.unwrap_or_else(|_| Err(lost())) };
        bounded(self.timeout, answer, |after| {
            self.timeout_error(method, after)
        })
        .await
    }

    /// `transact` on database `db`: all of `ops` atomically, or none.
    /// The first failed operation (or the commit) is the error.
    pub async fn transact(&self, db: &str, ops: &[Op]) -> Result<Vec<OpResult>, OvsdbError> {
        let mut params = vec![json!(db)];
        params.extend(ops.iter().map(Op::to_json));
        let reply = self.call("transact", Value::Array(params), None).await?;
        ops::results(ops, reply)
    }

    /// `echo`: a round trip, to check that the server answers.
    pub async fn echo(&self) -> Result<(), OvsdbError> {
        let reply = self.call("echo", json!(["kuryr"]), None).await?;
        match reply {
            Value::Array(a) if a == [json!("kuryr")] => Ok(()),
            other => Err(OvsdbError::Protocol(format!("echo answered {other}"))),
        }
    }

    /// `monitor` `columns` of each `(table, columns)` of `db`: the rows now
    /// (the initial contents), then every insert, modify and delete, until
    /// the [`Monitor`] is dropped.
    pub async fn monitor(
        &self,
        db: &str,
        tables: &[(&str, &[&str])],
    ) -> Result<Monitor, OvsdbError> {
        let id = format!(
            "kuryr-{}",
            self.monitors.fetch_add(1, Ordering::Relaxed) + 1
        );
        let requests: Map<String, Value> = tables
            .iter()
            .map(|(table, columns)| (table.to_string(), json!({ "columns": columns })))
            .collect();
        let (tx, updates) = mpsc::unbounded_channel();
        let params = json!([db, id, requests]);
        let initial = self.call("monitor", params, Some((id.clone(), tx))).await?;
        let Value::Object(initial) = initial else {
            return Err(OvsdbError::Protocol(format!("monitor answered {initial}")));
        };
        Ok(Monitor {
            id,
            initial: TableUpdates(initial),
            updates,
            client: self.clone(),
        })
    }
}

/// Changes of monitored tables: `{table: {uuid: {"old": row, "new": row}}}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableUpdates(pub Map<String, Value>);

impl TableUpdates {
    /// The rows of `table` as they are after this update, by UUID;
    /// `None` for a deleted row. Columns not monitored, or unchanged in a
    /// modification, are absent.
    pub fn rows(&self, table: &str) -> Result<Vec<(String, Option<Row>)>, OvsdbError> {
        let Some(rows) = self.0.get(table) else {
            return Ok(Vec::new());
        };
        let rows = rows
            .as_object()
            .ok_or_else(|| OvsdbError::Protocol(format!("table update {rows}")))?;
        rows.iter()
            .map(|(uuid, change)| {
                let new = match change.get("new") {
                    None => None,
                    Some(r) => Some(row_from_json(r).ok_or_else(|| {
                        OvsdbError::Protocol(format!("undecodable row update {r}"))
                    })?),
                };
                Ok((uuid.clone(), new))
            })
            .collect()
    }
}

/// A running `monitor`; cancelled on the server when dropped.
#[derive(Debug)]
pub struct Monitor {
    id: String,
    initial: TableUpdates,
    updates: mpsc::UnboundedReceiver<Value>,
    client: Client,
}

impl Monitor {
    /// The monitored rows as they were when the monitor started.
    pub fn initial(&self) -> &TableUpdates {
        &self.initial
    }

    /// The next change, as the server sent it. Not bounded in time: the
    /// caller decides how long to wait.
    pub async fn next(&mut self) -> Result<TableUpdates, OvsdbError> {
        match self.updates.recv().await {
            Some(Value::Object(u)) => Ok(TableUpdates(u)),
            Some(other) => Err(OvsdbError::Protocol(format!("monitor update {other}"))),
            None => Err(OvsdbError::Disconnected(format!(
                "monitor {}: the connection is closed",
                self.id
            ))),
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.client.tx.send(Command::Cancel {
            monitor: std::mem::take(&mut self.id),
        });
    }
}

/// A request waiting for its response.
#[derive(Debug)]
struct Pending {
    method: &'static str,
    reply: oneshot::Sender<Reply>,
    /// The monitor this request starts, forgotten if it fails.
    monitor: Option<String>,
}

/// The connection task's state, but for the read side.
struct Conn<W> {
    wr: WriteHalf<W>,
    next_id: u64,
    pending: HashMap<u64, Pending>,
    monitors: HashMap<String, mpsc::UnboundedSender<Value>>,
}

/// The connection task: until the clients are gone or the stream fails.
async fn run<S>(stream: S, mut rx: mpsc::UnboundedReceiver<Command>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, wr) = tokio::io::split(stream);
    let mut conn = Conn {
        wr,
        next_id: 0,
        pending: HashMap::new(),
        monitors: HashMap::new(),
    };
    let mut framer = Framer::default();
    let reason = loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => {
                    if let Err(e) = conn.command(cmd).await {
                        break reason(e);
                    }
                }
                None => return,
            },
            read = rd.read_buf(framer.buffer()) => match read {
                Ok(0) if framer.in_message() => break "closed in the middle of a message".into(),
                Ok(0) => break "ovsdb-server closed the connection".into(),
                Ok(_) => {
                    if let Err(e) = conn.receive(&mut framer).await {
                        break reason(e);
                    }
                }
                Err(e) => break format!("read: {e}"),
            },
        }
    };
    tracing::debug!(reason, "OVSDB connection ended");
    rx.close();
    conn.fail_all(&reason);
}

/// Why the connection ended, for the calls it fails.
fn reason(e: OvsdbError) -> String {
    match e {
        OvsdbError::Disconnected(why) => why,
        other => other.to_string(),
    }
}

impl<W: AsyncWrite> Conn<W> {
    async fn send(&mut self, msg: &Value) -> Result<(), OvsdbError> {
        let bytes = serde_json::to_vec(msg).expect("JSON values serialize");
        self.wr
            .write_all(&bytes)
            .await
            .map_err(|e| OvsdbError::Disconnected(format!("write: {e}")))
    }

    async fn command(&mut self, cmd: Command) -> Result<(), OvsdbError> {
        self.next_id += 1;
        let id = self.next_id;
        let (method, params) = match cmd {
            Command::Call {
                method,
                params,
                reply,
                monitor,
            } => {
                let monitor = monitor.map(|(name, tx)| {
                    self.monitors.insert(name.clone(), tx);
                    name
                });
                let pending = Pending {
                    method,
                    reply,
                    monitor,
                };
                self.pending.insert(id, pending);
                (method, params)
            }
            // The response is not waited for (no pending entry).
            Command::Cancel { monitor } => {
                self.monitors.remove(&monitor);
                ("monitor_cancel", json!([monitor]))
            }
        };
        self.send(&json!({"method": method, "params": params, "id": id}))
            .await
    }

    /// Handle every complete message read so far.
    async fn receive(&mut self, framer: &mut Framer) -> Result<(), OvsdbError> {
        while let Some(msg) = framer.next_message()? {
            let Value::Object(msg) = msg else {
                return Err(OvsdbError::Protocol(format!("a non-object message {msg}")));
            };
            match msg.get("method").and_then(Value::as_str) {
                Some(method) => self.request(method, &msg).await?,
                None => self.response(msg)?,
            }
        }
        Ok(())
    }

    /// A request or notification from the server.
    async fn request(&mut self, method: &str, msg: &Map<String, Value>) -> Result<(), OvsdbError> {
        let id = msg.get("id").cloned().unwrap_or(Value::Null);
        let params = msg.get("params").cloned().unwrap_or(json!([]));
        match method {
            "echo" => {
                self.send(&json!({"id": id, "result": params, "error": null}))
                    .await
            }
            "update" => {
                self.update(params);
                Ok(())
            }
            // Notifications kuryr does not ask for (locks, update2, ...).
            _ if id.is_null() => Ok(()),
            _ => {
                let error = json!({"error": "unknown method", "details": method});
                self.send(&json!({"id": id, "result": null, "error": error}))
                    .await
            }
        }
    }

    /// `update` notification: `[monitor id, table updates]`.
    fn update(&mut self, params: Value) {
        let Value::Array(mut p) = params else { return };
        if p.len() != 2 {
            return;
        }
        let updates = p.pop().unwrap_or_default();
        let Some(name) = p[0].as_str() else { return };
        if let Some(tx) = self.monitors.get(name)
            && tx.send(updates).is_err()
        {
            self.monitors.remove(name);
        }
    }

    /// A response to one of our requests.
    fn response(&mut self, msg: Map<String, Value>) -> Result<(), OvsdbError> {
        let id = msg.get("id").and_then(Value::as_u64).ok_or_else(|| {
            OvsdbError::Protocol(format!("a response with no request id: {msg:?}"))
        })?;
        // Unknown ids: a monitor_cancel, or a call whose caller gave up.
        let Some(p) = self.pending.remove(&id) else {
            return Ok(());
        };
        let reply = match msg.get("error") {
            None | Some(Value::Null) => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
            Some(err) => {
                if let Some(m) = &p.monitor {
                    self.monitors.remove(m);
                }
                Err(rpc_error(p.method, err))
            }
        };
        let _ = p.reply.send(reply);
        Ok(())
    }

    fn fail_all(&mut self, why: &str) {
        for (_, p) in self.pending.drain() {
            let _ = p.reply.send(Err(OvsdbError::Disconnected(format!(
                "{}: {why}",
                p.method
            ))));
        }
        self.monitors.clear();
    }
}

/// A JSON-RPC error: `{"error": "...", "details": "..."}`, or any value.
fn rpc_error(method: &str, err: &Value) -> OvsdbError {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let (error, details) = match err {
        Value::Object(o) => (
            o.get("error").map_or_else(|| err.to_string(), text),
            o.get("details").map(text),
        ),
        other => (text(other), None),
    };
    OvsdbError::Rpc {
        method: method.to_string(),
        error,
        details,
    }
}
