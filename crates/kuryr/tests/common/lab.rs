//! One test's view of the lab: a [`Lab`] holds its own Neutron client,
//! its address [`Slot`] and what the test made, for the "nothing left"
//! checks and the cleanup [`run`] does whether the test passed or not; an
//! [`Api`] drives an in-process [`Driver`] the way dockerd does (raw bytes
//! in, status + JSON out, through [`kuryr::server::answer`]).

use std::collections::BTreeSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

use futures_util::FutureExt;
use kuryr::binding::Binder;
use kuryr::driver::{Driver, DriverConfig};
use kuryr::names;
use kuryr_openstack::neutron::{Network, Port, Subnet, SubnetPool};
use kuryr_openstack::{CallSnapshot, Neutron, Query};
use kuryr_test_support::Slot;
use serde_json::{Value, json};

use super::env::{docker_id, host, id_tags, init_logs, neutron};
use super::requests;

// ------------------------------------------------------------------ the lab context

/// What a test made (or asked the driver to make), for cleanup and for the
/// "nothing left" checks.
#[derive(Debug, Default)]
struct Tracked {
    networks: BTreeSet<String>,
    endpoints: BTreeSet<String>,
    pools: BTreeSet<String>,
    cidrs: BTreeSet<String>,
    user_networks: BTreeSet<String>,
    user_ports: BTreeSet<String>,
}

