//! The wait for ACTIVE (`vif_plugging_is_fatal`), in Join: the L2 agent
//! needs a moment (the lab's OVS agent 0.25 to 3 s) to wire a port, and
//! Neutron says when it has only if asked. Every wait polls with backoff, but the
//! polls are shared: one `GET /ports?id=...` answers for every port
//! waited on at that moment, and a waiter that wakes shortly after
//! someone else's poll uses that answer. Twenty containers starting at
//! once cost a few polls a second, not twenty, on the Neutron every other
//! request waits on. The polls are counted apart from the driver's own
//! requests (`neutron.poll_ports`, in the scope of the call that sent it).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use kuryr_openstack::Query;
use kuryr_openstack::neutron::Port;
use tracing::info;

use super::super::{Driver, DriverError, Result};

/// When a wait's first poll goes out.
const FIRST_POLL: Duration = Duration::from_millis(250);
/// The longest gap between two polls of one wait.
const MAX_POLL_GAP: Duration = Duration::from_secs(1);
/// A poll that started at most this long before a waiter woke answers
/// for it too.
const FRESH_ENOUGH: Duration = Duration::from_millis(200);
/// Port IDs per poll (the query string stays under 2 KiB).
const PORTS_PER_POLL: usize = 40;

/// What the waits share.
#[derive(Debug, Default)]
pub(in crate::driver) struct ActiveWatch {
    state: std::sync::Mutex<WatchState>,
    /// Held by the one waiter polling for everyone.
    polling: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct WatchState {
    /// The ports waited on, with how many waits each (a retried call).
    waiting: HashMap<String, usize>,
    /// The last answer for each port waited on; `None`: gone from Neutron.
    seen: HashMap<String, Option<Port>>,
    /// When the last poll started.
    last_poll: Option<Instant>,
}

impl ActiveWatch {
    fn state(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, id: &str) {
        *self.state().waiting.entry(id.to_string()).or_default() += 1;
    }

    fn unregister(&self, id: &str) {
        let mut s = self.state();
        if let Some(n) = s.waiting.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                s.waiting.remove(id);
                s.seen.remove(id);
            }
        }
    }
}

impl Driver {
    /// Wait until Neutron reports the port ACTIVE, bounded by
    /// `vif_plugging_timeout`.
    pub(super) async fn wait_active(&self, port_id: &str) -> Result<Port> {
        let watch = &self.active_watch;
        watch.register(port_id);
        let outcome = self.wait_registered(port_id).await;
        watch.unregister(port_id);
        outcome
    }

    async fn wait_registered(&self, port_id: &str) -> Result<Port> {
        let started = Instant::now();
        let mut delay = FIRST_POLL;
        loop {
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(MAX_POLL_GAP);
            let woke = Instant::now();
            self.poll_unless_fresh(woke).await?;
            let seen = self.active_watch.state().seen.get(port_id).cloned();
            let status = match seen {
                Some(Some(port)) if port.status == "ACTIVE" => {
                    info!(
                        port = port_id,
                        ms = started.elapsed().as_millis() as u64,
                        "port active"
                    );
                    return Ok(port);
                }
                Some(Some(port)) => port.status,
                Some(None) => {
                    return Err(DriverError::NotFound(format!(
                        "Neutron port {port_id} was deleted while waiting for it to go ACTIVE"
                    )));
                }
                // Registered after the last poll started: the next one.
                None => "unknown".to_string(),
            };
            if started.elapsed() >= self.config.vif_plugging_timeout {
                return Err(DriverError::Timeout(format!(
                    "Neutron port {port_id} did not become ACTIVE within {}s (status {status}): \
                     is the Neutron L2 agent on host {:?} running?",
                    self.config.vif_plugging_timeout.as_secs(),
                    self.config.host_id
                )));
            }
        }
    }

    /// Poll every port waited on, unless a poll started shortly before
    /// `woke` (then its answer stands for this waiter too).
    async fn poll_unless_fresh(&self, woke: Instant) -> Result<()> {
        let watch = &self.active_watch;
        let _slot = watch.polling.lock().await;
        let fresh = watch
            .state()
            .last_poll
            .is_some_and(|t| t + FRESH_ENOUGH >= woke);
        if fresh {
            return Ok(());
        }
        let began = Instant::now();
        let ids: Vec<String> = {
            let mut s = watch.state();
            s.last_poll = Some(began);
            let mut ids: Vec<String> = s.waiting.keys().cloned().collect();
            ids.sort();
            ids
        };
        let mut answered: HashMap<String, Port> = HashMap::new();
        for chunk in ids.chunks(PORTS_PER_POLL) {
            let mut q = Query::new();
            for id in chunk {
                q = q.eq("id", id);
            }
            let polled = self.neutron.poll_ports(&q).await;
            let ports = match polled {
                Ok(p) => p,
                Err(e) => {
                    // The next waiter tries again.
                    watch.state().last_poll = None;
                    return Err(e.into());
                }
            };
            answered.extend(ports.into_iter().map(|p| (p.id.clone(), p)));
        }
        let asked: HashSet<&String> = ids.iter().collect();
        let mut s = watch.state();
        for id in asked {
            if s.waiting.contains_key(id) {
                let port = answered.remove(id);
                s.seen.insert(id.clone(), port);
            }
        }
        Ok(())
    }
}
