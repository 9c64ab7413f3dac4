//! Every Docker call answered within a bound, and run to its end whether
//! or not anyone still waits for it.
//!
//! [`Driver::execute_detached`] runs a call in a task of its own: a client
//! that hangs up (the managed plugin's client gives up after 30 s) no
//! longer drops the handler wherever it was. The caller waits at most the
//! call's bound ([`DriverConfig::call_timeout`]); past it the call is
//! *abandoned*: Docker gets an error naming what did not answer (the
//! Neutron or Keystone request in flight), and the handler, still
//! running, rolls back instead of finishing. The two cannot both happen:
//! a handler *commits* when its journaled steps succeed
//! ([`Driver::journaled`]), and a committed call is waited for (all that
//! is left is bookkeeping), while an abandoned one can no longer commit.
//! Handlers that delete (DeleteEndpoint, ReleaseAddress, DeleteNetwork)
//! have nothing to roll back: abandoned, they go on to their end, and a
//! retry finds the work done.
//!
//! [`DriverConfig::call_timeout`]: super::DriverConfig::call_timeout

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use kuryr_openstack::InFlight;
use tokio::sync::watch;
use tracing::{info, warn};

use super::{Driver, DriverError, Result};
use crate::protocol::{Method, PluginCall, Response};

tokio::task_local! {
    /// The detached call this task runs, if any.
    static CALL: Arc<CallState>;
}

const RUNNING: u8 = 0;
const COMMITTED: u8 = 1;
const ABANDONED: u8 = 2;

/// Whether a detached call may still finish, or must roll back.
#[derive(Debug)]
pub(super) struct CallState {
    state: AtomicU8,
    abandoned: watch::Sender<bool>,
}

impl CallState {
    fn new() -> CallState {
        CallState {
            state: AtomicU8::new(RUNNING),
            abandoned: watch::channel(false).0,
        }
    }

    /// The call's changes stand: it will be answered with its outcome.
    /// False if it was abandoned (Docker has its error already).
    pub(super) fn commit(&self) -> bool {
        match self
            .state
            .compare_exchange(RUNNING, COMMITTED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == COMMITTED,
        }
    }

    /// Give up on the call unless it committed. True if abandoned.
    fn abandon(&self) -> bool {
        let abandoned = self
            .state
            .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if abandoned {
            self.abandoned.send_replace(true);
        }
        abandoned
    }

    pub(super) fn is_abandoned(&self) -> bool {
        self.state.load(Ordering::Acquire) == ABANDONED
    }

    /// Resolves once the call is abandoned (never, if it is not).
    pub(super) async fn abandoned(&self) {
        let mut rx = self.abandoned.subscribe();
        let _ = rx.wait_for(|a| *a).await;
        // The sender lives as long as `self`: a closed channel cannot
        // happen while we borrow it; wait forever rather than spin.
        if !*rx.borrow() {
            std::future::pending::<()>().await;
        }
    }
}

/// The detached call this task runs, if it runs one.
pub(super) fn current_call() -> Option<Arc<CallState>> {
    CALL.try_with(Arc::clone).ok()
}

impl Driver {
    /// How long Docker may wait for an answer to `method`. Join also
    /// waits for the port to become ACTIVE when configured to (dockerd
    /// creates a network's endpoints one at a time, but joins in parallel).
    pub fn call_bound(&self, method: Method) -> Duration {
        let base = self.config.call_timeout;
        if method == Method::Join && self.config.vif_plugging_is_fatal {
            base + self.config.vif_plugging_timeout
        } else {
            base
        }
    }

    /// [`Driver::execute`] in a task of its own, answered within
    /// [`Driver::call_bound`]: see the module documentation.
    pub async fn execute_detached(self: Arc<Self>, call: PluginCall) -> Result<Response> {
        let method = call.method();
        if method.is_stateless() {
            return self.execute(call).await;
        }
        let bound = self.call_bound(method);
        let state = Arc::new(CallState::new());
        let watch = Arc::new(InFlight::default());
        let driver = self.clone();
        let work =
            kuryr_openstack::watched(watch.clone(), async move { driver.execute(call).await });
        let mut task = tokio::spawn(CALL.scope(state.clone(), work));
        let joined = match tokio::time::timeout(bound, &mut task).await {
            Ok(joined) => joined,
            Err(_) if state.abandon() => {
                let waiting = watch
                    .describe()
                    .unwrap_or_else(|| "no Neutron or Keystone request was in flight".into());
                warn!(call = %method, bound_s = bound.as_secs(), %waiting, "no outcome in time: answering with an error; the call rolls back");
                tokio::spawn(async move {
                    match task.await {
                        Ok(Ok(_)) => info!(call = %method, "abandoned call finished"),
                        Ok(Err(e)) => info!(call = %method, error = %e, "abandoned call ended"),
                        Err(e) => warn!(call = %method, error = %e, "abandoned call panicked"),
                    }
                });
                let after = if rolls_back(method) {
                    "what it changed is being undone"
                } else {
                    "it goes on in the background"
                };
                return Err(DriverError::Timeout(format!(
                    "{method} did not finish within {:.1} s, waiting for: {waiting}; {after}. \
                     Retry once that answers",
                    bound.as_secs_f64()
                )));
            }
            // Committed just now: its outcome is a moment away.
            Err(_) => task.await,
        };
        joined.unwrap_or_else(|e| {
            Err(DriverError::Internal(format!(
                "the {method} handler stopped: {e}"
            )))
        })
    }
}

/// Calls that make things: abandoned, they roll back (their journaled
/// steps never commit). The others only remove or read, and run on.
fn rolls_back(method: Method) -> bool {
    matches!(
        method,
        Method::CreateNetwork
            | Method::AllocateNetwork
            | Method::CreateEndpoint
            | Method::RequestPool
            | Method::RequestAddress
            | Method::ProgramExternalConnectivity
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_and_abandon_exclude_each_other() {
        let s = CallState::new();
        assert!(s.commit());
        assert!(s.commit(), "commits twice (nested journals)");
        assert!(!s.abandon());
        let s = CallState::new();
        assert!(s.abandon());
        assert!(!s.commit());
        assert!(s.is_abandoned());
    }

    #[tokio::test]
    async fn abandonment_wakes_the_waiter() {
        let s = Arc::new(CallState::new());
        let w = s.clone();
        let waiter = tokio::spawn(async move { w.abandoned().await });
        tokio::task::yield_now().await;
        assert!(s.abandon());
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
    }
}