/// One test's view of the lab: a Neutron client of its own, the CIDRs it
/// may use, and what it must clean up.
pub struct Lab {
    pub neutron: Neutron,
    pub host: String,
    /// This test's addresses: no other running test has them.
    pub slot: Slot,
    tracked: Mutex<Tracked>,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            neutron: neutron(),
            host: host(),
            slot: Slot::take(),
            tracked: Mutex::new(Tracked::default()),
        }
    }

    fn tracked(&self) -> std::sync::MutexGuard<'_, Tracked> {
        self.tracked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `k`-th /24 of this test (k < 8), e.g. `10.203.17.0/24`,
    /// tracked for the leftover checks.
    pub fn cidr4(&self, k: u32) -> String {
        let cidr = self.slot.cidr4(k);
        self.tracked().cidrs.insert(cidr.clone());
        cidr
    }

    /// `10.x.y.<host>` inside [`Lab::cidr4`]`(k)`.
    pub fn ip4(&self, k: u32, host: u8) -> String {
        self.slot.ip4(k, host)
    }

    /// This test's random `fd00:....::/64`, number `k`, tracked.
    pub fn cidr6(&self, k: u32) -> String {
        let cidr = self.slot.cidr6(k);
        self.tracked().cidrs.insert(cidr.clone());
        cidr
    }

    /// A fresh, started driver with its own Neutron session.
    pub async fn driver(&self) -> Driver {
        self.driver_with(self.config(), Binder::Noop).await
    }

    /// The driver settings of [`Lab::driver`]: ports bound to the lab's
    /// OVS agent host.
    pub fn config(&self) -> DriverConfig {
        DriverConfig {
            host_id: self.host.clone(),
            ..Default::default()
        }
    }

    /// A fresh, started driver with these settings and host binding (a
    /// "host" of its own: another daemon, or the same one restarted).
    pub async fn driver_with(&self, config: DriverConfig, binder: Binder) -> Driver {
        let driver = Driver::new(neutron(), config, binder);
        driver.start().await.expect("driver start against the lab");
        driver
    }

    pub fn api<'a>(&'a self, driver: &'a Driver) -> Api<'a> {
        Api { lab: self, driver }
    }

    /// A CIDR outside 10.200.0.0/13 (Docker's default IPAM picks those):
    /// tracked for the leftover checks and cleanup.
    pub fn track_cidr(&self, cidr: &str) {
        self.tracked().cidrs.insert(cidr.to_string());
    }

    pub fn track_user_network(&self, id: &str) {
        self.tracked().user_networks.insert(id.to_string());
    }

    pub fn track_user_port(&self, id: &str) {
        self.tracked().user_ports.insert(id.to_string());
    }

    /// Forget the Docker networks tracked so far (a test that removed them
    /// all itself, many of them).
    pub fn untrack_networks(&self) {
        self.tracked().networks.clear();
    }

    pub fn track_network(&self, nid: &str) {
        self.tracked().networks.insert(nid.to_string());
    }

    pub fn track_pool(&self, pool_id: &str) {
        self.tracked().pools.insert(pool_id.to_string());
    }

    // ---------------------------------------------------------- Neutron views

    /// Neutron networks carrying a Docker ID's tags.
    pub async fn networks_of(&self, nid: &str) -> Vec<Network> {
        self.neutron
            .list_networks(&Query::new().tags(&id_tags(nid)))
            .await
            .expect("list networks")
    }

    /// The one Neutron network of a Docker network.
    pub async fn network_of(&self, nid: &str) -> Network {
        let mut found = self.networks_of(nid).await;
        assert_eq!(
            found.len(),
            1,
            "Neutron networks tagged for {nid}: {found:#?}"
        );
        found.remove(0)
    }

    pub async fn subnets_in(&self, network_id: &str) -> Vec<Subnet> {
        self.neutron
            .list_subnets(&Query::new().eq("network_id", network_id))
            .await
            .expect("list subnets")
    }

    pub async fn ports_in(&self, network_id: &str) -> Vec<Port> {
        self.neutron
            .list_ports(&Query::new().eq("network_id", network_id))
            .await
            .expect("list ports")
    }

    /// Ports kuryr bound (`device_owner` `compute:kuryr`) in a network.
    pub async fn kuryr_ports_in(&self, network_id: &str) -> Vec<Port> {
        self.neutron
            .list_ports(
                &Query::new()
                    .eq("network_id", network_id)
                    .eq("device_owner", names::DEVICE_OWNER),
            )
            .await
            .expect("list ports")
    }

    /// Ports carrying an endpoint's tags.
    pub async fn ports_of(&self, eid: &str) -> Vec<Port> {
        self.neutron
            .list_ports(&Query::new().tags(&id_tags(eid)))
            .await
            .expect("list ports")
    }

    pub async fn port_with_ip(&self, ip: &str) -> Vec<Port> {
        self.neutron
            .list_ports(&Query::new().fixed_ip(ip))
            .await
            .expect("list ports")
    }

    pub async fn pool(&self, id: &str) -> Option<SubnetPool> {
        match self.neutron.get_subnetpool(id).await {
            Ok(p) => Some(p),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("show subnet pool {id}: {e}"),
        }
    }

    pub async fn pools_named(&self, name: &str) -> Vec<SubnetPool> {
        self.neutron
            .list_subnetpools(&Query::new().eq("name", name))
            .await
            .expect("list subnet pools")
    }

    pub async fn port(&self, id: &str) -> Option<Port> {
        match self.neutron.get_port(id).await {
            Ok(p) => Some(p),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("show port {id}: {e}"),
        }
    }

    /// Everything the driver made for this test that is still in Neutron:
    /// networks and ports tagged with its Docker IDs, `kuryrPool-*` pools of
    /// its CIDRs or PoolIDs, `kuryr-subnet-*` subnets of its CIDRs.
    pub async fn leftovers(&self) -> Vec<String> {
        let (networks, endpoints, pools, cidrs) = {
            let t = self.tracked();
            (
                t.networks.clone(),
                t.endpoints.clone(),
                t.pools.clone(),
                t.cidrs.clone(),
            )
        };
        let mut out = Vec::new();
        for nid in &networks {
            for n in self.networks_of(nid).await {
                out.push(format!(
                    "network {} ({}) tagged {}",
                    n.id,
                    n.name,
                    &nid[..12]
                ));
            }
        }
        for eid in &endpoints {
            for p in self.ports_of(eid).await {
                out.push(format!("port {} ({}) tagged {}", p.id, p.name, &eid[..12]));
            }
            for p in self
                .neutron
                .list_ports(&Query::new().eq("name", format!("{eid}-port")))
                .await
                .expect("list ports")
            {
                out.push(format!("port {} named {}", p.id, p.name));
            }
        }
        let prefix = format!("{}-", DriverConfig::default().subnetpool_prefix);
        for id in &pools {
            if let Some(p) = self.pool(id).await
                && p.name.starts_with(&prefix)
            {
                out.push(format!("subnet pool {} ({})", p.id, p.name));
            }
        }
        for cidr in &cidrs {
            for p in self.pools_named(&format!("{prefix}{cidr}")).await {
                if !pools.contains(&p.id) {
                    out.push(format!("subnet pool {} ({})", p.id, p.name));
                }
            }
            for s in self
                .neutron
                .list_subnets(&Query::new().eq("name", format!("kuryr-subnet-{cidr}")))
                .await
                .expect("list subnets")
            {
                out.push(format!("subnet {} ({})", s.id, s.name));
            }
        }
        out
    }

    pub async fn assert_clean(&self) {
        let left = self.leftovers().await;
        assert!(left.is_empty(), "left in Neutron: {left:#?}");
    }

    /// Remove whatever this test left, ignoring errors (most of it is gone).
    async fn cleanup(&self) {
        let t = std::mem::take(&mut *self.tracked());
        let n = &self.neutron;
        let mut ports: Vec<Port> = Vec::new();
        for eid in &t.endpoints {
            ports.extend(self.ports_of(eid).await);
        }
        let mut nets: Vec<Network> = Vec::new();
        for nid in &t.networks {
            nets.extend(self.networks_of(nid).await);
        }
        for id in &t.user_networks {
            if let Ok(net) = n.get_network(id).await {
                nets.push(net);
            }
        }
        for net in &nets {
            if let Ok(p) = n.list_ports(&Query::new().eq("network_id", &net.id)).await {
                ports.extend(p);
            }
        }
        for id in &t.user_ports {
            if let Ok(p) = n.get_port(id).await {
                ports.push(p);
            }
        }
        let mut seen = BTreeSet::new();
        for p in &ports {
            if seen.insert(p.id.clone()) {
                let _ = n.delete_port(&p.id).await;
                if let Ok(sgs) = n
                    .list_security_groups(&Query::new().eq("name", names::exposed_sg_name(&p.id)))
                    .await
                {
                    for sg in sgs {
                        let _ = n.delete_security_group(&sg.id).await;
                    }
                }
            }
        }
        let mut seen = BTreeSet::new();
        for net in &nets {
            if seen.insert(net.id.clone()) {
                let _ = n.delete_network(&net.id).await;
            }
        }
        let prefix = format!("{}-", DriverConfig::default().subnetpool_prefix);
        let mut pools: BTreeSet<String> = t.pools.clone();
        for cidr in &t.cidrs {
            if let Ok(found) = n
                .list_subnetpools(&Query::new().eq("name", format!("{prefix}{cidr}")))
                .await
            {
                pools.extend(found.into_iter().map(|p| p.id));
            }
        }
        for id in &pools {
            if let Ok(p) = n.get_subnetpool(id).await
                && p.name.starts_with(&prefix)
            {
                if let Ok(subnets) = n.list_subnets(&Query::new().eq("subnetpool_id", id)).await {
                    for s in subnets {
                        let _ = n.delete_subnet(&s.id).await;
                    }
                }
                let _ = n.delete_subnetpool(id).await;
            }
        }
    }
}

