//! Scale tests that load the one lab Neutron hard enough to slow every
//! other test beside them: `run-tests` runs `alone_*` binaries in a
//! phase of their own, one test at a time.
//!
//! Needs the lab: `eval "$(lab/env kuryr)"; cargo nextest run -p kuryr --test alone_scale`.

mod common;

use common::env::{docker_id, id_tags};
use common::lab::{self, Lab};
use common::requests;
use kuryr_openstack::TagResource;
use serde_json::{Value, json};

/// A restart with 500 kuryr networks in Neutron: the start-up rebuild
/// reads their subnets in bounded requests (one per network ID used to
/// make a query string past 8 KiB: 414 at start), and serves them.
#[tokio::test]
async fn a_restart_with_500_kuryr_networks() {
    use futures_util::StreamExt;
    const NETWORKS: usize = 500;
    lab::run(async |lab: &Lab| {
        let n = &lab.neutron;
        raise_network_quota(lab, 2000).await;
        // What an interrupted earlier run left would use up the tenant
        // network ids (VXLAN VNIs): removed first.
        let stale: Vec<String> = n
            .list_networks(&kuryr_openstack::Query::new().fields(&["id", "name"]))
            .await
            .expect("list networks")
            .into_iter()
            .filter(|net| net.name.starts_with("kt-many-"))
            .map(|net| net.id)
            .collect();
        for id in &stale {
            let _ = n.delete_network(id).await;
        }
        let ids: Vec<String> = (0..NETWORKS).map(|_| docker_id()).collect();
        for id in &ids {
            lab.track_network(id);
        }
        // One bulk create, then the tags (not accepted in a create).
        let bodies: Vec<Value> = ids
            .iter()
            .map(|id| json!({"name": format!("kt-many-{}", &id[..8])}))
            .collect();
        let t0 = std::time::Instant::now();
        // In bulk requests of 50: one of 500 can outlast the client's
        // request timeout (15 s) on a busy lab.
        let mut made = Vec::new();
        for chunk in bodies.chunks(50) {
            made.extend(bulk_create_networks(lab, chunk.to_vec()).await);
        }
        println!("bulk create: {} ms", t0.elapsed().as_millis());
        assert_eq!(made.len(), NETWORKS);
        let tagged = futures_util::stream::iter(made.iter().zip(&ids))
            .map(|(net, id)| async move {
                n.replace_tags(TagResource::Network, net, &id_tags(id))
                    .await
                    .expect("tag network");
            })
            .buffer_unordered(8)
            .count()
            .await;
        assert_eq!(tagged, NETWORKS);
        println!("tagged: {} ms", t0.elapsed().as_millis());
        let started = std::time::Instant::now();
        let d = lab.driver().await;
        let took = started.elapsed();
        println!(
            "start-up with {NETWORKS} kuryr networks: {} ms",
            took.as_millis()
        );
        let api = lab.api(&d);
        let net = lab::Net {
            nid: ids[NETWORKS - 1].clone(),
            pool_id: String::new(),
            cidr: String::new(),
            gateway: String::new(),
        };
        // Served from the index: no Neutron lookup.
        let (_, calls) = api
            .neutron_calls(api.ok("/NetworkDriver.DeleteNetwork", requests::network(&net.nid)))
            .await;
        assert!(
            !calls.ops.contains_key("neutron.list_networks"),
            "{}",
            calls.summary()
        );
        futures_util::stream::iter(made.iter())
            .map(|id| async move {
                match n.delete_network(id).await {
                    Err(e) if !e.is_not_found() => panic!("delete {id}: {e}"),
                    _ => {}
                }
            })
            .buffer_unordered(8)
            .count()
            .await;
        println!("deleted: {} ms", t0.elapsed().as_millis());
        // All gone: the cleanup need not look for 500 networks again.
        lab.untrack_networks();
    })
    .await;
}

/// `POST /v2.0/networks` with a list: one request for many networks.
async fn bulk_create_networks(lab: &Lab, bodies: Vec<Value>) -> Vec<String> {
    let base = lab.neutron.base_url().await.unwrap();
    let resp = lab
        .neutron
        .session()
        .call(
            "neutron.create_network",
            &base,
            reqwest::Method::POST,
            "/networks",
            &[],
            Some(&json!({ "networks": bodies })),
        )
        .await
        .expect("bulk create networks");
    let v: Value = resp.json("neutron", "bulk create").unwrap();
    v["networks"]
        .as_array()
        .expect("networks")
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

/// Neutron's default quota is 100 networks a project.
async fn raise_network_quota(lab: &Lab, networks: u32) {
    let session = lab.neutron.session();
    let project = session
        .token()
        .await
        .expect("token")
        .project_id
        .clone()
        .expect("a project-scoped token");
    let base = lab.neutron.base_url().await.unwrap();
    session
        .call(
            "neutron.update_quota",
            &base,
            reqwest::Method::PUT,
            &format!("/quotas/{project}"),
            &[],
            Some(&json!({"quota": {"network": networks}})),
        )
        .await
        .expect("raise the network quota");
}
