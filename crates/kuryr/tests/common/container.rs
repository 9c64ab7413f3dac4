//! A container as the data-path tests make it: the endpoint the driver
//! created, its Neutron port, the interface Join named, and (once Docker's
//! part is done by hand) the sandbox namespace holding it as `eth0`.

use kuryr_openstack::neutron::Port;

use super::lab::{Api, Ep, Lab, Net, plain_ip};
use super::netns::{self, NetNs};

pub struct Container {
    pub ep: Ep,
    pub port: Port,
    /// Join's `SrcName`: the interface Docker moves into the sandbox.
    pub src: String,
    ns: Option<NetNs>,
}

impl Container {
    /// `docker run --net` through the driver: RequestAddress ...
    /// EndpointOperInfo; the endpoint's one port and its `t_c` interface.
    pub async fn start(lab: &Lab, api: &Api<'_>, net: &Net) -> Container {
        let ep = api.start_container(net).await;
        let ports = lab.ports_of(&ep.eid).await;
        assert_eq!(ports.len(), 1, "{ports:#?}");
        let port = ports.into_iter().next().unwrap();
        let src = ep.join["InterfaceName"]["SrcName"]
            .as_str()
            .expect("SrcName")
            .to_string();
        assert_eq!(src, format!("t_c{}", &port.id[..11]));
        Container {
            ep,
            port,
            src,
            ns: None,
        }
    }

    /// The container's address, without prefix length.
    pub fn ip(&self) -> &str {
        plain_ip(&self.ep.address)
    }

    /// Docker's Join: `SrcName` moves from `from` (a node's namespace, or
    /// the host's) into a new sandbox `name` as `eth0`, gets its address
    /// and comes up.
    pub fn enter(&mut self, from: Option<&NetNs>, name: &str) {
        let ns = NetNs::new(name);
        netns::move_link(from, &self.src, Some(&ns), "eth0");
        ns.configure("eth0", &self.ep.address);
        self.ns = Some(ns);
    }

    /// Docker's Leave: back into `to` under its `SrcName` (renamed inside
    /// the sandbox first, as libnetwork does: the node may have an eth0).
    pub fn leave(&mut self, to: Option<&NetNs>) {
        let ns = self.ns.take().expect("in a sandbox");
        ns.ip_ok(&["link", "set", "eth0", "down", "name", &self.src]);
        netns::move_link(Some(&ns), &self.src, to, &self.src);
    }

    pub fn sandbox(&self) -> &NetNs {
        self.ns.as_ref().expect("in a sandbox")
    }
}
