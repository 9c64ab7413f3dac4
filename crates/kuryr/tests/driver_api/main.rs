//! The driver as dockerd 20.10 drives it, against the lab's real Neutron.
//!
//! Each test builds a [`kuryr::driver::Driver`] in-process (kuryr account,
//! `binding:host_id` = the lab's OVS host, no host-side binding), calls
//! `start()`, then talks to it only through `kuryr::server::answer(path,
//! body)` with bodies shaped like dockerd's, and checks both the reply and what Neutron
//! holds afterwards, through a separate client. Every test has its own
//! CIDRs and random Docker IDs, cleans up after itself even when it fails,
//! and can run in parallel with the others.
//!
//! One file per concern, mirroring `src/driver/`: [`flows`], [`network`],
//! [`endpoint`], [`ipam`], [`index`], [`projects`] (other tenants' objects),
//! [`protocol`] (refusals leave Neutron untouched), [`ready`] (ports made
//! ahead) and [`faults`] (every fault point as an injected error).
//!
//! Needs the lab: `eval "$(lab/env kuryr)"; cargo nextest run -p kuryr --test driver_api`.

// A test binary in a folder finds the shared tree one level up.
#[path = "../common/mod.rs"]
mod common;

mod endpoint;
mod faults;
mod flows;
mod index;
mod ipam;
mod network;
mod projects;
mod protocol;
mod ready;

pub(crate) use std::collections::BTreeSet;
pub(crate) use std::net::IpAddr;

pub(crate) use common::env::{docker_id, id_tags};
pub(crate) use common::lab::{self, Lab, assert_json_err, plain_ip};
pub(crate) use common::requests;
pub(crate) use ipnet::IpNet;
pub(crate) use kuryr_openstack::neutron::{FixedIp, NetworkCreate, PortCreate, SubnetCreate};
pub(crate) use kuryr_openstack::{Query, TagResource};
pub(crate) use serde_json::{Value, json};

const GATEWAY_KEY: &str = "com.docker.network.gateway";

fn ip_of(cidr: &str) -> IpAddr {
    plain_ip(cidr).parse().expect("an IP")
}

fn net_of(cidr: &str) -> IpNet {
    cidr.parse().expect("a CIDR")
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

struct UserNet {
    id: String,
    name: String,
    subnet_id: String,
    subnet_name: String,
    cidr: String,
    gateway: String,
}

/// A port a user made at `ip` on their network (tracked for clean-up);
/// `port_security` as given, Neutron's default if `None`.
async fn user_port(
    lab: &Lab,
    user: &UserNet,
    ip: &str,
    port_security: Option<bool>,
) -> kuryr_openstack::neutron::Port {
    let port = lab
        .neutron
        .create_port(&PortCreate {
            network_id: user.id.clone(),
            fixed_ips: Some(vec![FixedIp {
                subnet_id: user.subnet_id.clone(),
                ip_address: ip.to_string(),
            }]),
            port_security_enabled: port_security,
            ..Default::default()
        })
        .await
        .expect("create user port");
    lab.track_user_port(&port.id);
    port
}

/// A network + subnet a user made in Neutron, with tags of their own.
async fn user_network(lab: &Lab, cidr: &str) -> UserNet {
    let n = &lab.neutron;
    let name = format!("kt-user-net-{:x}", common::env::random_u64());
    let net = n
        .create_network(&NetworkCreate {
            name: Some(name.clone()),
            admin_state_up: Some(true),
            ..Default::default()
        })
        .await
        .expect("create user network");
    lab.track_user_network(&net.id);
    n.replace_tags(TagResource::Network, &net.id, &["user-owned"])
        .await
        .unwrap();
    let subnet_name = format!("{name}-subnet");
    let subnet = n
        .create_subnet(&SubnetCreate {
            network_id: net.id.clone(),
            ip_version: 4,
            name: Some(subnet_name.clone()),
            cidr: Some(cidr.to_string()),
            enable_dhcp: Some(false),
            ..Default::default()
        })
        .await
        .expect("create user subnet");
    n.replace_tags(TagResource::Subnet, &subnet.id, &["user-subnet"])
        .await
        .unwrap();
    UserNet {
        id: net.id,
        name,
        subnet_id: subnet.id,
        subnet_name,
        cidr: subnet.cidr,
        gateway: subnet.gateway_ip.expect("gateway"),
    }
}
