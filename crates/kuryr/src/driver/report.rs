//! The account of every plugin call: one log line naming what it was about
//! (Docker's network, endpoint, pool and address; the Neutron network,
//! subnet and port they map to), how long it took and how many Neutron
//! requests it made; and the same numbers for the metrics
//! ([`crate::metrics::Stats`]).
//!
//! Neutron IDs come from the index, read before the call (a delete drops
//! the entry) and after it (a create adds it); no extra Neutron request
//! is made for a log line.

use std::net::IpAddr;
use std::time::Instant;

use ipnet::IpNet;
use kuryr_openstack::CallSnapshot;
use tracing::{info, warn};

use super::{Driver, Result};
use crate::protocol::{Method, PluginCall, Response};

/// The Docker side of a call.
#[derive(Debug, Default, Clone)]
struct DockerIds {
    network: Option<String>,
    endpoint: Option<String>,
    pool: Option<String>,
    address: Option<IpAddr>,
}

impl DockerIds {
    fn of(call: &PluginCall) -> DockerIds {
        let address = match call {
            PluginCall::RequestAddress(r) => r.address,
            PluginCall::ReleaseAddress(r) => Some(r.address),
            _ => None,
        };
        DockerIds {
            network: call.network_id().map(|i| i.as_str().to_string()),
            endpoint: call.endpoint_id().map(|i| i.as_str().to_string()),
            pool: call.pool_id().map(|i| i.as_str().to_string()),
            address,
        }
    }

    /// What the answer adds: the pool made, the address handed out.
    fn with_response(mut self, response: &Response) -> DockerIds {
        match response {
            Response::RequestPool(r) => self.pool = Some(r.pool_id.clone()),
            Response::RequestAddress(r) => {
                self.address = r.address.parse::<IpNet>().ok().map(|n| n.addr());
            }
            _ => {}
        }
        self
    }
}

/// The Neutron side of a call, as far as the index knows it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct NeutronIds {
    network: Option<String>,
    subnet: Option<String>,
    port: Option<String>,
}

impl NeutronIds {
    /// `self`, completed from `other` where `self` knows nothing.
    fn or(self, other: NeutronIds) -> NeutronIds {
        NeutronIds {
            network: self.network.or(other.network),
            subnet: self.subnet.or(other.subnet),
            port: self.port.or(other.port),
        }
    }
}

/// A call in progress.
#[derive(Debug)]
pub(super) struct CallReport {
    method: Method,
    started: Instant,
    docker: DockerIds,
    before: NeutronIds,
}

impl Driver {
    /// Start the account of `call` (before it runs).
    pub(super) fn report_start(&self, call: &PluginCall) -> CallReport {
        let docker = DockerIds::of(call);
        CallReport {
            method: call.method(),
            started: Instant::now(),
            before: self.neutron_ids(&docker),
            docker,
        }
    }

    /// Finish the account: the log line and the metrics.
    pub(super) fn report_end(
        &self,
        report: CallReport,
        result: &Result<Response>,
        calls: &CallSnapshot,
    ) {
        let elapsed = report.started.elapsed();
        let docker = match result {
            Ok(response) => report.docker.with_response(response),
            Err(_) => report.docker,
        };
        let neutron = self.neutron_ids(&docker).or(report.before);
        let error_kind = result.as_ref().err().map(|e| e.kind());
        self.stats.observe_call(
            report.method.name(),
            error_kind,
            elapsed,
            calls.neutron_calls(),
        );
        let ms = elapsed.as_millis() as u64;
        let address = docker.address.map(|a| a.to_string());
        // One event per call; fields left out when the call has no such ID.
        macro_rules! line {
            ($level:ident, $($rest:tt)*) => {
                $level!(
                    call = %report.method,
                    network = docker.network.as_deref(),
                    endpoint = docker.endpoint.as_deref(),
                    pool = docker.pool.as_deref(),
                    address = address.as_deref(),
                    neutron_network = neutron.network.as_deref(),
                    neutron_subnet = neutron.subnet.as_deref(),
                    neutron_port = neutron.port.as_deref(),
                    ms,
                    neutron_calls = calls.neutron_calls(),
                    $($rest)*
                )
            };
        }
        match result {
            Ok(_) => line!(
                info,
                polls = calls.neutron_polls(),
                keystone_calls = calls.calls("keystone"),
                neutron_ms = super::neutron_ms(calls),
                ops = %calls.summary(),
                "ok"
            ),
            Err(e) => line!(warn, error_kind = e.kind(), error = %e, "failed"),
        }
    }

    /// What the index maps `docker` to now.
    fn neutron_ids(&self, docker: &DockerIds) -> NeutronIds {
        let index = self.index();
        let mut ids = NeutronIds::default();
        if let Some(entry) = docker.network.as_deref().and_then(|n| index.network(n)) {
            ids.network = Some(entry.network.id.clone());
            ids.subnet = entry.subnets.first().map(|s| s.id.clone());
        }
        if let Some(entry) = docker.endpoint.as_deref().and_then(|e| index.endpoint(e)) {
            ids.port = Some(entry.port.id.clone());
            ids.subnet = entry
                .port
                .fixed_ips
                .first()
                .map(|f| f.subnet_id.clone())
                .or(ids.subnet);
        }
        if let Some(pool) = docker.pool.as_deref().and_then(|p| index.pool(p))
            && let Some((net, subnet)) = index.network_of_pool(pool)
        {
            ids.network.get_or_insert_with(|| net.network.id.clone());
            ids.subnet = Some(subnet.id.clone());
            if let Some(port) = docker
                .address
                .and_then(|ip| index.port_by_ip(&subnet.id, ip))
            {
                ids.port.get_or_insert_with(|| port.id.clone());
            }
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_wins_and_before_fills_in() {
        let after = NeutronIds {
            network: Some("n".into()),
            ..Default::default()
        };
        let before = NeutronIds {
            network: Some("old".into()),
            port: Some("p".into()),
            ..Default::default()
        };
        let both = after.or(before);
        assert_eq!(both.network.as_deref(), Some("n"));
        assert_eq!(both.port.as_deref(), Some("p"));
    }
}
