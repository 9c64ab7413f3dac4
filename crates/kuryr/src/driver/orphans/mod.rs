//! Orphan collection: what a crash, a lost call or a failed cleanup left
//! that no Docker object explains, found from what this node can see and
//! removed, each with the reason logged. It runs at start-up and every
//! [`DriverConfig::orphan_interval`] ([`Driver::collect_orphans_forever`]).
//!
//! It never reads Docker's API from a request handler (dockerd may be
//! waiting on this very driver; the managed plugin cannot reach dockerd at
//! all): only this background pass does, when configured, and never
//! touches what a user made or what another node may still use: tags,
//! names and descriptions say what is kuryr's and which node made it.
//!
//! - [`ports`]: kuryr's ports of this node with no live endpoint: made by
//!   RequestAddress and never claimed, or whose endpoint is gone (its
//!   ReleaseAddress lost while the driver was down). Liveness is what the
//!   node sees: the endpoint's host link (veth mode), the VM port's
//!   address pairs or trunk (nested modes);
//! - [`host`]: host links and OVS interfaces kuryr made whose Neutron port
//!   is gone;
//! - [`made`]: networks made on this host and never tagged (a crash
//!   between create and tag), subnet pools made on this host that no
//!   subnet uses, `--expose` security groups whose port is gone; and, when
//!   `[DEFAULT] docker_host` names the dockerd this driver serves, networks
//!   made on this host for a Docker network dockerd does not have (a crash
//!   after CreateNetwork's last Neutron write and before its answer: only
//!   dockerd knows it never recorded the network).
//!
//! Everything younger than [`DriverConfig::orphan_grace`] is left alone:
//! another host's CreateNetwork, or a CreateEndpoint on its way, may be
//! just making it. A port an endpoint of this daemon holds the lock of is
//! being worked on and left alone too.
//!
//! [`DriverConfig::orphan_interval`]: super::DriverConfig::orphan_interval
//! [`DriverConfig::orphan_grace`]: super::DriverConfig::orphan_grace

mod host;
mod made;
mod ports;

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::{Driver, Result};

/// What one collection removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    pub networks: Vec<String>,
    pub ports: Vec<String>,
    pub security_groups: Vec<String>,
    pub subnet_pools: Vec<String>,
    /// Host links and OVS interfaces, by name.
    pub host_sides: Vec<String>,
}

impl Collected {
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
            && self.ports.is_empty()
            && self.security_groups.is_empty()
            && self.subnet_pools.is_empty()
            && self.host_sides.is_empty()
    }
}

/// Port IDs per `GET /ports?id=...` when checking which still exist.
const IDS_PER_QUERY: usize = 40;

/// Is `created_at` (RFC 3339) older than `grace`? Unknown ages are young.
fn older_than(created_at: Option<&str>, grace: Duration) -> bool {
    let Some(at) = created_at.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return grace.is_zero();
    };
    let age = jiff::Timestamp::now().duration_since(at);
    age.as_secs_f64() >= grace.as_secs_f64()
}

impl Driver {
    /// One collection pass. Errors of single removals are logged and the
    /// pass goes on; a failed listing ends that part of it.
    pub async fn collect_orphans(&self) -> Result<Collected> {
        let mut c = Collected::default();
        let mut first_error = None;
        let mut note = |what: &str, r: Result<()>| {
            if let Err(e) = r {
                warn!(part = what, error = %e, "orphan collection: part skipped");
                first_error.get_or_insert(e);
            }
        };
        note("ports", self.orphan_ports(&mut c).await);
        note("host", self.orphan_host_sides(&mut c).await);
        note("security groups", self.orphan_security_groups(&mut c).await);
        note(
            "networks Docker forgot",
            self.networks_docker_forgot(&mut c).await,
        );
        note("networks", self.half_made_networks(&mut c).await);
        note("subnet pools", self.unused_subnet_pools(&mut c).await);
        self.stats.orphans_collected(&c);
        if !c.is_empty() {
            info!(
                networks = ?c.networks,
                ports = ?c.ports,
                security_groups = ?c.security_groups,
                subnet_pools = ?c.subnet_pools,
                host_sides = ?c.host_sides,
                "orphans collected"
            );
        }
        match first_error {
            Some(e) if c.is_empty() => Err(e),
            _ => Ok(c),
        }
    }

    /// Collect at once, then every `orphan_interval` (never again if it is
    /// zero), until the driver is dropped. The daemon runs it once
    /// started.
    pub async fn collect_orphans_forever(self: Arc<Self>) {
        let interval = self.config.orphan_interval;
        loop {
            let started = std::time::Instant::now();
            match self.collect_orphans().await {
                Ok(c) => info!(
                    ms = started.elapsed().as_millis() as u64,
                    removed = c.networks.len()
                        + c.ports.len()
                        + c.security_groups.len()
                        + c.subnet_pools.len()
                        + c.host_sides.len(),
                    "orphan collection done"
                ),
                Err(e) => warn!(error = %e, "orphan collection failed; next time"),
            }
            if interval.is_zero() || Arc::strong_count(&self) == 1 {
                return;
            }
            tokio::time::sleep(interval).await;
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod age_tests {
    use super::*;

    #[test]
    fn ages_against_the_grace() {
        let old = "2020-01-01T00:00:00Z";
        assert!(older_than(Some(old), Duration::from_secs(300)));
        let now = jiff::Timestamp::now().to_string();
        assert!(!older_than(Some(&now), Duration::from_secs(300)));
        assert!(older_than(Some(&now), Duration::ZERO));
        assert!(!older_than(None, Duration::from_secs(1)));
        assert!(older_than(None, Duration::ZERO));
    }
}
