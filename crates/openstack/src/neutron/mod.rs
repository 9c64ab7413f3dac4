//! Neutron v2.0: the calls Kuryr makes, typed.

mod types;

pub use types::*;

use std::sync::Arc;

use reqwest::Method;
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
    fn collection(self) -> &'static str {
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

/// Percent-encode one path segment (tags may hold `:` and `/`).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
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

    async fn send(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let base = self.base_url().await?;
        let resp = self
            .session
            .call(op, &base, method, path, query, body)
            .await?;
        resp.json("neutron", op)
    }

    fn take<T: DeserializeOwned>(mut v: Value, key: &str, op: &str) -> Result<T> {
        serde_json::from_value(v[key].take()).map_err(|e| Error::Decode {
            service: "neutron",
            what: format!("{op} ({key})"),
            detail: e.to_string(),
        })
    }

    async fn list<T: DeserializeOwned>(
        &self,
        op: &'static str,
        collection: &str,
        query: &Query,
    ) -> Result<Vec<T>> {
        // Paths use dashes (`security-groups`), bodies underscores.
        let key = collection.replace('-', "_");
        let mut out: Vec<T> = Vec::new();
        let mut page = self
            .send(
                op,
                Method::GET,
                &format!("/{collection}"),
                query.pairs(),
                None,
            )
            .await?;
        loop {
            let next = page[format!("{key}_links")].as_array().and_then(|links| {
                links
                    .iter()
                    .find(|l| l["rel"] == "next")
                    .and_then(|l| l["href"].as_str())
                    .map(str::to_string)
            });
            let items: Vec<T> = Self::take(page, &key, op)?;
            let got = items.len();
            out.extend(items);
            // Follow marker pagination only when the server paginates.
            let Some(href) = next.filter(|_| got > 0) else {
                return Ok(out);
            };
            let url = url::Url::parse(&href).map_err(|e| Error::Decode {
                service: "neutron",
                what: format!("{op} next link"),
                detail: e.to_string(),
            })?;
            let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            page = self
                .send(op, Method::GET, &format!("/{collection}"), &pairs, None)
                .await?;
        }
    }

    async fn show<T: DeserializeOwned>(
        &self,
        op: &'static str,
        collection: &str,
        key: &str,
        id: &str,
    ) -> Result<T> {
        let v = self
            .send(
                op,
                Method::GET,
                &format!("/{collection}/{}", segment(id)),
                &[],
                None,
            )
            .await?;
        Self::take(v, key, op)
    }

    async fn create<T: DeserializeOwned, B: Serialize>(
        &self,
        op: &'static str,
        collection: &str,
        key: &str,
        body: &B,
    ) -> Result<T> {
        let body = json!({ key: body });
        let v = self
            .send(
                op,
                Method::POST,
                &format!("/{collection}"),
                &[],
                Some(&body),
            )
            .await?;
        Self::take(v, key, op)
    }

    async fn update<T: DeserializeOwned, B: Serialize>(
        &self,
        op: &'static str,
        collection: &str,
        key: &str,
        id: &str,
        body: &B,
    ) -> Result<T> {
        let body = json!({ key: body });
        let v = self
            .send(
                op,
                Method::PUT,
                &format!("/{collection}/{}", segment(id)),
                &[],
                Some(&body),
            )
            .await?;
        Self::take(v, key, op)
    }

    async fn delete(&self, op: &'static str, collection: &str, id: &str) -> Result<()> {
        self.send(
            op,
            Method::DELETE,
            &format!("/{collection}/{}", segment(id)),
            &[],
            None,
        )
        .await
        .map(|_| ())
    }

    // --- extensions and agents ---

    pub async fn list_extensions(&self) -> Result<Vec<Extension>> {
        self.list("neutron.list_extensions", "extensions", &Query::new())
            .await
    }

    pub async fn list_agents(&self, query: &Query) -> Result<Vec<Agent>> {
        self.list("neutron.list_agents", "agents", query).await
    }

    // --- networks ---

    pub async fn list_networks(&self, query: &Query) -> Result<Vec<Network>> {
        self.list("neutron.list_networks", "networks", query).await
    }

    pub async fn get_network(&self, id: &str) -> Result<Network> {
        self.show("neutron.show_network", "networks", "network", id)
            .await
    }

    pub async fn create_network(&self, body: &NetworkCreate) -> Result<Network> {
        self.create("neutron.create_network", "networks", "network", body)
            .await
    }

    /// Update arbitrary attributes, e.g. `{"name": "x"}`.
    pub async fn update_network(&self, id: &str, fields: &Value) -> Result<Network> {
        self.update("neutron.update_network", "networks", "network", id, fields)
            .await
    }

    pub async fn delete_network(&self, id: &str) -> Result<()> {
        self.delete("neutron.delete_network", "networks", id).await
    }

    // --- subnets ---

    pub async fn list_subnets(&self, query: &Query) -> Result<Vec<Subnet>> {
        self.list("neutron.list_subnets", "subnets", query).await
    }

    pub async fn get_subnet(&self, id: &str) -> Result<Subnet> {
        self.show("neutron.show_subnet", "subnets", "subnet", id)
            .await
    }

    pub async fn create_subnet(&self, body: &SubnetCreate) -> Result<Subnet> {
        self.create("neutron.create_subnet", "subnets", "subnet", body)
            .await
    }

    pub async fn update_subnet(&self, id: &str, fields: &Value) -> Result<Subnet> {
        self.update("neutron.update_subnet", "subnets", "subnet", id, fields)
            .await
    }

    pub async fn delete_subnet(&self, id: &str) -> Result<()> {
        self.delete("neutron.delete_subnet", "subnets", id).await
    }

    // --- subnet pools ---

    pub async fn list_subnetpools(&self, query: &Query) -> Result<Vec<SubnetPool>> {
        self.list("neutron.list_subnetpools", "subnetpools", query)
            .await
    }

    pub async fn get_subnetpool(&self, id: &str) -> Result<SubnetPool> {
        self.show("neutron.show_subnetpool", "subnetpools", "subnetpool", id)
            .await
    }

    pub async fn create_subnetpool(&self, body: &SubnetPoolCreate) -> Result<SubnetPool> {
        self.create(
            "neutron.create_subnetpool",
            "subnetpools",
            "subnetpool",
            body,
        )
        .await
    }

    pub async fn update_subnetpool(&self, id: &str, fields: &Value) -> Result<SubnetPool> {
        self.update(
            "neutron.update_subnetpool",
            "subnetpools",
            "subnetpool",
            id,
            fields,
        )
        .await
    }

    pub async fn delete_subnetpool(&self, id: &str) -> Result<()> {
        self.delete("neutron.delete_subnetpool", "subnetpools", id)
            .await
    }

    // --- ports ---

    pub async fn list_ports(&self, query: &Query) -> Result<Vec<Port>> {
        self.list("neutron.list_ports", "ports", query).await
    }

    pub async fn get_port(&self, id: &str) -> Result<Port> {
        self.show("neutron.show_port", "ports", "port", id).await
    }

    pub async fn create_port(&self, body: &PortCreate) -> Result<Port> {
        self.create("neutron.create_port", "ports", "port", body)
            .await
    }

    pub async fn update_port(&self, id: &str, body: &PortUpdate) -> Result<Port> {
        self.update("neutron.update_port", "ports", "port", id, body)
            .await
    }

    /// Update a port only if it is still at `revision` (its
    /// `revision_number` when read): a 412 `PreconditionFailed` means
    /// someone changed it since.
    pub async fn update_port_if(&self, id: &str, body: &PortUpdate, revision: u64) -> Result<Port> {
        let base = self.base_url().await?;
        let body = json!({ "port": body });
        let resp = self
            .session
            .call_if(
                "neutron.update_port",
                &base,
                Method::PUT,
                &format!("/ports/{}", segment(id)),
                &[],
                Some(&body),
                Some(revision),
            )
            .await?;
        Self::take(resp.json("neutron", "update_port")?, "port", "update_port")
    }

    pub async fn delete_port(&self, id: &str) -> Result<()> {
        self.delete("neutron.delete_port", "ports", id).await
    }

    // --- security groups ---

    pub async fn list_security_groups(&self, query: &Query) -> Result<Vec<SecurityGroup>> {
        self.list("neutron.list_security_groups", "security-groups", query)
            .await
    }

    pub async fn create_security_group(&self, body: &SecurityGroupCreate) -> Result<SecurityGroup> {
        self.create(
            "neutron.create_security_group",
            "security-groups",
            "security_group",
            body,
        )
        .await
    }

    pub async fn delete_security_group(&self, id: &str) -> Result<()> {
        self.delete("neutron.delete_security_group", "security-groups", id)
            .await
    }

    pub async fn list_security_group_rules(&self, query: &Query) -> Result<Vec<SecurityGroupRule>> {
        self.list(
            "neutron.list_security_group_rules",
            "security-group-rules",
            query,
        )
        .await
    }

    pub async fn create_security_group_rule(
        &self,
        body: &SecurityGroupRuleCreate,
    ) -> Result<SecurityGroupRule> {
        self.create(
            "neutron.create_security_group_rule",
            "security-group-rules",
            "security_group_rule",
            body,
        )
        .await
    }

    pub async fn delete_security_group_rule(&self, id: &str) -> Result<()> {
        self.delete(
            "neutron.delete_security_group_rule",
            "security-group-rules",
            id,
        )
        .await
    }

    // --- trunks ---

    pub async fn list_trunks(&self, query: &Query) -> Result<Vec<Trunk>> {
        self.list("neutron.list_trunks", "trunks", query).await
    }

    pub async fn get_trunk(&self, id: &str) -> Result<Trunk> {
        self.show("neutron.show_trunk", "trunks", "trunk", id).await
    }

    pub async fn create_trunk(&self, body: &TrunkCreate) -> Result<Trunk> {
        self.create("neutron.create_trunk", "trunks", "trunk", body)
            .await
    }

    pub async fn delete_trunk(&self, id: &str) -> Result<()> {
        self.delete("neutron.delete_trunk", "trunks", id).await
    }

    /// Add subports; a segmentation id already used on the trunk is a 409.
    pub async fn add_subports(&self, trunk_id: &str, subports: &[SubPort]) -> Result<Trunk> {
        let body = json!({ "sub_ports": subports });
        let v = self
            .send(
                "neutron.add_subports",
                Method::PUT,
                &format!("/trunks/{}/add_subports", segment(trunk_id)),
                &[],
                Some(&body),
            )
            .await?;
        serde_json::from_value(v).map_err(|e| Error::Decode {
            service: "neutron",
            what: "add_subports".into(),
            detail: e.to_string(),
        })
    }

    /// Remove subports by port id.
    pub async fn remove_subports(&self, trunk_id: &str, port_ids: &[&str]) -> Result<Trunk> {
        let subports: Vec<Value> = port_ids.iter().map(|p| json!({ "port_id": p })).collect();
        let body = json!({ "sub_ports": subports });
        let v = self
            .send(
                "neutron.remove_subports",
                Method::PUT,
                &format!("/trunks/{}/remove_subports", segment(trunk_id)),
                &[],
                Some(&body),
            )
            .await?;
        serde_json::from_value(v).map_err(|e| Error::Decode {
            service: "neutron",
            what: "remove_subports".into(),
            detail: e.to_string(),
        })
    }

    pub async fn get_subports(&self, trunk_id: &str) -> Result<Vec<SubPort>> {
        let v = self
            .send(
                "neutron.get_subports",
                Method::GET,
                &format!("/trunks/{}/get_subports", segment(trunk_id)),
                &[],
                None,
            )
            .await?;
        Self::take(v, "sub_ports", "get_subports")
    }

    // --- tags ---

    /// Add one tag (idempotent on the server side).
    pub async fn add_tag(&self, resource: TagResource, id: &str, tag: &str) -> Result<()> {
        self.send(
            "neutron.add_tag",
            Method::PUT,
            &format!(
                "/{}/{}/tags/{}",
                resource.collection(),
                segment(id),
                segment(tag)
            ),
            &[],
            None,
        )
        .await
        .map(|_| ())
    }

    /// Remove one tag; a 404 means the tag (or resource) is not there.
    pub async fn remove_tag(&self, resource: TagResource, id: &str, tag: &str) -> Result<()> {
        self.send(
            "neutron.remove_tag",
            Method::DELETE,
            &format!(
                "/{}/{}/tags/{}",
                resource.collection(),
                segment(id),
                segment(tag)
            ),
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
        let v = self
            .send(
                "neutron.replace_tags",
                Method::PUT,
                &format!("/{}/{}/tags", resource.collection(), segment(id)),
                &[],
                Some(&body),
            )
            .await?;
        Self::take(v, "tags", "replace_tags")
    }

    /// The tags of one resource.
    pub async fn get_tags(&self, resource: TagResource, id: &str) -> Result<Vec<String>> {
        let v = self
            .send(
                "neutron.get_tags",
                Method::GET,
                &format!("/{}/{}/tags", resource.collection(), segment(id)),
                &[],
                None,
            )
            .await?;
        Self::take(v, "tags", "get_tags")
    }
}

#[cfg(test)]
mod tests {
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
