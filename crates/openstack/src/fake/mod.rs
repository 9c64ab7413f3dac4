//! An in-process fake Neutron, for fast unit tests of code that talks to
//! Neutron and for fuzzing it (feature `fake`; never in a release binary).
//!
//! It sits where HTTP would: a [`Session`] built with
//! [`FakeNeutron::session`] hands every request (method, path, query,
//! JSON body) to [`FakeNeutron`] instead of the network, so the typed
//! client, its error decoding and its accounting run exactly as against a
//! real Neutron. The fake keeps networks, subnets, subnet pools, ports,
//! security groups and trunks as JSON objects with Neutron's rules where
//! callers depend on them: list filters and tag filters, IP allocation from
//! allocation pools (409 `IpAddressAlreadyAllocated`), subnets allocated
//! from pools without overlap, "in use" refusals on delete (409, and the
//! 400 `SubnetPoolDeleteError` Zed gives for pools), `PortBound` on a MAC
//! change, duplicate trunk segmentation ids. Ports bound to a host go
//! ACTIVE at once, as if an L2 agent plugged them (see
//! [`FakeNeutron::set_agent`]).
//!
//! Faults ([`Fault`]) are injected per method and path prefix: a refusal
//! with any status, a stall, a reply lost or late after the write was
//! done. The session's request timeout applies to the fake as to HTTP.
//!
//! The lab tests use the real Neutron; this fake only answers what the
//! driver asks and is checked against the lab's behaviour by those tests.

mod actions;
mod addr;
mod delete;
mod ports;
mod resources;
mod store;
mod subnets;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

pub use store::Refusal;
use store::{Outcome, Store};

use crate::neutron::Neutron;
use crate::session::Session;

/// What an injected fault does to the requests it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this error and change nothing.
    Refuse { status: u16, kind: String },
    /// Wait this long, then handle the request normally.
    Stall(Duration),
    /// Do what was asked, then lose the answer (the caller sees no reply).
    LoseReply,
    /// Do what was asked, then wait this long before answering (a caller
    /// whose timeout is shorter gives up on a write that was done).
    SlowReply(Duration),
}

/// A fault for requests of `method` whose path starts with `path`
/// (`"/ports"` matches `/ports` and `/ports/<id>/tags`): the first `skip`
/// matching requests pass, the next `times` get `kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub method: String,
    pub path: String,
    pub skip: u32,
    pub times: u32,
    pub kind: FaultKind,
}

impl Fault {
    /// The next matching request is refused with `status` / `kind`.
    pub fn refuse(method: &str, path: &str, status: u16, kind: &str) -> Fault {
        Fault {
            method: method.into(),
            path: path.into(),
            skip: 0,
            times: 1,
            kind: FaultKind::Refuse {
                status,
                kind: kind.into(),
            },
        }
    }

    /// The next matching request is done but its answer lost.
    pub fn lose_reply(method: &str, path: &str) -> Fault {
        Fault {
            method: method.into(),
            path: path.into(),
            skip: 0,
            times: 1,
            kind: FaultKind::LoseReply,
        }
    }

    /// The next matching request waits `d` before it is handled (no
    /// change is made before then).
    pub fn stall(method: &str, path: &str, d: Duration) -> Fault {
        Fault {
            method: method.into(),
            path: path.into(),
            skip: 0,
            times: 1,
            kind: FaultKind::Stall(d),
        }
    }

    /// The next matching request is done at once, its answer comes `d`
    /// later.
    pub fn slow_reply(method: &str, path: &str, d: Duration) -> Fault {
        Fault {
            method: method.into(),
            path: path.into(),
            skip: 0,
            times: 1,
            kind: FaultKind::SlowReply(d),
        }
    }

    /// Match `n` requests in a row rather than one.
    pub fn times(mut self, n: u32) -> Fault {
        self.times = n;
        self
    }

    /// Let `n` matching requests pass first.
    pub fn after(mut self, n: u32) -> Fault {
        self.skip = n;
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && path.starts_with(&self.path)
    }
}

/// How the fake answered one request.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Status and JSON body (an error status carries `NeutronError`).
    Reply(u16, Vec<u8>),
    /// The request was acted on, the reply lost.
    Lost,
}

/// The fake Neutron. Cheap to create; share it with [`Arc`].
#[derive(Debug, Default)]
pub struct FakeNeutron {
    store: Mutex<Store>,
    faults: Mutex<Vec<Fault>>,
    log: Mutex<Vec<String>>,
    no_agent: AtomicBool,
}

/// The extensions the fake announces (what the driver checks at start).
const EXTENSIONS: &[&str] = &[
    "standard-attr-tag",
    "subnet_allocation",
    "allowed-address-pairs",
    "binding",
    "trunk",
    "trunk-details",
    "security-group",
    "tag-ports-during-bulk-creation",
];

/// The project every object of the fake belongs to.
pub const PROJECT: &str = "fa4e0000000040008000000000000001";

impl FakeNeutron {
    pub fn new() -> Arc<FakeNeutron> {
        Arc::new(FakeNeutron::default())
    }

    /// A session whose requests this fake answers (no Keystone involved).
    pub fn session(self: &Arc<Self>) -> Session {
        Session::fake(self.clone())
    }

    /// A client whose requests time out after `timeout`, as
    /// `[neutron] timeout` makes them.
    pub fn client_with_timeout(self: &Arc<Self>, timeout: Duration) -> Neutron {
        Neutron::new(Session::fake_with_timeout(self.clone(), Some(timeout)))
    }

    /// A Neutron client on [`FakeNeutron::session`].
    pub fn client(self: &Arc<Self>) -> Neutron {
        Neutron::new(self.session())
    }

