//! Which Neutron projects the driver acts in.
//!
//! Agent mode needs a credential with Neutron's admin role (to set
//! `binding:host_id`), and such a credential sees every project. What the
//! driver does with it on a Docker user's say-so (`-o neutron.net.uuid=`,
//! a pool name) is the security boundary, so by default it works in its
//! own token's project only: its lists are filtered by `project_id`, and a
//! network, subnet or subnet pool of another project is refused with an
//! error naming the project, unless it is shared or its project is listed
//! in `[neutron] allowed_projects` (`*`: any project, kuryr-libnetwork's
//! behaviour).
//!
//! Objects found by kuryr's own Docker-ID tags are not refused: a network
//! adopted before the allow-list existed (kuryr-libnetwork adopts any
//! project's network) is still used and released cleanly.

use std::collections::BTreeSet;

use kuryr_openstack::Query;

use super::{DriverError, Result};

/// `[neutron] allowed_projects`: projects besides the driver's own whose
/// networks, subnets and pools it may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AllowedProjects {
    /// These project IDs (none by default).
    #[default]
    None,
    Listed(BTreeSet<String>),
    /// `*`: any project.
    Any,
}

impl AllowedProjects {
    /// From the option's values: IDs, or `*` alone.
    pub fn from_list(values: &[String]) -> AllowedProjects {
        let ids: BTreeSet<String> = values
            .iter()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if ids.contains("*") {
            AllowedProjects::Any
        } else if ids.is_empty() {
            AllowedProjects::None
        } else {
            AllowedProjects::Listed(ids)
        }
    }
}

/// The driver's own project and the ones it is allowed to use.
#[derive(Debug, Clone)]
pub struct Projects {
    own: String,
    allowed: AllowedProjects,
}

impl Projects {
    pub fn new(own: String, allowed: AllowedProjects) -> Projects {
        Projects { own, allowed }
    }

    /// The project of the driver's token.
    pub fn own(&self) -> &str {
        &self.own
    }

    /// May the driver use an object of `project` (shared or not)?
    pub fn may_use(&self, project: Option<&str>, shared: bool) -> bool {
        let Some(project) = project else {
            // Neutron always says; an object without one is not another's.
            return true;
        };
        shared
            || project == self.own
            || match &self.allowed {
                AllowedProjects::None => false,
                AllowedProjects::Listed(ids) => ids.contains(project),
                AllowedProjects::Any => true,
            }
    }

    /// `Ok` if the driver may use `what` `id` of `project`, else the error
    /// a Docker user sees.
    pub fn check(&self, what: &str, id: &str, project: Option<&str>, shared: bool) -> Result<()> {
        if self.may_use(project, shared) {
            return Ok(());
        }
        Err(DriverError::Invalid(format!(
            "{what} {id} belongs to project {}, not to this driver's project {}: share it, \
             or add that project to [neutron] allowed_projects in kuryr.conf",
            project.unwrap_or_default(),
            self.own
        )))
    }

    /// `q` limited to the projects the driver may use (its own and the
    /// allowed ones; unchanged with `*`). Shared objects of other projects
    /// need a query of their own ([`Projects::shared`]).
    pub fn scoped(&self, q: Query) -> Query {
        match &self.allowed {
            AllowedProjects::Any => q,
            AllowedProjects::None => q.eq("project_id", &self.own),
            AllowedProjects::Listed(ids) => ids
                .iter()
                .filter(|id| **id != self.own)
                .fold(q.eq("project_id", &self.own), |q, id| {
                    q.eq("project_id", id)
                }),
        }
    }

    /// `q` limited to the driver's own project: what kuryr makes lives
    /// there (pools named `kuryrPool-<cidr>`, half-made networks).
    pub fn own_only(&self, q: Query) -> Query {
        q.eq("project_id", &self.own)
    }

    /// Whether objects outside [`Projects::scoped`] can be usable (shared
    /// ones), so a scoped list needs a second, `shared=true` one.
    pub fn needs_shared_query(&self) -> bool {
        self.allowed != AllowedProjects::Any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(ids: &[&str]) -> AllowedProjects {
        AllowedProjects::from_list(&ids.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn own_shared_and_allowed_are_usable_nothing_else() {
        let p = Projects::new("mine".into(), listed(&["friend", " "]));
        assert!(p.may_use(Some("mine"), false));
        assert!(p.may_use(Some("friend"), false));
        assert!(p.may_use(Some("stranger"), true));
        assert!(!p.may_use(Some("stranger"), false));
        let e = p
            .check("Neutron network", "n1", Some("stranger"), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("n1") && e.contains("stranger") && e.contains("mine"),
            "{e}"
        );
        assert!(e.contains("allowed_projects"), "{e}");
    }

    #[test]
    fn a_star_allows_any_project_and_no_filter() {
        let p = Projects::new("mine".into(), listed(&["*"]));
        assert!(p.may_use(Some("stranger"), false));
        assert_eq!(p.scoped(Query::new()), Query::new());
        assert!(!p.needs_shared_query());
    }

    #[test]
    fn scoped_queries_name_each_project_once() {
        let p = Projects::new("mine".into(), listed(&["a", "mine", "b"]));
        let pairs: Vec<_> = p
            .scoped(Query::new())
            .pairs()
            .iter()
            .map(|(_, v)| v.clone())
            .collect();
        assert_eq!(pairs, ["mine", "a", "b"]);
        let none = Projects::new("mine".into(), AllowedProjects::None);
        assert_eq!(
            none.scoped(Query::new()),
            Query::new().eq("project_id", "mine")
        );
        assert_eq!(listed(&[]), AllowedProjects::None);
    }
}
