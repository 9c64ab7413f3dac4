//! Finding what a Docker request names: the network or endpoint of a
//! Docker ID (index first, then Neutron's tags), and a user's Neutron
//! resource given with `-o neutron.<kind>.uuid|name` (by ID, or by a name
//! that must be unique).

use kuryr_openstack::Query;
use kuryr_openstack::neutron::{Network, Subnet, SubnetPool};

use super::index::{EndpointEntry, NetworkEntry};
use super::{AllowedProjects, Driver, DriverError, Projects, Result};
use crate::protocol::DockerId;

/// Who owns a Neutron object, and whether it is shared.
trait Owned {
    fn id(&self) -> &str;
    fn owner(&self) -> (Option<&str>, bool);
}

impl Owned for Network {
    fn id(&self) -> &str {
        &self.id
    }
    fn owner(&self) -> (Option<&str>, bool) {
        (self.project_id.as_deref(), self.shared)
    }
}

impl Owned for SubnetPool {
    fn id(&self) -> &str {
        &self.id
    }
    fn owner(&self) -> (Option<&str>, bool) {
        (self.project_id.as_deref(), self.shared)
    }
}

/// A subnet is shared when its network is: [`Driver::find_subnet`] asks.
impl Owned for Subnet {
    fn id(&self) -> &str {
        &self.id
    }
    fn owner(&self) -> (Option<&str>, bool) {
        (self.project_id.as_deref(), false)
    }
}

/// A user's Neutron resource by ID, or by a name only it has among those
/// the driver may use ([`Projects`]). `what` names it in errors ("subnet
/// pool"), `option` is the `-o` key that takes its ID
/// ("neutron.pool.uuid"). An object of a project the driver may not use
/// is refused, naming that project.
async fn by_id_or_name<T: Owned>(
    projects: &Projects,
    what: &str,
    option: &str,
    id: Option<&String>,
    name: Option<&String>,
    get: impl AsyncFnOnce(&str) -> kuryr_openstack::Result<T>,
    list: impl AsyncFnOnce(&str) -> kuryr_openstack::Result<Vec<T>>,
) -> Result<T> {
    if let Some(id) = id {
        let found = get(id).await.map_err(|e| {
            if e.is_not_found() {
                DriverError::NotFound(format!("{what} {id} does not exist"))
            } else {
                e.into()
            }
        })?;
        let (project, shared) = found.owner();
        projects.check(what, found.id(), project, shared)?;
        return Ok(found);
    }
    let name = name.map(String::as_str).unwrap_or_default();
    let all = list(name).await?;
    let (mut usable, foreign): (Vec<T>, Vec<T>) = all.into_iter().partition(|o| {
        let (project, shared) = o.owner();
        projects.may_use(project, shared)
    });
    match usable.len() {
        0 => match foreign.first() {
            Some(o) => {
                let (project, shared) = o.owner();
                projects.check(what, o.id(), project, shared)?;
                unreachable!("check refuses what may_use refused")
            }
            None => Err(DriverError::NotFound(format!(
                "no {what} is named {name:?}"
            ))),
        },
        1 => Ok(usable.remove(0)),
        n => Err(DriverError::Invalid(format!(
            "{n} {what}s are named {name:?}: use {option}"
        ))),
    }
}

impl Driver {
    /// `-o neutron.net.uuid|name`.
    pub(super) async fn find_network(
        &self,
        id: Option<&String>,
        name: Option<&String>,
    ) -> Result<Network> {
        let n = &self.neutron;
        by_id_or_name(
            self.projects()?,
            "Neutron network",
            "neutron.net.uuid",
            id,
            name,
            async |id| n.get_network(id).await,
            async |name| n.list_networks(&Query::new().eq("name", name)).await,
        )
        .await
    }

    /// `neutron.pool[.v6].uuid|name`.
    pub(super) async fn find_subnetpool(
        &self,
        id: Option<&String>,
        name: Option<&String>,
    ) -> Result<SubnetPool> {
        let n = &self.neutron;
        by_id_or_name(
            self.projects()?,
            "subnet pool",
            "neutron.pool.uuid",
            id,
            name,
            async |id| n.get_subnetpool(id).await,
            async |name| n.list_subnetpools(&Query::new().eq("name", name)).await,
        )
        .await
    }

    /// `neutron.subnet[.v6].uuid|name`: a subnet of the driver's projects,
    /// or of a shared network (a subnet has no `shared` of its own).
    pub(super) async fn find_subnet(
        &self,
        id: Option<&String>,
        name: Option<&String>,
    ) -> Result<Subnet> {
        let n = &self.neutron;
        let projects = self.projects()?;
        let shared_network =
            async |s: &Subnet| -> Result<bool> { Ok(n.get_network(&s.network_id).await?.shared) };
        // Found in any project, then judged with its network's sharing.
        let any = Projects::new(projects.own().to_string(), AllowedProjects::Any);
        let subnet = by_id_or_name(
            &any,
            "subnet",
            "neutron.subnet.uuid",
            id,
            name,
            async |id| n.get_subnet(id).await,
            async |name| {
                let all = n.list_subnets(&Query::new().eq("name", name)).await?;
                let (mut usable, foreign): (Vec<_>, Vec<_>) = all
                    .into_iter()
                    .partition(|s| projects.may_use(s.project_id.as_deref(), false));
                for s in &foreign {
                    // An unknown network's subnet is judged below.
                    if shared_network(s).await.unwrap_or(false) {
                        usable.push(s.clone());
                    }
                }
                Ok(if usable.is_empty() { foreign } else { usable })
            },
        )
        .await?;
        let project = subnet.project_id.as_deref();
        if !projects.may_use(project, false) {
            let shared = shared_network(&subnet).await?;
            projects.check("subnet", &subnet.id, project, shared)?;
        }
        Ok(subnet)
    }

    /// The network of a Docker ID, which must exist.
    pub(super) async fn known_network(&self, id: &DockerId) -> Result<NetworkEntry> {
        self.network_entry(id).await?.ok_or_else(|| {
            DriverError::NotFound(format!("no Neutron network for Docker network {id}"))
        })
    }

    /// The endpoint of a Docker ID, which must exist.
    pub(super) async fn known_endpoint(&self, id: &DockerId) -> Result<EndpointEntry> {
        self.endpoint_entry(id)
            .await?
            .ok_or_else(|| DriverError::NotFound(format!("no Neutron port for endpoint {id}")))
    }
}