    /// Whether ports bound to a host go ACTIVE at once (default) or stay
    /// DOWN, as with no L2 agent on that host.
    pub fn set_agent(&self, plugs: bool) {
        self.no_agent.store(!plugs, Ordering::Relaxed);
    }

    /// The agent wires, late, every port bound to a host: they go ACTIVE
    /// (after [`FakeNeutron::set_agent`]`(false)` kept them DOWN).
    pub fn wire_bound_ports(&self) {
        let mut store = lock(&self.store);
        let bound: Vec<String> = store
            .all("ports")
            .filter(|p| {
                p.get("binding:host_id")
                    .and_then(Value::as_str)
                    .is_some_and(|h| !h.is_empty())
            })
            .filter_map(|p| p.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        for id in bound {
            if let Some(p) = store.get_mut("ports", &id) {
                p.insert("status".into(), json!("ACTIVE"));
            }
        }
    }

    /// Act as a newer Neutron with the `tag-creation` extension: tags
    /// are taken in every create request.
    pub fn set_tag_creation(&self, on: bool) {
        lock(&self.store).tag_creation = on;
    }

    /// Add a fault; faults are tried in the order they were added.
    pub fn inject(&self, fault: Fault) {
        lock(&self.faults).push(fault);
    }

    /// Every request so far, as `METHOD /path`.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.log).clone()
    }

    /// The objects of a collection (`networks`, `ports`, ...).
    pub fn objects(&self, collection: &str) -> Vec<Value> {
        lock(&self.store).list(collection, &[])
    }

    /// How many objects a collection holds.
    pub fn count(&self, collection: &str) -> usize {
        lock(&self.store).count(collection)
    }

    /// Create an object directly, as another user of the cloud would
    /// (`collection` as in the URL, `body` as the create request's inner
    /// object); returns it.
    pub fn seed(&self, collection: &str, body: Value) -> Value {
        let path = format!("/{collection}");
        let (key, _) = resources::keys(collection).expect("a collection the fake serves");
        let agent = !self.no_agent.load(Ordering::Relaxed);
        let mut store = lock(&self.store);
        match resources::route(&mut store, agent, "POST", &path, &json!({ key: body })) {
            Ok(v) => v[key].clone(),
            Err(e) => panic!("seeding {collection}: {}", e.message),
        }
    }

    /// Answer one request.
    pub(crate) async fn handle(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        if_match: Option<u64>,
    ) -> Answer {
        lock(&self.log).push(format!("{method} {path}"));
        let fault = self.take_fault(method, path);
        match fault {
            Some(FaultKind::Refuse { status, kind }) => {
                let r = Refusal::new(status, &kind, "injected fault");
                return Answer::Reply(status, r.body().to_string().into_bytes());
            }
            Some(FaultKind::Stall(d)) => tokio::time::sleep(d).await,
            _ => {}
        }
        let outcome = match self.precondition(path, if_match) {
            Err(r) => Err(r),
            Ok(()) => self.act(method, path, query, body),
        };
        match fault {
            Some(FaultKind::LoseReply) => return Answer::Lost,
            Some(FaultKind::SlowReply(d)) => tokio::time::sleep(d).await,
            _ => {}
        }
        match outcome {
            Ok(Value::Null) => Answer::Reply(204, Vec::new()),
            Ok(v) => Answer::Reply(
                if method == "POST" { 201 } else { 200 },
                v.to_string().into_bytes(),
            ),
            Err(r) => Answer::Reply(r.status, r.body().to_string().into_bytes()),
        }
    }

    fn act(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Outcome {
        let mut store = lock(&self.store);
        match (method, path) {
            ("GET", "/extensions") => {
                let newer = store.tag_creation.then_some(&"tag-creation");
                Ok(json!({"extensions": EXTENSIONS
                    .iter()
                    .chain(newer)
                    .map(|a| json!({"alias": a, "name": a, "description": ""}))
                    .collect::<Vec<_>>()}))
            }
            ("GET", "/agents") => Ok(json!({"agents": []})),
            ("GET", _) if resources::keys(&path[1..]).is_some() => {
                let coll = &path[1..];
                let (_, list_key) = resources::keys(coll).unwrap_or_default();
                Ok(json!({ list_key: store.list(coll, query) }))
            }
            _ => {
                let agent = !self.no_agent.load(Ordering::Relaxed);
                resources::route(
                    &mut store,
                    agent,
                    method,
                    path,
                    body.unwrap_or(&Value::Null),
                )
            }
        }
    }

    /// `If-Match: revision_number=N` on `/coll/id`: 412 unless the object
    /// is still at revision N.
    fn precondition(&self, path: &str, if_match: Option<u64>) -> Result<(), Refusal> {
        let Some(want) = if_match else {
            return Ok(());
        };
        let mut segs = path.trim_start_matches('/').split('/');
        let (Some(coll), Some(id)) = (segs.next(), segs.next()) else {
            return Ok(());
        };
        let store = lock(&self.store);
        let have = store
            .get(coll, id)
            .and_then(|o| o.get("revision_number")?.as_u64());
        match have {
            Some(have) if have != want => Err(Refusal::new(
                412,
                "PreconditionFailed",
                format!("Constraint revision_number={want} not met: the resource is at {have}"),
            )),
            _ => Ok(()),
        }
    }

    fn take_fault(&self, method: &str, path: &str) -> Option<FaultKind> {
        let mut faults = lock(&self.faults);
        let i = faults.iter().position(|f| f.matches(method, path))?;
        let f = &mut faults[i];
        if f.skip > 0 {
            f.skip -= 1;
            return None;
        }
        let kind = f.kind.clone();
        f.times = f.times.saturating_sub(1);
        if f.times == 0 {
            faults.remove(i);
        }
        Some(kind)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
