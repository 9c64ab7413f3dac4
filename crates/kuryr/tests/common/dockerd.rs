//! dockerd's side of the Docker commands, for an in-process driver: the
//! plugin calls each command makes, in its order, and what dockerd does
//! when one fails (it releases what IPAM handed out, and the command
//! fails), so a test can inject a fault anywhere and then retry the
//! command as a user would.
//!
//! - `docker network create`: RequestPool, gateway RequestAddress,
//!   CreateNetwork; a failed CreateNetwork releases the gateway and pool.
//! - `docker run --net`: RequestAddress, CreateEndpoint, Join; a failed
//!   CreateEndpoint releases the address, a failed Join deletes the
//!   endpoint and releases the address.
//! - `docker rm -f`: Leave, DeleteEndpoint, ReleaseAddress; failures are
//!   logged by dockerd and the container goes anyway.
//! - `docker network rm`: ReleaseAddress (gateway), ReleasePool,
//!   DeleteNetwork; a failed DeleteNetwork fails the command (the network
//!   stays in Docker).

use serde_json::{Value, json};

use super::env::docker_id;
use super::lab::{Api, Ep, Net, plain_ip};
use super::requests;

/// A dockerd driving one driver; every failed call's `Err` is kept.
pub struct Dockerd<'a> {
    pub api: Api<'a>,
    /// `path: Err` of every call that failed.
    pub errors: Vec<String>,
}

impl<'a> Dockerd<'a> {
    pub fn new(api: Api<'a>) -> Dockerd<'a> {
        Dockerd {
            api,
            errors: Vec::new(),
        }
    }

    /// One call: its reply on 200, else `None` with the error kept.
    pub async fn call(&mut self, path: &str, body: Value) -> Option<Value> {
        let reply = self.api.call(path, body).await;
        if reply.status == 200 {
            return Some(reply.json);
        }
        assert!(
            !reply.err().is_empty(),
            "{path}: a failure without an Err text: {}",
            reply.json
        );
        self.errors.push(format!("{path}: {}", reply.err()));
        None
    }

    /// `docker network create` with `--subnet cidr` and `-o generic`.
    pub async fn network_create(&mut self, cidr: &str, generic: Value) -> Option<Net> {
        let pool = self
            .call(
                "/IpamDriver.RequestPool",
                requests::request_pool(cidr, "", false, json!({})),
            )
            .await?;
        let pool_id = pool["PoolID"].as_str()?.to_string();
        let gateway = pool["Data"]["com.docker.network.gateway"]
            .as_str()?
            .to_string();
        let net = Net {
            nid: docker_id(),
            pool_id,
            cidr: pool["Pool"].as_str()?.to_string(),
            gateway,
        };
        let gw_ip = plain_ip(&net.gateway).to_string();
        let created = self
            .call(
                "/NetworkDriver.CreateNetwork",
                requests::create_network(
                    &net.nid,
                    generic,
                    vec![requests::ipam_data(&net.cidr, &net.gateway)],
                    vec![],
                ),
            )
            .await;
        if created.is_none() {
            self.release(&net, &gw_ip).await;
            self.call(
                "/IpamDriver.ReleasePool",
                requests::release_pool(&net.pool_id),
            )
            .await;
            return None;
        }
        Some(net)
    }

    async fn release(&mut self, net: &Net, ip: &str) {
        self.call(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&net.pool_id, ip),
        )
        .await;
    }

    /// `docker run --net` (a dynamic address).
    pub async fn run(&mut self, net: &Net) -> Option<Ep> {
        let addr = self
            .call(
                "/IpamDriver.RequestAddress",
                requests::request_address(&net.pool_id, ""),
            )
            .await?;
        let address = addr["Address"].as_str()?.to_string();
        let eid = docker_id();
        let ip = plain_ip(&address).to_string();
        let Some(created) = self
            .call(
                "/NetworkDriver.CreateEndpoint",
                requests::create_endpoint(&net.nid, &eid, &address, ""),
            )
            .await
        else {
            self.release(net, &ip).await;
            return None;
        };
        let Some(join) = self
            .call("/NetworkDriver.Join", requests::join(&net.nid, &eid))
            .await
        else {
            self.call(
                "/NetworkDriver.DeleteEndpoint",
                requests::endpoint(&net.nid, &eid),
            )
            .await;
            self.release(net, &ip).await;
            return None;
        };
        Some(Ep {
            eid,
            address,
            mac: created["Interface"]["MacAddress"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            join,
        })
    }

    /// `docker rm -f`: every call is made whatever the previous answered.
    pub async fn rm(&mut self, net: &Net, ep: &Ep) {
        let body = requests::endpoint(&net.nid, &ep.eid);
        self.call("/NetworkDriver.Leave", body.clone()).await;
        self.call("/NetworkDriver.DeleteEndpoint", body).await;
        self.release(net, plain_ip(&ep.address)).await;
    }

    /// `docker network rm`: true if it succeeded.
    pub async fn network_rm(&mut self, net: &Net) -> bool {
        self.release(net, plain_ip(&net.gateway)).await;
        self.call(
            "/IpamDriver.ReleasePool",
            requests::release_pool(&net.pool_id),
        )
        .await;
        self.call("/NetworkDriver.DeleteNetwork", requests::network(&net.nid))
            .await
            .is_some()
    }
}
