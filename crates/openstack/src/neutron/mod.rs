//! Neutron v2.0: the calls Kuryr makes, typed. Each method sends one
//! operation of [`ops::OPERATIONS`], the table access rules come from.

pub mod ops;
mod types;

pub use ops::{OPERATIONS, Operation, Verb};
pub use types::*;

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::error::{Error, Result};
use crate::session::Session;

/// Query-string filters for list calls.
///
/// Neutron ANDs different keys and ORs repeated values of one key; `tags`
/// is AND over its comma-separated list, `tags-any` is OR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn new() -> Self {
        Query::default()
    }

    /// `key=value`; repeat to OR several values.
    pub fn eq(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.push((key.to_string(), value.into()));
        self
    }

    /// Resources carrying every one of `tags`.
    pub fn tags<S: AsRef<str>>(self, tags: &[S]) -> Self {
        self.tag_filter("tags", tags)
    }

    /// Resources carrying at least one of `tags`.
    pub fn tags_any<S: AsRef<str>>(self, tags: &[S]) -> Self {
        self.tag_filter("tags-any", tags)
    }

    /// Resources not carrying all of `tags`.
    pub fn not_tags<S: AsRef<str>>(self, tags: &[S]) -> Self {
        self.tag_filter("not-tags", tags)
    }

    fn tag_filter<S: AsRef<str>>(mut self, key: &str, tags: &[S]) -> Self {
        let joined = tags.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(",");
        self.0.push((key.to_string(), joined));
        self
    }

    /// Ports with this fixed IP address.
    pub fn fixed_ip(self, ip: &str) -> Self {
        self.eq("fixed_ips", format!("ip_address={ip}"))
    }

    /// Ports with a fixed IP in this subnet.
    pub fn fixed_ip_subnet(self, subnet_id: &str) -> Self {
        self.eq("fixed_ips", format!("subnet_id={subnet_id}"))
    }

    /// Return only these fields (fewer bytes, same round trip).
    pub fn fields(mut self, fields: &[&str]) -> Self {
        for f in fields {
            self.0.push(("fields".into(), (*f).to_string()));
        }
        self
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// Resources that carry tags (`/v2.0/{collection}/{id}/tags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagResource {
    Network,
    Subnet,
    SubnetPool,
    Port,
    SecurityGroup,
    Trunk,
    Router,
}

impl TagResource {
    /// The collection in the URL (`subnetpools`, `security-groups`).
    pub fn collection(self) -> &'static str {
        match self {
            TagResource::Network => "networks",
            TagResource::Subnet => "subnets",
            TagResource::SubnetPool => "subnetpools",
            TagResource::Port => "ports",
            TagResource::SecurityGroup => "security-groups",
            TagResource::Trunk => "trunks",
            TagResource::Router => "routers",
        }
    }
}

/// A Neutron client sharing its session (token, pool, counters).
#[derive(Debug, Clone)]
pub struct Neutron {
    session: Session,
    base: Arc<OnceCell<String>>,
}

