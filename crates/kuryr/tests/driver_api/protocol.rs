//! Malformed requests against a driver with real objects: refused before
//! Neutron is touched. (Which body each path accepts is unit-tested, 150+
//! cases, in `src/protocol/call/tests.rs`; these show that a refusal
//! changes nothing and that the driver keeps serving.)

use super::*;

/// Broken requests get a 400 (404 for unknown methods) with a JSON `Err`
/// naming the problem, change nothing in Neutron, and never bring the
/// driver down.
#[tokio::test]
async fn malformed_requests_are_rejected_without_side_effects() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        // Real objects, so well-formed parts of the bad requests refer to
        // something that exists and a wrong write would be visible.
        let net = api.create_network(&lab.cidr4(0)).await;
        let ep = api.start_container(&net).await;
        let nnet = lab.network_of(&net.nid).await;
        let ports_before = lab.ports_in(&nnet.id).await.len();
        let pools_before = lab
            .pools_named(&format!("kuryrPool-{}", net.cidr))
            .await
            .len();
        let before = api.calls();

        let (nid, eid, pid) = (net.nid.as_str(), ep.eid.as_str(), net.pool_id.as_str());
        let new_eid = docker_id();
        let free = format!("{}/24", lab.ip4(0, 200));
        let cases: Vec<(&str, Value, &[&str])> = vec![
            (
                "/NetworkDriver.DeleteNetwork",
                json!({"NetworkID": "../../etc"}),
                &["Docker ID"],
            ),
            (
                "/NetworkDriver.DeleteEndpoint",
                json!({"NetworkID": nid, "EndpointID": eid.to_uppercase()}),
                &["Docker ID"],
            ),
            (
                "/IpamDriver.ReleaseAddress",
                json!({"PoolID": format!("{pid}/../../ports"), "Address": lab.ip4(0, 77)}),
                &["PoolID"],
            ),
            (
                "/IpamDriver.ReleasePool",
                json!({"PoolID": ".."}),
                &["PoolID"],
            ),
            (
                "/IpamDriver.ReleaseAddress",
                json!({"PoolID": pid}),
                &["Address"],
            ),
            (
                "/NetworkDriver.CreateEndpoint",
                json!({"NetworkID": nid, "EndpointID": new_eid,
                       "Interface": {"Address": free, "MacAddress": "zz:zz:zz:zz:zz:zz"}}),
                &["MAC"],
            ),
            (
                "/NetworkDriver.ProgramExternalConnectivity",
                requests::program(nid, eid, json!([{"Proto": 6, "Port": 70000}])),
                &["exposedports"],
            ),
        ];
        for (path, body, words) in &cases {
            let reply = api.call(path, body.clone()).await;
            assert_json_err(&format!("{path} {body}"), &reply, 400, words);
        }
        let reply = api.raw("/../../etc/passwd", b"{\"NetworkID\":").await;
        assert_json_err("unknown method", &reply, 404, &["unknown"]);

        let delta = api.calls().since(&before);
        assert!(
            delta.ops.is_empty(),
            "refused requests reached Neutron: {}",
            delta.summary()
        );
        assert_eq!(lab.ports_in(&nnet.id).await.len(), ports_before);
        assert_eq!(
            lab.pools_named(&format!("kuryrPool-{}", net.cidr))
                .await
                .len(),
            pools_before
        );
        assert_eq!(lab.networks_of(&net.nid).await.len(), 1);
        assert!(lab.ports_of(&new_eid).await.is_empty());

        // Still serving, and the real objects still work.
        let join = api
            .ok("/NetworkDriver.Join", requests::join(nid, eid))
            .await;
        assert_eq!(join["Gateway"], plain_ip(&net.gateway));
        api.stop_container(&net, &ep).await;
        api.remove_network(&net).await;
        lab.assert_clean().await;
    })
    .await;
}
