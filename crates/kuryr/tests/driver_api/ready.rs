//! Ready ports (`[DEFAULT] ports_pool_size`): made ahead per subnet,
//! handed out by RequestAddress, claimed and renamed by CreateEndpoint,
//! made again, taken back by a restarted driver, deleted with the
//! network; a make that fails leaves nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kuryr::binding::Binder;
use kuryr::driver::{Driver, DriverConfig, FaultAction, Faults};
use kuryr::names;
use kuryr_openstack::neutron::Port;

use super::*;

/// A driver keeping `size` ports ready per subnet, its worker running.
async fn pooled_driver(lab: &Lab, size: usize, faults: Option<Arc<Faults>>) -> Arc<Driver> {
    let config = DriverConfig {
        ports_pool_size: size,
        faults,
        ..lab.config()
    };
    let d = Arc::new(lab.driver_with(config, Binder::Noop).await);
    tokio::spawn(d.clone().keep_ports_ready());
    d
}

/// The ready ports of `network_id` in Neutron once there are `count`, and
/// the driver's pool holds them (bounded wait: Neutron shows them before
/// the create's answer reaches the driver).
async fn ready_ports(lab: &Lab, d: &Driver, network_id: &str, count: usize) -> Vec<Port> {
    // Well under the worker's 30 s retry: a port taken must wake it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready: Vec<Port> = lab
            .kuryr_ports_in(network_id)
            .await
            .into_iter()
            .filter(|p| p.name == names::READY_PORT_NAME)
            .collect();
        if ready.len() == count && d.ready_port_count_in(network_id) == count {
            for p in &ready {
                assert_eq!(p.host_id, lab.host, "ready port {} bound here", p.id);
                assert!(p.device_id.is_empty(), "ready port {} unclaimed", p.id);
            }
            return ready;
        }
        assert!(
            Instant::now() < deadline,
            "{} ready ports in network {network_id} ({} in the pool), expected {count}: {ready:#?}",
            ready.len(),
            d.ready_port_count_in(network_id)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ip_of_port(p: &Port) -> String {
    p.fixed_ips[0].ip_address.clone()
}

#[tokio::test]
async fn ready_ports_are_handed_out_claimed_made_again_and_go_with_the_network() {
    lab::run(async |lab: &Lab| {
        let d = pooled_driver(lab, 2, None).await;
        let api = lab.api(&d);
        let net = api.create_network(&lab.cidr4(0)).await;
        let network = lab.network_of(&net.nid).await;
        let ready = ready_ports(lab, &d, &network.id, 2).await;

        // `docker run`: the address is a ready port's, which the endpoint
        // claims (renamed, tagged with it); another is made.
        let addr = api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&net.pool_id, ""),
            )
            .await;
        let address = s(&addr["Address"]).to_string();
        let handed = ready
            .iter()
            .find(|p| ip_of_port(p) == plain_ip(&address))
            .unwrap_or_else(|| panic!("{address} is no ready port's: {ready:#?}"));
        let ep = api.start_container_at(&net, &address).await;
        let claimed = lab.ports_of(&ep.eid).await;
        assert_eq!(claimed.len(), 1, "{claimed:#?}");
        assert_eq!(claimed[0].id, handed.id, "the ready port itself is claimed");
        assert_eq!(claimed[0].name, format!("{}-port", ep.eid));
        assert_eq!(claimed[0].device_id, ep.eid);
        let ready = ready_ports(lab, &d, &network.id, 2).await;
        assert!(!ready.iter().any(|p| p.id == handed.id));

        // `--ip` of a ready port's address hands that very port out.
        let wanted = ready[0].clone();
        let addr = api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&net.pool_id, &ip_of_port(&wanted)),
            )
            .await;
        let ep2 = api.start_container_at(&net, s(&addr["Address"])).await;
        let claimed = lab.ports_of(&ep2.eid).await;
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, wanted.id);

        // ReleaseAddress of an address nobody was handed leaves the ready
        // port that holds it.
        let ready = ready_ports(lab, &d, &network.id, 2).await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&net.pool_id, &ip_of_port(&ready[0])),
        )
        .await;
        assert!(lab.port(&ready[0].id).await.is_some(), "ready port deleted");

        // A restarted driver takes the ready ports back and makes none.
        drop(d);
        let d = pooled_driver(lab, 2, None).await;
        assert_eq!(
            d.ready_port_count_in(&network.id),
            2,
            "ready ports taken back"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let again = ready_ports(lab, &d, &network.id, 2).await;
        let ids = |v: &[Port]| v.iter().map(|p| p.id.clone()).collect::<BTreeSet<_>>();
        assert_eq!(ids(&again), ids(&ready));

        // The containers go, then the network with its ready ports.
        let api = lab.api(&d);
        api.stop_container(&net, &ep).await;
        api.stop_container(&net, &ep2).await;
        api.remove_network(&net).await;
        assert!(lab.networks_of(&net.nid).await.is_empty());
        assert!(lab.ports_in(&network.id).await.is_empty());
        // The worker makes none for the network gone.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(d.ready_port_count_in(&network.id), 0);
        lab.assert_clean().await;
    })
    .await;
}

/// The pool is off by default: no port is made ahead, and a port made
/// ahead earlier is an unclaimed one (orphan collection's).
#[tokio::test]
async fn without_a_pool_size_no_port_is_made_ahead() {
    lab::run(async |lab: &Lab| {
        let d = pooled_driver(lab, 0, None).await;
        let api = lab.api(&d);
        let net = api.create_network(&lab.cidr4(0)).await;
        let ep = api.start_container(&net).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let network = lab.network_of(&net.nid).await;
        let ports = lab.kuryr_ports_in(&network.id).await;
        assert_eq!(ports.len(), 1, "{ports:#?}");
        assert_eq!(d.ready_port_count(), 0);
        api.stop_container(&net, &ep).await;
        api.remove_network(&net).await;
        lab.assert_clean().await;
    })
    .await;
}

/// The worker's make fails after Neutron made the port: the port is
/// rolled back, and the network still works (RequestAddress makes its
/// port itself) and goes cleanly.
#[tokio::test]
async fn a_ready_port_whose_make_fails_leaves_nothing() {
    lab::run(async |lab: &Lab| {
        let faults = Arc::new(Faults::default());
        faults.arm("ReadyPort.made", FaultAction::Error);
        let d = pooled_driver(lab, 1, Some(faults.clone())).await;
        let api = lab.api(&d);
        let net = api.create_network(&lab.cidr4(0)).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while faults.is_armed("ReadyPort.made") {
            assert!(Instant::now() < deadline, "the worker never made a port");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let network = lab.network_of(&net.nid).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !lab.kuryr_ports_in(&network.id).await.is_empty() {
            assert!(Instant::now() < deadline, "the failed make left its port");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(d.ready_port_count_in(&network.id), 0);
        let ep = api.start_container(&net).await;
        assert_eq!(lab.ports_of(&ep.eid).await.len(), 1);
        api.stop_container(&net, &ep).await;
        api.remove_network(&net).await;
        lab.assert_clean().await;
    })
    .await;
}