impl Neutron {
    pub fn new(session: Session) -> Self {
        Neutron {
            session,
            base: Arc::new(OnceCell::new()),
        }
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// `<endpoint>/v2.0`, resolved once from the catalog.
    pub async fn base_url(&self) -> Result<String> {
        self.base
            .get_or_try_init(|| async {
                let url = self.session.endpoint("network").await?;
                Ok::<_, Error>(if url.ends_with("/v2.0") {
                    url
                } else {
                    format!("{url}/v2.0")
                })
            })
            .await
            .cloned()
    }

    /// Send `op` with `args` in its path parameters: the one way this
    /// client reaches Neutron.
    async fn send(
        &self,
        op: &'static Operation,
        args: &[&str],
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let base = self.base_url().await?;
        let path = op.path_with(args);
        let resp = self
            .session
            .call(op.name, &base, op.verb.method(), &path, query, body)
            .await?;
        resp.json("neutron", op.name)
    }

    fn take<T: DeserializeOwned>(mut v: Value, key: &str, op: &str) -> Result<T> {
        serde_json::from_value(v[key].take()).map_err(|e| Error::Decode {
            service: "neutron",
            what: format!("{op} ({key})"),
            detail: e.to_string(),
        })
    }

    /// A list operation (`GET /<collection>`), following Neutron's
    /// pagination links.
    async fn list<T: DeserializeOwned>(
        &self,
        op: &'static Operation,
        query: &Query,
    ) -> Result<Vec<T>> {
        // Paths use dashes (`security-groups`), bodies underscores.
        let key = op.path.trim_start_matches('/').replace('-', "_");
        let what = op.name;
        let mut out: Vec<T> = Vec::new();
        let mut page = self.send(op, &[], query.pairs(), None).await?;
        loop {
            let next = page[format!("{key}_links")].as_array().and_then(|links| {
                links
                    .iter()
                    .find(|l| l["rel"] == "next")
                    .and_then(|l| l["href"].as_str())
                    .map(str::to_string)
            });
            let items: Vec<T> = Self::take(page, &key, what)?;
            let got = items.len();
            out.extend(items);
            // Follow marker pagination only when the server paginates.
            let Some(href) = next.filter(|_| got > 0) else {
                return Ok(out);
            };
            let url = url::Url::parse(&href).map_err(|e| Error::Decode {
                service: "neutron",
                what: format!("{what} next link"),
                detail: e.to_string(),
            })?;
            let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            page = self.send(op, &[], &pairs, None).await?;
        }
    }

    async fn show<T: DeserializeOwned>(
        &self,
        op: &'static Operation,
        key: &str,
        id: &str,
    ) -> Result<T> {
        let v = self.send(op, &[id], &[], None).await?;
        Self::take(v, key, op.name)
    }

    async fn create<T: DeserializeOwned, B: Serialize>(
        &self,
        op: &'static Operation,
        key: &str,
        body: &B,
    ) -> Result<T> {
        let body = json!({ key: body });
        let v = self.send(op, &[], &[], Some(&body)).await?;
        Self::take(v, key, op.name)
    }

    async fn update<T: DeserializeOwned, B: Serialize>(
        &self,
        op: &'static Operation,
        key: &str,
        id: &str,
        body: &B,
    ) -> Result<T> {
        let body = json!({ key: body });
        let v = self.send(op, &[id], &[], Some(&body)).await?;
        Self::take(v, key, op.name)
    }

    async fn delete(&self, op: &'static Operation, id: &str) -> Result<()> {
        self.send(op, &[id], &[], None).await.map(|_| ())
    }

    /// A trunk subport action, whose answer is the trunk itself.
    async fn subport_action(
        &self,
        op: &'static Operation,
        trunk_id: &str,
        sub_ports: Value,
    ) -> Result<Trunk> {
        let body = json!({ "sub_ports": sub_ports });
        let v = self.send(op, &[trunk_id], &[], Some(&body)).await?;
        serde_json::from_value(v).map_err(|e| Error::Decode {
            service: "neutron",
            what: op.name.into(),
            detail: e.to_string(),
        })
    }

    // --- extensions and agents ---

    pub async fn list_extensions(&self) -> Result<Vec<Extension>> {
        self.list(&ops::LIST_EXTENSIONS, &Query::new()).await
    }

    pub async fn list_agents(&self, query: &Query) -> Result<Vec<Agent>> {
        self.list(&ops::LIST_AGENTS, query).await
    }

    // --- networks ---

    pub async fn list_networks(&self, query: &Query) -> Result<Vec<Network>> {
        self.list(&ops::LIST_NETWORKS, query).await
    }

    pub async fn get_network(&self, id: &str) -> Result<Network> {
        self.show(&ops::GET_NETWORK, "network", id).await
    }

    pub async fn create_network(&self, body: &NetworkCreate) -> Result<Network> {
        self.create(&ops::CREATE_NETWORK, "network", body).await
    }

    /// Update arbitrary attributes, e.g. `{"name": "x"}`.
    pub async fn update_network(&self, id: &str, fields: &Value) -> Result<Network> {
        self.update(&ops::UPDATE_NETWORK, "network", id, fields)
            .await
    }

    pub async fn delete_network(&self, id: &str) -> Result<()> {
        self.delete(&ops::DELETE_NETWORK, id).await
    }

    /// Delete a network only if it is still at `revision`: a 412
    /// `PreconditionFailed` means it changed (tags included) since.
    pub async fn delete_network_if(&self, id: &str, revision: u64) -> Result<()> {
        let op = &ops::DELETE_NETWORK_IF;
        let base = self.base_url().await?;
        self.session
            .call_if(
                op.name,
                &base,
                op.verb.method(),
                &op.path_with(&[id]),
                &[],
                None,
                Some(revision),
            )
            .await
            .map(|_| ())
    }

    // --- subnets ---

    pub async fn list_subnets(&self, query: &Query) -> Result<Vec<Subnet>> {
        self.list(&ops::LIST_SUBNETS, query).await
    }

    pub async fn get_subnet(&self, id: &str) -> Result<Subnet> {
        self.show(&ops::GET_SUBNET, "subnet", id).await
    }

    pub async fn create_subnet(&self, body: &SubnetCreate) -> Result<Subnet> {
        self.create(&ops::CREATE_SUBNET, "subnet", body).await
    }

    pub async fn update_subnet(&self, id: &str, fields: &Value) -> Result<Subnet> {
        self.update(&ops::UPDATE_SUBNET, "subnet", id, fields).await
    }

    pub async fn delete_subnet(&self, id: &str) -> Result<()> {
        self.delete(&ops::DELETE_SUBNET, id).await
    }

    // --- subnet pools ---

    pub async fn list_subnetpools(&self, query: &Query) -> Result<Vec<SubnetPool>> {
        self.list(&ops::LIST_SUBNETPOOLS, query).await
    }

    pub async fn get_subnetpool(&self, id: &str) -> Result<SubnetPool> {
        self.show(&ops::GET_SUBNETPOOL, "subnetpool", id).await
    }

    pub async fn create_subnetpool(&self, body: &SubnetPoolCreate) -> Result<SubnetPool> {
        self.create(&ops::CREATE_SUBNETPOOL, "subnetpool", body)
            .await
    }

    pub async fn delete_subnetpool(&self, id: &str) -> Result<()> {
        self.delete(&ops::DELETE_SUBNETPOOL, id).await
    }

    // --- ports ---

    pub async fn list_ports(&self, query: &Query) -> Result<Vec<Port>> {
        self.list(&ops::LIST_PORTS, query).await
    }

    pub async fn get_port(&self, id: &str) -> Result<Port> {
        self.show(&ops::GET_PORT, "port", id).await
    }

    /// [`Neutron::list_ports`] while waiting for ports' status, counted
    /// as a poll.
    pub async fn poll_ports(&self, query: &Query) -> Result<Vec<Port>> {
        self.list(&ops::POLL_PORTS, query).await
    }

    pub async fn create_port(&self, body: &PortCreate) -> Result<Port> {
        self.create(&ops::CREATE_PORT, "port", body).await
    }

    /// Several ports in one request (`POST /ports` with a list: Neutron
    /// makes all or none). Tags in the bodies need
    /// `tag-ports-during-bulk-creation`.
    pub async fn create_ports(&self, bodies: &[PortCreate]) -> Result<Vec<Port>> {
        let op = &ops::CREATE_PORT;
        let body = json!({ "ports": bodies });
        let v = self.send(op, &[], &[], Some(&body)).await?;
        Self::take(v, "ports", op.name)
    }

    pub async fn update_port(&self, id: &str, body: &PortUpdate) -> Result<Port> {
        self.update(&ops::UPDATE_PORT, "port", id, body).await
    }

    /// Update a port only if it is still at `revision` (its
    /// `revision_number` when read): a 412 `PreconditionFailed` means
    /// someone changed it since.
    pub async fn update_port_if(&self, id: &str, body: &PortUpdate, revision: u64) -> Result<Port> {
        let op = &ops::UPDATE_PORT_IF;
        let base = self.base_url().await?;
        let body = json!({ "port": body });
        let resp = self
            .session
            .call_if(
                op.name,
                &base,
                op.verb.method(),
                &op.path_with(&[id]),
                &[],
                Some(&body),
                Some(revision),
            )
            .await?;
        Self::take(resp.json("neutron", op.name)?, "port", op.name)
    }

    pub async fn delete_port(&self, id: &str) -> Result<()> {
        self.delete(&ops::DELETE_PORT, id).await
    }

    // --- security groups ---

    pub async fn list_security_groups(&self, query: &Query) -> Result<Vec<SecurityGroup>> {
        self.list(&ops::LIST_SECURITY_GROUPS, query).await
    }

    pub async fn create_security_group(&self, body: &SecurityGroupCreate) -> Result<SecurityGroup> {
        self.create(&ops::CREATE_SECURITY_GROUP, "security_group", body)
            .await
    }

    pub async fn delete_security_group(&self, id: &str) -> Result<()> {
        self.delete(&ops::DELETE_SECURITY_GROUP, id).await
    }

    pub async fn list_security_group_rules(&self, query: &Query) -> Result<Vec<SecurityGroupRule>> {
        self.list(&ops::LIST_SECURITY_GROUP_RULES, query).await
    }

    pub async fn create_security_group_rule(
        &self,
        body: &SecurityGroupRuleCreate,
    ) -> Result<SecurityGroupRule> {
        self.create(
            &ops::CREATE_SECURITY_GROUP_RULE,
            "security_group_rule",
            body,
        )
        .await
    }

    pub async fn delete_security_group_rule(&self, id: &str) -> Result<()> {
        self.delete(&ops::DELETE_SECURITY_GROUP_RULE, id).await
    }

    // --- trunks ---

    pub async fn list_trunks(&self, query: &Query) -> Result<Vec<Trunk>> {
        self.list(&ops::LIST_TRUNKS, query).await
    }

    pub async fn create_trunk(&self, body: &TrunkCreate) -> Result<Trunk> {
        self.create(&ops::CREATE_TRUNK, "trunk", body).await
    }

    pub async fn delete_trunk(&self, id: &str) -> Result<()> {
        self.delete(&ops::DELETE_TRUNK, id).await
    }

    /// Add subports; a segmentation id already used on the trunk is a 409.
    pub async fn add_subports(&self, trunk_id: &str, subports: &[SubPort]) -> Result<Trunk> {
        self.subport_action(&ops::ADD_SUBPORTS, trunk_id, json!(subports))
            .await
    }

    /// Remove subports by port id.
    pub async fn remove_subports(&self, trunk_id: &str, port_ids: &[&str]) -> Result<Trunk> {
        let subports: Vec<Value> = port_ids.iter().map(|p| json!({ "port_id": p })).collect();
        self.subport_action(&ops::REMOVE_SUBPORTS, trunk_id, Value::Array(subports))
            .await
    }

    pub async fn get_subports(&self, trunk_id: &str) -> Result<Vec<SubPort>> {
        let v = self
            .send(&ops::GET_SUBPORTS, &[trunk_id], &[], None)
            .await?;
        Self::take(v, "sub_ports", "get_subports")
    }

    // --- tags ---

    /// Add one tag (idempotent on the server side).
    pub async fn add_tag(&self, resource: TagResource, id: &str, tag: &str) -> Result<()> {
        self.send(&ops::ADD_TAG, &[resource.collection(), id, tag], &[], None)
            .await
            .map(|_| ())
    }

    /// Remove one tag; a 404 means the tag (or resource) is not there.
    pub async fn remove_tag(&self, resource: TagResource, id: &str, tag: &str) -> Result<()> {
        self.send(
            &ops::REMOVE_TAG,
            &[resource.collection(), id, tag],
            &[],
            None,
        )
        .await
        .map(|_| ())
    }

    /// Replace the whole tag list in one call; returns the new list.
    pub async fn replace_tags<S: AsRef<str>>(
        &self,
        resource: TagResource,
        id: &str,
        tags: &[S],
    ) -> Result<Vec<String>> {
        let tags: Vec<&str> = tags.iter().map(AsRef::as_ref).collect();
        let body = json!({ "tags": tags });
        let args = [resource.collection(), id];
        let v = self
            .send(&ops::REPLACE_TAGS, &args, &[], Some(&body))
            .await?;
        Self::take(v, "tags", "replace_tags")
    }

    /// The tags of one resource.
    pub async fn get_tags(&self, resource: TagResource, id: &str) -> Result<Vec<String>> {
        let args = [resource.collection(), id];
        let v = self.send(&ops::GET_TAGS, &args, &[], None).await?;
        Self::take(v, "tags", "get_tags")
    }
}

#[cfg(test)]
mod tests {
    use super::ops::segment;
    use super::*;

    #[test]
    fn query_encodes_kuryr_filters() {
        let q = Query::new()
            .tags(&["kuryr.net.uuid.lh:aa", "kuryr.net.uuid.uh:bb"])
            .fixed_ip("10.0.0.5")
            .fixed_ip_subnet("s1")
            .fields(&["id", "name"]);
        assert_eq!(
            q.pairs(),
            &[
                (
                    "tags".to_string(),
                    "kuryr.net.uuid.lh:aa,kuryr.net.uuid.uh:bb".to_string()
                ),
                ("fixed_ips".to_string(), "ip_address=10.0.0.5".to_string()),
                ("fixed_ips".to_string(), "subnet_id=s1".to_string()),
                ("fields".to_string(), "id".to_string()),
                ("fields".to_string(), "name".to_string()),
            ]
        );
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("kuryr.net.uuid.lh:ab12"), "kuryr.net.uuid.lh:ab12");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}

#[cfg(all(test, feature = "fake"))]
mod table_tests;