/// Run one test body against the lab, then clean up what it made, whether
/// it passed or not, and re-raise its panic.
pub async fn run<F>(body: F)
where
    F: AsyncFnOnce(&Lab),
{
    init_logs();
    let lab = Lab::new();
    let outcome = AssertUnwindSafe(body(&lab)).catch_unwind().await;
    lab.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

// ------------------------------------------------------------------ calling the driver

/// The parsed reply of one plugin call.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub json: Value,
}

impl Reply {
    /// The `Err` text of an error reply.
    pub fn err(&self) -> &str {
        self.json["Err"].as_str().unwrap_or_default()
    }
}

/// A driver as dockerd sees it: raw bytes in, status + JSON out.
pub struct Api<'a> {
    pub lab: &'a Lab,
    pub driver: &'a Driver,
}

impl Api<'_> {
    /// Send raw bytes; the reply must be JSON whatever the status.
    pub async fn raw(&self, path: &str, body: &[u8]) -> Reply {
        let reply = kuryr::server::answer(self.driver, path, body).await;
        let json: Value = serde_json::from_slice(&reply.body).unwrap_or_else(|e| {
            panic!(
                "{path}: reply is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&reply.body)
            )
        });
        Reply {
            status: reply.status,
            json,
        }
    }

    /// Send a JSON body, tracking the Docker IDs and pools it creates.
    pub async fn call(&self, path: &str, body: Value) -> Reply {
        {
            let mut t = self.lab.tracked();
            let id = |k: &str| body[k].as_str().map(str::to_string);
            match path {
                "/NetworkDriver.CreateNetwork" => t.networks.extend(id("NetworkID")),
                "/NetworkDriver.CreateEndpoint" => t.endpoints.extend(id("EndpointID")),
                _ => {}
            }
        }
        let reply = self.raw(path, &serde_json::to_vec(&body).unwrap()).await;
        if path == "/IpamDriver.RequestPool" && reply.status == 200 {
            let mut t = self.lab.tracked();
            t.pools
                .extend(reply.json["PoolID"].as_str().map(str::to_string));
            t.cidrs
                .extend(reply.json["Pool"].as_str().map(str::to_string));
        }
        reply
    }

    /// A call that must succeed; its JSON reply.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let reply = self.call(path, body.clone()).await;
        assert_eq!(
            reply.status, 200,
            "{path} failed: {} {}\nrequest: {body}",
            reply.status, reply.json
        );
        assert!(
            reply.json.get("Err").is_none(),
            "{path} replied 200 with an error: {}",
            reply.json
        );
        reply.json
    }

    /// A call that must fail; its reply.
    pub async fn fails(&self, path: &str, body: Value) -> Reply {
        let reply = self.call(path, body.clone()).await;
        assert_ne!(
            reply.status, 200,
            "{path} should have failed: {}\nrequest: {body}",
            reply.json
        );
        assert!(
            !reply.err().is_empty(),
            "{path}: error reply without an Err text: {}",
            reply.json
        );
        reply
    }

    pub fn calls(&self) -> CallSnapshot {
        self.driver.calls()
    }

    /// Neutron round trips made by `f`.
    pub async fn neutron_calls<T>(&self, f: impl Future<Output = T>) -> (T, CallSnapshot) {
        let before = self.calls();
        let out = f.await;
        (out, self.calls().since(&before))
    }

    // ---------------------------------------------------------- Docker flows

    /// `docker network create -d kuryr --ipam-driver kuryr --subnet cidr`.
    pub async fn create_network(&self, cidr: &str) -> Net {
        self.create_network_with(cidr, json!({}), json!({})).await
    }

    pub async fn create_network_with(&self, cidr: &str, ipam_opts: Value, generic: Value) -> Net {
        self.create_network_as(&docker_id(), cidr, ipam_opts, generic)
            .await
    }

    /// RequestPool + CreateNetwork for a given Docker network ID (a
    /// global-scope network: every node gets the same ID).
    pub async fn create_network_as(
        &self,
        nid: &str,
        cidr: &str,
        ipam_opts: Value,
        generic: Value,
    ) -> Net {
        let net = self.request_pool_for(nid, cidr, ipam_opts).await;
        self.create_network_on(&net, generic).await;
        net
    }

    /// The RequestPool of `docker network create` (Docker network `nid`).
    pub async fn request_pool_for(&self, nid: &str, cidr: &str, ipam_opts: Value) -> Net {
        let pool = self
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool(cidr, "", false, ipam_opts),
            )
            .await;
        Net {
            nid: nid.to_string(),
            pool_id: pool["PoolID"].as_str().expect("PoolID").to_string(),
            cidr: pool["Pool"].as_str().expect("Pool").to_string(),
            gateway: pool["Data"]["com.docker.network.gateway"]
                .as_str()
                .expect("pool Data carries the gateway")
                .to_string(),
        }
    }

    /// The CreateNetwork that follows [`Api::request_pool_for`].
    pub async fn create_network_on(&self, net: &Net, generic: Value) {
        self.ok(
            "/NetworkDriver.CreateNetwork",
            requests::create_network(
                &net.nid,
                generic,
                vec![requests::ipam_data(&net.cidr, &net.gateway)],
                vec![],
            ),
        )
        .await;
    }

    /// `docker run --net` up to EndpointOperInfo (dynamic address).
    pub async fn start_container(&self, net: &Net) -> Ep {
        let addr = self
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&net.pool_id, ""),
            )
            .await;
        let address = addr["Address"].as_str().expect("Address").to_string();
        self.start_container_at(net, &address).await
    }

    /// CreateEndpoint + Join + ProgramExternalConnectivity + EndpointOperInfo
    /// for an address IPAM already handed out.
    pub async fn start_container_at(&self, net: &Net, address: &str) -> Ep {
        let eid = docker_id();
        let created = self
            .ok(
                "/NetworkDriver.CreateEndpoint",
                requests::create_endpoint(&net.nid, &eid, address, ""),
            )
            .await;
        let join = self
            .ok("/NetworkDriver.Join", requests::join(&net.nid, &eid))
            .await;
        self.ok(
            "/NetworkDriver.ProgramExternalConnectivity",
            requests::program(&net.nid, &eid, json!([])),
        )
        .await;
        self.ok(
            "/NetworkDriver.EndpointOperInfo",
            requests::endpoint(&net.nid, &eid),
        )
        .await;
        Ep {
            eid,
            address: address.to_string(),
            mac: created["Interface"]["MacAddress"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            join,
        }
    }

    /// `docker stop`: Revoke, Leave, DeleteEndpoint, ReleaseAddress.
    pub async fn stop_container(&self, net: &Net, ep: &Ep) {
        self.ok(
            "/NetworkDriver.RevokeExternalConnectivity",
            requests::endpoint(&net.nid, &ep.eid),
        )
        .await;
        self.ok(
            "/NetworkDriver.Leave",
            requests::endpoint(&net.nid, &ep.eid),
        )
        .await;
        self.ok(
            "/NetworkDriver.DeleteEndpoint",
            requests::endpoint(&net.nid, &ep.eid),
        )
        .await;
        self.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&net.pool_id, plain_ip(&ep.address)),
        )
        .await;
    }

    /// `docker network rm`: ReleaseAddress(gateway), ReleasePool, DeleteNetwork.
    pub async fn remove_network(&self, net: &Net) {
        self.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&net.pool_id, plain_ip(&net.gateway)),
        )
        .await;
        self.ok(
            "/IpamDriver.ReleasePool",
            requests::release_pool(&net.pool_id),
        )
        .await;
        self.ok("/NetworkDriver.DeleteNetwork", requests::network(&net.nid))
            .await;
    }
}

