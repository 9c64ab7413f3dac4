//! The daemon's metrics, in Prometheus' text format (`prometheus-client`
//! encodes them), and its health check; served only when `[metrics]
//! listen` is set ([`http`]).
//!
//! Two sources, each counted once:
//! - [`Stats`]: what only the driver sees, recorded as it happens — every
//!   plugin call (by method and outcome, with its duration and Neutron
//!   request count), errors by kind, orphans collected;
//! - read at scrape time: the OpenStack client's [`CallStats`]
//!   (every Keystone and Neutron request by operation and HTTP status,
//!   with latency; tokens issued), the index (networks, endpoints, pools,
//!   unclaimed ports this node serves), start-up state, build info.
//!
//! [`CallStats`]: kuryr_openstack::CallStats

pub mod http;

use std::sync::Arc;
use std::time::Duration;

use kuryr_openstack::{Answer, CallSnapshot, LATENCY_BUCKETS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::driver::{Collected, Driver};
use crate::protocol::Method;

/// Neutron requests per plugin call, as histogram bounds.
const NEUTRON_CALLS_BUCKETS: [f64; 8] = [0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 13.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    call: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    call: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    call: &'static str,
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OrphanLabels {
    kind: &'static str,
}

type HistogramFamily = Family<CallLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn neutron_calls_histogram() -> Histogram {
    Histogram::new(NEUTRON_CALLS_BUCKETS)
}

/// What the driver records as it works; cheap, always on (the endpoint
/// that shows it is what `[metrics]` turns on).
#[derive(Debug, Clone)]
pub struct Stats {
    calls: Family<OutcomeLabels, Counter>,
    durations: HistogramFamily,
    neutron_calls: HistogramFamily,
    errors: Family<ErrorLabels, Counter>,
    orphans: Family<OrphanLabels, Counter>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            calls: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            neutron_calls: Family::new_with_constructor(neutron_calls_histogram),
            errors: Family::default(),
            orphans: Family::default(),
        }
    }
}

/// A call's name as a label: `NetworkDriver.CreateEndpoint`; `unknown`
/// for paths that are no method (never the path itself: a label per
/// distinct path would let any client grow the metrics without bound).
pub fn call_label(method: Option<Method>) -> &'static str {
    method.map_or("unknown", Method::name)
}

impl Stats {
    /// One plugin call answered: its outcome (`Err` with the error's kind),
    /// how long it took, and how many Neutron requests it made.
    pub fn observe_call(
        &self,
        call: &'static str,
        error_kind: Option<&'static str>,
        elapsed: Duration,
        neutron_calls: u64,
    ) {
        let outcome = if error_kind.is_some() { "error" } else { "ok" };
        self.calls
            .get_or_create(&OutcomeLabels { call, outcome })
            .inc();
        if let Some(kind) = error_kind {
            self.errors.get_or_create(&ErrorLabels { call, kind }).inc();
        }
        let labels = CallLabels { call };
        self.durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.neutron_calls
            .get_or_create(&labels)
            .observe(neutron_calls as f64);
    }

    /// One orphan collection pass removed `c`.
    pub fn orphans_collected(&self, c: &Collected) {
        for (kind, n) in [
            ("network", c.networks.len()),
            ("port", c.ports.len()),
            ("security_group", c.security_groups.len()),
            ("subnet_pool", c.subnet_pools.len()),
            ("host_side", c.host_sides.len()),
        ] {
            if n > 0 {
                self.orphans
                    .get_or_create(&OrphanLabels { kind })
                    .inc_by(n as u64);
            }
        }
    }
}

