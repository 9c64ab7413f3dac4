//! Every client method sends exactly the request its [`Operation`] entry
//! says (method, path with its arguments escaped, accounting name), and
//! every entry of [`OPERATIONS`] has a method: the table is the client.

use std::collections::BTreeSet;
use std::future::Future;

use serde_json::json;

use super::*;
use crate::fake::FakeNeutron;

const ID: &str = "id-1";
/// A tag needing escapes, as kuryr's do (`:`, and `/` in CIDR tags).
const TAG: &str = "kuryr.net.uuid.lh:ab/24";

struct Harness {
    fake: std::sync::Arc<FakeNeutron>,
    n: Neutron,
    covered: BTreeSet<&'static str>,
}

impl Harness {
    /// Await `call` (its outcome does not matter: the fake answers 404 to
    /// most of these made-up IDs) and check the one request it sent.
    async fn check<T>(
        &mut self,
        op: &'static Operation,
        args: &[&str],
        call: impl Future<Output = Result<T>>,
    ) {
        let before_log = self.fake.requests().len();
        let before = self.n.session().stats().snapshot();
        let _ = call.await;
        let log = self.fake.requests();
        assert_eq!(
            &log[before_log..],
            &[format!("{} {}", op.verb.as_str(), op.path_with(args))],
            "{}: the request sent",
            op.function
        );
        let after = self.n.session().stats().snapshot();
        let count = |s: &crate::CallSnapshot| s.ops.get(op.name).map_or(0, |o| o.count);
        assert_eq!(
            count(&after),
            count(&before) + 1,
            "{}: counted as {}",
            op.function,
            op.name
        );
        assert!(
            self.covered.insert(op.function),
            "{} checked twice",
            op.function
        );
    }
}

