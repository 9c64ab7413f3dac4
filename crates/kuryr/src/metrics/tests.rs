//! The exposition against the in-process fake Neutron: what a short Docker
//! flow shows, line by line.

use std::sync::Arc;

use kuryr_openstack::fake::FakeNeutron;
use serde_json::json;

use super::*;
use crate::binding::Binder;
use crate::driver::DriverConfig;
use crate::server::answer;

const NID: &str = "9c1f0d7a3b2e4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5";

/// The value of the sample `name{labels}` (labels as printed), if shown.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn a_flow_shows_in_the_exposition() {
    let fake = Arc::new(FakeNeutron::new());
    let driver = Arc::new(Driver::new(
        fake.client(),
        DriverConfig {
            host_id: "node1".into(),
            ..Default::default()
        },
        Binder::Noop,
    ));
    let registry = registry(driver.clone());
    let before = encode(&registry);
    assert_eq!(sample(&before, "kuryr_ready"), Some(0.0), "{before}");
    driver.start().await.unwrap();

    let pool = answer(
        &driver,
        "/IpamDriver.RequestPool",
        json!({"AddressSpace": "", "Pool": "10.9.0.0/24", "V6": false})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(pool.status, 200);
    let create = json!({"NetworkID": NID, "Options": {}, "IPv4Data": [{"Pool": "10.9.0.0/24", "Gateway": "10.9.0.1/24"}]});
    let r = answer(
        &driver,
        "/NetworkDriver.CreateNetwork",
        create.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200);
    // A second identical CreateNetwork is fine; a garbled one is refused.
    let r = answer(
        &driver,
        "/NetworkDriver.CreateNetwork",
        b"{\"NetworkID\": 7}",
    )
    .await;
    assert_eq!(r.status, 400);
    let r = answer(&driver, "/NetworkDriver.Nope", b"{}").await;
    assert_eq!(r.status, 404);
    let r = answer(
        &driver,
        "/IpamDriver.RequestAddress",
        json!({"PoolID": "3f0c6d2e-8a41-4b7e-9d3c-5a6b7c8d9e0f"})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 500);

    let text = encode(&registry);
    let calls = |call: &str, outcome: &str| {
        sample(
            &text,
            &format!("kuryr_plugin_calls_total{{call=\"{call}\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(calls("IpamDriver.RequestPool", "ok"), Some(1.0), "{text}");
    assert_eq!(calls("NetworkDriver.CreateNetwork", "ok"), Some(1.0));
    assert_eq!(calls("NetworkDriver.CreateNetwork", "error"), Some(1.0));
    assert_eq!(calls("unknown", "error"), Some(1.0));
    assert_eq!(calls("IpamDriver.RequestAddress", "error"), Some(1.0));
    let errors = |call: &str, kind: &str| {
        sample(
            &text,
            &format!("kuryr_plugin_call_errors_total{{call=\"{call}\",kind=\"{kind}\"}}"),
        )
    };
    assert_eq!(
        errors("NetworkDriver.CreateNetwork", "bad_request"),
        Some(1.0)
    );
    assert_eq!(errors("unknown", "unknown_method"), Some(1.0));
    assert!(
        errors("IpamDriver.RequestAddress", "not_found")
            .or(errors("IpamDriver.RequestAddress", "neutron_not_found"))
            .is_some(),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "kuryr_plugin_call_duration_seconds_count{call=\"NetworkDriver.CreateNetwork\"}"
        ),
        Some(2.0)
    );
    // Neutron requests by operation and status, from the client's counters.
    let snapshot = driver.calls();
    let created = snapshot.ops["neutron.create_network"].count as f64;
    assert_eq!(
        sample(
            &text,
            "kuryr_neutron_requests_total{operation=\"create_network\",status=\"201\"}"
        ),
        Some(created),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "kuryr_neutron_request_duration_seconds_count{operation=\"create_network\"}"
        ),
        Some(created)
    );
    assert!(text.contains("kuryr_neutron_request_duration_seconds_bucket{le=\"+Inf\",operation=\"create_network\"}")
        || text.contains("kuryr_neutron_request_duration_seconds_bucket{operation=\"create_network\",le=\"+Inf\"}"), "{text}");
    assert_eq!(sample(&text, "kuryr_index_networks"), Some(1.0));
    assert_eq!(sample(&text, "kuryr_index_pools"), Some(1.0));
    assert_eq!(sample(&text, "kuryr_ready"), Some(1.0));
    assert!(
        text.contains(&format!(
            "kuryr_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(text.contains("# TYPE kuryr_plugin_call_duration_seconds histogram"));
}

#[test]
fn orphans_are_counted_by_kind() {
    let stats = Stats::default();
    stats.orphans_collected(&Collected {
        networks: vec!["n".into()],
        ports: vec!["a".into(), "b".into()],
        security_groups: vec![],
        subnet_pools: vec!["p".into()],
        host_sides: vec![],
    });
    let mut r = Registry::default();
    r.register("kuryr_orphans_collected", "x", stats.orphans.clone());
    let text = encode(&r);
    assert_eq!(
        sample(&text, "kuryr_orphans_collected_total{kind=\"port\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "kuryr_orphans_collected_total{kind=\"network\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "kuryr_orphans_collected_total{kind=\"subnet_pool\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "kuryr_orphans_collected_total{kind=\"security_group\"}"
        ),
        None
    );
}