/// Every metric of `driver`: its [`Stats`] and the [`Scraped`] ones.
pub fn registry(driver: Arc<Driver>) -> Registry {
    let mut r = Registry::default();
    let s = driver.stats().clone();
    r.register(
        "kuryr_plugin_calls",
        "Plugin calls answered, by method and outcome",
        s.calls,
    );
    r.register_with_unit(
        "kuryr_plugin_call_duration",
        "Time to answer a plugin call",
        Unit::Seconds,
        s.durations,
    );
    r.register(
        "kuryr_plugin_call_neutron_requests",
        "Neutron requests made by one plugin call",
        s.neutron_calls,
    );
    r.register(
        "kuryr_plugin_call_errors",
        "Plugin calls that failed, by method and error kind",
        s.errors,
    );
    r.register(
        "kuryr_orphans_collected",
        "Leftovers removed by orphan collection, by kind",
        s.orphans,
    );
    r.register_collector(Box::new(Scraped { driver }));
    r
}

/// The whole text exposition of `registry`.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, registry);
    out
}

/// The metrics read when scraped.
#[derive(Debug)]
struct Scraped {
    driver: Arc<Driver>,
}

impl Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let calls = self.driver.calls();
        encode_requests(&mut encoder, &calls, "neutron")?;
        encode_requests(&mut encoder, &calls, "keystone")?;
        encode_latency(&mut encoder, &calls)?;
        let issued: u64 = calls
            .answers
            .iter()
            .filter(|((op, a), _)| {
                op == "keystone.issue_token" && matches!(a, Answer::Status(201 | 200))
            })
            .map(|(_, n)| n)
            .sum();
        let counter = ConstCounter::new(issued);
        counter.encode(encoder.encode_descriptor(
            "kuryr_keystone_tokens_issued",
            "Keystone tokens issued: the first and every renewal",
            None,
            counter.metric_type(),
        )?)?;
        let index = self.driver.index_counts();
        for (name, help, value) in [
            (
                "kuryr_index_networks",
                "Docker networks the driver serves",
                index.networks,
            ),
            (
                "kuryr_index_endpoints",
                "Docker endpoints (Neutron ports) on this node",
                index.endpoints,
            ),
            (
                "kuryr_index_pools",
                "IPAM pools handed to Docker",
                index.pools,
            ),
            (
                "kuryr_index_unclaimed_ports",
                "Addresses handed out that no endpoint claimed yet",
                index.unclaimed_ports,
            ),
        ] {
            let gauge = ConstGauge::new(value as i64);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let ready = ConstGauge::new(i64::from(self.driver.readiness().is_ok()));
        ready.encode(encoder.encode_descriptor(
            "kuryr_ready",
            "1 once start-up is done and stateful calls are served",
            None,
            ready.metric_type(),
        )?)?;
        let mut info = encoder.encode_descriptor(
            "kuryr_build",
            "The running version",
            None,
            MetricType::Info,
        )?;
        info.encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
        Ok(())
    }
}

/// `kuryr_<service>_requests_total{operation, status}`.
fn encode_requests(
    encoder: &mut DescriptorEncoder,
    calls: &CallSnapshot,
    service: &str,
) -> Result<(), std::fmt::Error> {
    let prefix = format!("{service}.");
    let name = format!("kuryr_{service}_requests");
    let help = format!("Requests sent to {service}, by operation and HTTP status");
    let mut family = encoder.encode_descriptor(&name, &help, None, MetricType::Counter)?;
    for ((op, answer), n) in &calls.answers {
        let Some(operation) = op.strip_prefix(&prefix) else {
            continue;
        };
        let status = answer.label();
        let labels = [("operation", operation), ("status", status.as_str())];
        ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// `kuryr_neutron_request_duration_seconds{operation}`, from the client's
/// latency buckets.
fn encode_latency(
    encoder: &mut DescriptorEncoder,
    calls: &CallSnapshot,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        "kuryr_neutron_request_duration",
        "Latency of Neutron requests, by operation",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    for (op, stats) in &calls.ops {
        let Some(operation) = op.strip_prefix("neutron.") else {
            continue;
        };
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(stats.buckets)
            .collect();
        let labels = [("operation", operation)];
        family
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(
                stats.total.as_secs_f64(),
                stats.count,
                &buckets,
                None,
            )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