#[tokio::test]
async fn every_method_sends_its_table_entry_and_every_entry_has_a_method() {
    let fake = FakeNeutron::new();
    let n = fake.client();
    let mut h = Harness {
        fake,
        n: n.clone(),
        covered: BTreeSet::new(),
    };
    let q = Query::new();
    let net = TagResource::Network.collection();
    let port = TagResource::Port.collection();

    h.check(&ops::LIST_EXTENSIONS, &[], n.list_extensions())
        .await;
    h.check(&ops::LIST_AGENTS, &[], n.list_agents(&q)).await;

    h.check(&ops::LIST_NETWORKS, &[], n.list_networks(&q)).await;
    h.check(&ops::GET_NETWORK, &[ID], n.get_network(ID)).await;
    let body = NetworkCreate::default();
    h.check(&ops::CREATE_NETWORK, &[], n.create_network(&body))
        .await;
    let fields = json!({"name": "x"});
    h.check(&ops::UPDATE_NETWORK, &[ID], n.update_network(ID, &fields))
        .await;
    h.check(&ops::DELETE_NETWORK, &[ID], n.delete_network(ID))
        .await;
    let call = n.delete_network_if(ID, 3);
    h.check(&ops::DELETE_NETWORK_IF, &[ID], call).await;

    h.check(&ops::LIST_SUBNETS, &[], n.list_subnets(&q)).await;
    h.check(&ops::GET_SUBNET, &[ID], n.get_subnet(ID)).await;
    let body = SubnetCreate::default();
    h.check(&ops::CREATE_SUBNET, &[], n.create_subnet(&body))
        .await;
    h.check(&ops::UPDATE_SUBNET, &[ID], n.update_subnet(ID, &fields))
        .await;
    h.check(&ops::DELETE_SUBNET, &[ID], n.delete_subnet(ID))
        .await;

    h.check(&ops::LIST_SUBNETPOOLS, &[], n.list_subnetpools(&q))
        .await;
    h.check(&ops::GET_SUBNETPOOL, &[ID], n.get_subnetpool(ID))
        .await;
    let body = SubnetPoolCreate::default();
    h.check(&ops::CREATE_SUBNETPOOL, &[], n.create_subnetpool(&body))
        .await;
    h.check(&ops::DELETE_SUBNETPOOL, &[ID], n.delete_subnetpool(ID))
        .await;

    h.check(&ops::LIST_PORTS, &[], n.list_ports(&q)).await;
    h.check(&ops::GET_PORT, &[ID], n.get_port(ID)).await;
    h.check(&ops::POLL_PORTS, &[], n.poll_ports(&q)).await;
    let body = PortCreate::default();
    h.check(&ops::CREATE_PORT, &[], n.create_port(&body)).await;
    let update = PortUpdate::default();
    h.check(&ops::UPDATE_PORT, &[ID], n.update_port(ID, &update))
        .await;
    let call = n.update_port_if(ID, &update, 7);
    h.check(&ops::UPDATE_PORT_IF, &[ID], call).await;
    h.check(&ops::DELETE_PORT, &[ID], n.delete_port(ID)).await;

    h.check(&ops::LIST_SECURITY_GROUPS, &[], n.list_security_groups(&q))
        .await;
    let body = SecurityGroupCreate::default();
    let call = n.create_security_group(&body);
    h.check(&ops::CREATE_SECURITY_GROUP, &[], call).await;
    let call = n.delete_security_group(ID);
    h.check(&ops::DELETE_SECURITY_GROUP, &[ID], call).await;
    let call = n.list_security_group_rules(&q);
    h.check(&ops::LIST_SECURITY_GROUP_RULES, &[], call).await;
    let body = SecurityGroupRuleCreate::default();
    let call = n.create_security_group_rule(&body);
    h.check(&ops::CREATE_SECURITY_GROUP_RULE, &[], call).await;
    let call = n.delete_security_group_rule(ID);
    h.check(&ops::DELETE_SECURITY_GROUP_RULE, &[ID], call).await;

    h.check(&ops::LIST_TRUNKS, &[], n.list_trunks(&q)).await;
    let body = TrunkCreate::default();
    h.check(&ops::CREATE_TRUNK, &[], n.create_trunk(&body))
        .await;
    h.check(&ops::DELETE_TRUNK, &[ID], n.delete_trunk(ID)).await;
    let sub = [SubPort::default()];
    h.check(&ops::ADD_SUBPORTS, &[ID], n.add_subports(ID, &sub))
        .await;
    let call = n.remove_subports(ID, &["p1"]);
    h.check(&ops::REMOVE_SUBPORTS, &[ID], call).await;
    h.check(&ops::GET_SUBPORTS, &[ID], n.get_subports(ID)).await;

    let call = n.add_tag(TagResource::Port, ID, TAG);
    h.check(&ops::ADD_TAG, &[port, ID, TAG], call).await;
    let call = n.remove_tag(TagResource::Network, ID, TAG);
    h.check(&ops::REMOVE_TAG, &[net, ID, TAG], call).await;
    let call = n.replace_tags(TagResource::Network, ID, &[TAG]);
    h.check(&ops::REPLACE_TAGS, &[net, ID], call).await;
    let call = n.get_tags(TagResource::Port, ID);
    h.check(&ops::GET_TAGS, &[port, ID], call).await;

    let table: BTreeSet<&str> = OPERATIONS.iter().map(|op| op.function).collect();
    assert_eq!(table.len(), OPERATIONS.len(), "one entry per method");
    assert_eq!(h.covered, table, "every entry is checked, and only those");
    let names: BTreeSet<&str> = OPERATIONS.iter().map(|op| op.name).collect();
    assert_eq!(
        names.len(),
        OPERATIONS.len(),
        "one accounting name per entry"
    );
}

#[test]
fn paths_escape_arguments_and_rules_use_one_segment_per_parameter() {
    assert_eq!(
        ops::ADD_TAG.path_with(&["ports", "p 1", TAG]),
        "/ports/p%201/tags/kuryr.net.uuid.lh:ab%2F24"
    );
    assert_eq!(ops::GET_NETWORK.rule_path(None), "/v2.0/networks/*");
    assert_eq!(
        ops::REPLACE_TAGS.rule_path(Some(TagResource::SubnetPool)),
        "/v2.0/subnetpools/*/tags"
    );
    assert_eq!(
        ops::ADD_SUBPORTS.rule_path(None),
        "/v2.0/trunks/*/add_subports"
    );
    for op in OPERATIONS {
        assert!(op.path.starts_with('/'), "{}", op.function);
        assert!(op.name.starts_with("neutron."), "{}", op.function);
        assert_eq!(
            op.takes_resource(),
            op.path.starts_with("/{resource}/"),
            "{}",
            op.function
        );
    }
}
