//! Filler for the latency-at-scale runs: ports and networks that are
//! simply there in Neutron, made in bulk (`POST /ports` and `POST
//! /networks` with lists) in the driver's project, the project's quotas
//! raised for the run (as admin) and put back afterwards.
//!
//! The filler ports sit on one network of their own with a /17 subnet of
//! 100.64.0.0/10 (nothing is routed there) and carry the owner
//! `network:dhcp`, which Neutron deletes together with their network: one
//! request removes 10,000 of them. They are unbound: no agent wires them.

use kuryr_openstack::neutron::{NetworkCreate, SubnetCreate};
use kuryr_openstack::{Neutron, Query};
use serde_json::{Value, json};

use crate::Result;

const FILLER: &str = "kuryr-bench-filler";
/// Per bulk request: 500 ports took longer than the client's 15 s
/// request timeout on the lab.
const PORTS_PER_REQUEST: usize = 100;
const NETWORKS_PER_REQUEST: usize = 50;

/// The filler made so far and the quotas to put back.
pub struct Filler {
    /// The driver's account (the filler's owner).
    n: Neutron,
    admin: Neutron,
    project: String,
    old_quota: Value,
    network: String,
    pub ports: usize,
    pub networks: Vec<String>,
}

async fn raw(
    n: &Neutron,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value> {
    let base = n.base_url().await?;
    let resp = n
        .session()
        .call("neutron.bench_raw", &base, method, path, &[], body)
        .await?;
    Ok(resp.json("neutron", "bench")?)
}

impl Filler {
    /// The filler network, and quotas raised for `ports` and `networks`.
    pub async fn new(n: Neutron, admin: Neutron, ports: usize, networks: usize) -> Result<Filler> {
        cleanup(&n).await;
        let net = n
            .create_network(&NetworkCreate {
                name: Some(FILLER.into()),
                ..Default::default()
            })
            .await?;
        let project = net
            .project_id
            .clone()
            .ok_or("the filler network has no project_id")?;
        let mut f = Filler {
            n,
            admin,
            project,
            old_quota: Value::Null,
            network: net.id.clone(),
            ports: 0,
            networks: Vec::new(),
        };
        let path = format!("/quotas/{}", f.project);
        f.old_quota = raw(&f.admin, reqwest::Method::GET, &path, None).await?["quota"].clone();
        let want = json!({"quota": {
            "port": ports + 2000,
            "network": networks + 200,
        }});
        raw(&f.admin, reqwest::Method::PUT, &path, Some(&want)).await?;
        f.n.create_subnet(&SubnetCreate {
            network_id: net.id,
            ip_version: 4,
            name: Some(FILLER.into()),
            cidr: Some("100.64.0.0/17".into()),
            enable_dhcp: Some(false),
            gateway_ip: Some(None),
            ..Default::default()
        })
        .await?;
        Ok(f)
    }

    /// Add ports until there are `total`.
    pub async fn ports_to(&mut self, total: usize) -> Result<()> {
        while self.ports < total {
            let k = (total - self.ports).min(PORTS_PER_REQUEST);
            let ports: Vec<Value> = (0..k)
                .map(|_| {
                    json!({"network_id": self.network, "name": FILLER,
                           "device_owner": "network:dhcp", "device_id": FILLER})
                })
                .collect();
            raw(
                &self.n,
                reqwest::Method::POST,
                "/ports",
                Some(&json!({ "ports": ports })),
            )
            .await?;
            self.ports += k;
        }
        Ok(())
    }

    /// Add networks until there are `total` filler networks.
    pub async fn networks_to(&mut self, total: usize) -> Result<()> {
        while self.networks.len() < total {
            let k = (total - self.networks.len()).min(NETWORKS_PER_REQUEST);
            let nets: Vec<Value> = (0..k).map(|_| json!({"name": FILLER})).collect();
            let made = raw(
                &self.n,
                reqwest::Method::POST,
                "/networks",
                Some(&json!({ "networks": nets })),
            )
            .await?;
            for net in made["networks"].as_array().into_iter().flatten() {
                if let Some(id) = net["id"].as_str() {
                    self.networks.push(id.to_string());
                }
            }
        }
        Ok(())
    }

    /// Delete it all and put the quotas back.
    pub async fn remove(self) {
        cleanup(&self.n).await;
        let path = format!("/quotas/{}", self.project);
        let mut old = serde_json::Map::new();
        for key in ["port", "network"] {
            if let Some(v) = self.old_quota.get(key) {
                old.insert(key.into(), v.clone());
            }
        }
        let _ = raw(
            &self.admin,
            reqwest::Method::PUT,
            &path,
            Some(&json!({ "quota": old })),
        )
        .await;
    }
}

/// Delete every filler network (and with them their ports).
pub async fn cleanup(n: &Neutron) {
    if let Ok(nets) = n
        .list_networks(&Query::new().eq("name", FILLER).fields(&["id"]))
        .await
    {
        for net in nets {
            let _ = n.delete_network(&net.id).await;
        }
    }
}
