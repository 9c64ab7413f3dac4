//! Helpers every lab test of the workspace needs, defined once: the lab's
//! accounts and clients (from the variables `lab/env` exports), unique
//! names, address slots no two running tests share, and polling; for the
//! OVS binding's tests, a private ovsdb-server ([`OvsdbServer`]); test
//! certificate authorities with TLS endpoints on loopback ([`tls`]).
//!
//! Dev-only: both crates take it as a dev-dependency; nothing here is
//! compiled into a binary.

mod env;
mod ovsdb;
mod slots;
pub mod tls;

pub use env::{
    Account, account, auth_url, host, lab_dir, neutron, neutron_with_timeout, password_credential,
    random_u64, session, unique, var,
};
pub use ovsdb::OvsdbServer;
pub use slots::Slot;

use std::future::Future;
use std::time::{Duration, Instant};

/// Poll `f` until it returns `Some`, every 300 ms, and return that value;
/// panic naming `what` once `timeout` has passed.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {:.0} s waiting for {what}",
            timeout.as_secs_f64()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
