//! Agent mode with the Neutron Linux bridge agent: ports bound to the lab's
//! linuxbridge agent (host `<hostname>-lb`, `KURYR_LAB_AGENT=both`) get
//! `binding:vif_type` `bridge`, and the veth binder enslaves their tap to
//! the agent's `brq<net[:11]>` bridge.
//!
//! An in-process driver with the real veth binder is driven with
//! Docker-shaped requests; the test then does what Docker does (moves each
//! container end into a namespace of its own, sets the address, brings it
//! up) and checks Neutron (ACTIVE, vif_type), the host (tap in brq) and the
//! data path (two containers of one network ping; a third one on another
//! network does not reach them, even claiming their subnet is on-link).
//!
//! Needs root and the lab with both agents: `sudo KURYR_LAB_AGENT=both
//! lab/up` (./run-tests does this).

mod common;

use std::time::Duration;

use common::container::Container;
use common::host::{link_exists, master_of};
use common::lab::{self, Lab, plain_ip};
use common::netns;
use common::vm::wait_active;
use kuryr::binding::{Binder, VethConfig};
use kuryr::driver::{Driver, DriverConfig};
use kuryr_openstack::Query;

/// The linuxbridge agent of the lab must be up, or the test says how to
/// start it (it never passes without it).
async fn require_lb_agent(lab: &Lab, host: &str) {
    let agents = lab
        .neutron
        .list_agents(&Query::new().eq("agent_type", "Linux bridge agent"))
        .await
        .expect("list agents");
    let alive = agents.iter().any(|a| a.host == host && a.alive);
    assert!(
        alive,
        "no live Neutron linuxbridge agent on host {host:?} ({agents:?}): start the lab \
         with both agents: `sudo KURYR_LAB_AGENT=both lab/up` (./run-tests does)"
    );
}

#[tokio::test]
async fn linuxbridge_agent_mode_connects_containers() {
    lab::run(async |lab: &Lab| {
        netns::require_root("this test");
        let lb_host = format!("{}-lb", lab.host);
        require_lb_agent(lab, &lb_host).await;

        let d = Driver::new(
            common::env::neutron(),
            DriverConfig {
                host_id: lb_host.clone(),
                ..Default::default()
            },
            Binder::veth(VethConfig::default()),
        );
        d.start().await.expect("driver start");
        let api = lab.api(&d);
        let net_a = api.create_network(&lab.cidr4(0)).await;
        let net_b = api.create_network(&lab.cidr4(1)).await;
        let tag = format!("{:x}", common::env::random_u64() & 0xff_ffff);
        let mut a1 = Container::start(lab, &api, &net_a).await;
        a1.enter(None, &format!("kt-lb-a1-{tag}"));
        let mut a2 = Container::start(lab, &api, &net_a).await;
        a2.enter(None, &format!("kt-lb-a2-{tag}"));
        let mut b1 = Container::start(lab, &api, &net_b).await;
        b1.enter(None, &format!("kt-lb-b1-{tag}"));

        let neutron_a = lab.network_of(&net_a.nid).await;
        let neutron_b = lab.network_of(&net_b.nid).await;
        for (c, net) in [(&a1, &neutron_a), (&a2, &neutron_a), (&b1, &neutron_b)] {
            assert_eq!(c.port.host_id, lb_host);
            assert_eq!(c.port.vif_type, "bridge", "{:#?}", c.port);
            let p = wait_active(lab, &c.port.id).await;
            assert_eq!(p.vif_type, "bridge");
            let tap = format!("tap{}", &c.port.id[..11]);
            let brq = format!("brq{}", &net.id[..11]);
            assert_eq!(
                master_of(&tap).as_deref(),
                Some(brq.as_str()),
                "{tap} is enslaved to the agent's bridge"
            );
            let eth0 = c.sandbox().link("eth0").expect("eth0 in the sandbox");
            assert_eq!(netns::mac(&eth0), c.port.mac_address);
            assert_eq!(Some(netns::mtu(&eth0)), net.mtu.map(u64::from));
        }

        // The data path: through brq + the agent's iptables firewall.
        let ip_a1 = plain_ip(&a1.ep.address);
        let ip_a2 = plain_ip(&a2.ep.address);
        assert!(
            a1.sandbox().pings(ip_a2, Duration::from_secs(30)),
            "a1 cannot ping a2 ({ip_a2}) through the Linux bridge"
        );
        assert!(a2.sandbox().pings(ip_a1, Duration::from_secs(10)));
        // Another network is another L2 segment: claiming net A is on-link
        // does not help.
        b1.sandbox()
            .ip_ok(&["route", "add", &net_a.cidr, "dev", "eth0"]);
        assert!(
            b1.sandbox().never_pings(ip_a1, 3),
            "a container on another network reached {ip_a1}"
        );

        // docker stop: DeleteEndpoint removes the tap (and with it the
        // container end), the port goes with ReleaseAddress.
        for c in [&a1, &a2, &b1] {
            let net = if c.port.network_id == neutron_a.id {
                &net_a
            } else {
                &net_b
            };
            let tap = format!("tap{}", &c.port.id[..11]);
            api.stop_container(net, &c.ep).await;
            assert!(!link_exists(&tap), "{tap} removed by DeleteEndpoint");
            assert!(
                !c.sandbox().has_link("eth0"),
                "the container end went with it"
            );
            assert!(lab.port(&c.port.id).await.is_none(), "port deleted");
        }
        api.remove_network(&net_a).await;
        api.remove_network(&net_b).await;
        lab.assert_clean().await;
    })
    .await;
}