/// A Docker network made through kuryr IPAM.
#[derive(Debug, Clone)]
pub struct Net {
    pub nid: String,
    pub pool_id: String,
    pub cidr: String,
    /// CIDR with host bits, as in the pool's Data.
    pub gateway: String,
}

/// A container endpoint.
#[derive(Debug, Clone)]
pub struct Ep {
    pub eid: String,
    /// CIDR with host bits.
    pub address: String,
    pub mac: String,
    pub join: Value,
}

/// `10.0.0.5/24` -> `10.0.0.5`.
pub fn plain_ip(cidr: &str) -> &str {
    cidr.split('/').next().unwrap_or(cidr)
}

/// Operations that change Neutron state, from a call-count delta.
pub fn writes(delta: &CallSnapshot) -> Vec<String> {
    delta
        .ops
        .iter()
        .filter(|(name, _)| {
            let op = name.strip_prefix("neutron.").unwrap_or(name);
            name.starts_with("neutron.")
                && !(op.starts_with("list_") || op.starts_with("show_") || op.starts_with("get_"))
        })
        .map(|(name, s)| format!("{name} x{}", s.count))
        .collect()
}

/// The `Err` reply must be a JSON object with a non-empty `Err` naming
/// the problem.
pub fn assert_json_err(path: &str, reply: &Reply, status: u16, mentions: &[&str]) {
    assert_eq!(reply.status, status, "{path}: {}", reply.json);
    let err = reply.err();
    assert!(!err.is_empty(), "{path}: no Err in {}", reply.json);
    for m in mentions {
        assert!(
            err.to_ascii_lowercase().contains(&m.to_ascii_lowercase()),
            "{path}: Err {err:?} should mention {m:?}"
        );
    }
}

pub fn json_of(v: &impl serde::Serialize) -> Value {
    json!(v)
}
