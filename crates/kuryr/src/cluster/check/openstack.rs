//! `keystone`: a token is issued for the configured credential;
//! `neutron`: Neutron answers and has the extensions the mode needs;
//! `agent`: in agent mode, a live L2 agent reports this binding host.

use kuryr_openstack::neutron::Agent;
use kuryr_openstack::{Error as OsError, Neutron, Query, Session};

use super::{L2_AGENT_TYPES, Loaded, Report, Status};
use crate::config::{Config, PortDriverKind};

/// Neutron, and whether it answered the `neutron` check.
pub(super) struct NeutronState {
    pub(super) client: Neutron,
    pub(super) answers: bool,
}

/// Get a token; the session when it worked.
pub(super) async fn check_keystone(r: &mut Report, loaded: &Loaded) -> Option<Session> {
    let Some(sc) = &loaded.session_config else {
        r.push("keystone", Status::Skip, "needs a loadable configuration");
        return None;
    };
    let session = match Session::new(sc.clone()) {
        Ok(session) => session,
        Err(e) => {
            r.push(
                "keystone",
                Status::Fail,
                format!(
                    "{e}: check [neutron] cafile, certfile and keyfile in {}",
                    loaded.path
                ),
            );
            return None;
        }
    };
    match session.token().await {
        Ok(t) => {
            r.push(
                "keystone",
                Status::Ok,
                format!(
                    "{}: token for user {} in project {} (roles {})",
                    sc.auth_url,
                    t.user_id,
                    t.project_id.as_deref().unwrap_or("none"),
                    if t.roles.is_empty() {
                        "none".to_string()
                    } else {
                        t.roles.join(", ")
                    }
                ),
            );
            Some(session)
        }
        Err(e) => {
            let what = loaded
                .config
                .as_ref()
                .map(credential_description)
                .unwrap_or_default();
            r.push(
                "keystone",
                Status::Fail,
                keystone_advice(&e, &what, &sc.auth_url, &loaded.path),
            );
            None
        }
    }
}

fn credential_description(c: &Config) -> String {
    let a = &c.neutron.auth;
    match a.auth_type {
        Some(crate::config::AuthType::V3ApplicationCredential) => format!(
            "application credential {}",
            a.application_credential_id
                .as_deref()
                .or(a.application_credential_name.as_deref())
                .unwrap_or("?")
        ),
        Some(t) => format!(
            "{t} credential of user {}",
            a.username
                .as_deref()
                .or(a.user_id.as_deref())
                .unwrap_or("?")
        ),
        None => "credential".into(),
    }
}

fn keystone_advice(e: &OsError, what: &str, auth_url: &str, path: &str) -> String {
    match e {
        OsError::Auth(api) => format!(
            "Keystone at {auth_url} refused the {what} ({} {}): {}. Fix the credential in [neutron] of {path} \
             (password or application_credential_secret, user and project), or re-run `kuryr node setup` \
             with working cluster parameters",
            api.status,
            api.kind,
            api.message.trim_end_matches('.')
        ),
        OsError::Transport { .. } => format!(
            "{e}. Check [neutron] auth_url ({auth_url}), that this node can reach it, and for https the CA \
             bundle ([neutron] cafile)"
        ),
        other => format!("{other}: check [neutron] auth_url ({auth_url}) in {path}"),
    }
}

/// Look at Neutron with the session, if there is one.
pub(super) async fn check_neutron(
    r: &mut Report,
    session: Option<Session>,
    loaded: &Loaded,
) -> Option<NeutronState> {
    let neutron = session.map(Neutron::new);
    match (neutron, &loaded.config) {
        (Some(client), Some(c)) => {
            let answers = neutron_answers(r, &client, c).await;
            Some(NeutronState { client, answers })
        }
        (neutron, _) => {
            r.push("neutron", Status::Skip, "needs a Keystone token");
            neutron.map(|client| NeutronState {
                client,
                answers: false,
            })
        }
    }
}

/// Extensions the configuration needs, with why.
pub(super) fn required_extensions(c: &Config) -> Vec<(&'static [&'static str], &'static str)> {
    let mut req: Vec<(&'static [&'static str], &'static str)> = vec![
        (&["subnet_allocation"], "subnet pools back Docker's IPAM"),
        (
            &["standard-attr-tag", "tag"],
            "kuryr keeps its state in Neutron tags",
        ),
    ];
    match c.default.default_port_driver {
        PortDriverKind::Veth => req.push((&["binding"], "ports are bound to this host")),
        PortDriverKind::Nested => req.push((
            &["allowed-address-pairs"],
            "container addresses are added to the VM port",
        )),
        PortDriverKind::Vlan => {
            req.push((&["trunk"], "containers are subports of the VM's trunk"));
            req.push((&["trunk-details"], "the VM port shows its trunk"));
        }
        PortDriverKind::Sriov => {}
    }
    if c.default.process_external_connectivity {
        req.push((
            &["security-group"],
            "`--expose` opens ports with a security group",
        ));
    }
    req
}

/// Neutron answers and has the extensions `c` needs; returns whether it
/// answered (missing extensions still let the agent be looked at).
async fn neutron_answers(r: &mut Report, n: &Neutron, c: &Config) -> bool {
    let base = match n.base_url().await {
        Ok(b) => b,
        Err(e) => {
            r.push(
                "neutron",
                Status::Fail,
                format!("{e}: check [neutron] endpoint_type and region_name"),
            );
            return false;
        }
    };
    let extensions = match n.list_extensions().await {
        Ok(x) => x,
        Err(e) => {
            let advice = match e.status() {
                Some(401) => {
                    " Neutron refused the token: if the credential is an application credential with access \
                     rules, Neutron's [keystone_authtoken] needs service_type = network to accept it \
                     (docs/security.md)"
                }
                Some(403) => {
                    " The credential may not read extensions: add the access rule GET /v2.0/extensions \
                     (docs/security.md) or grant the role"
                }
                _ => " Check that Neutron is up and reachable from this node.",
            };
            r.push("neutron", Status::Fail, format!("{base}: {e}.{advice}"));
            return false;
        }
    };
    let has = |alias: &str| extensions.iter().any(|x| x.alias == alias);
    let mut missing = Vec::new();
    let mut present = Vec::new();
    for (aliases, why) in required_extensions(c) {
        match aliases.iter().find(|a| has(a)) {
            Some(a) => present.push(*a),
            None => missing.push(format!("{} ({why})", aliases[0])),
        }
    }
    if missing.is_empty() {
        r.push(
            "neutron",
            Status::Ok,
            format!("{base} answers; extensions {}", present.join(", ")),
        );
        true
    } else {
        r.push(
            "neutron",
            Status::Fail,
            format!(
                "{base} lacks {}: ask the cloud operator to enable them (service plugins and ML2 extension drivers)",
                missing.join(", ")
            ),
        );
        // Reachable: the agent can still be looked at.
        true
    }
}

/// Agent mode: the L2 agent of this binding host; the agent when alive.
pub(super) async fn check_agent(
    r: &mut Report,
    neutron: Option<&NeutronState>,
    loaded: &Loaded,
) -> Option<Agent> {
    match loaded.port_driver() {
        Some(PortDriverKind::Veth) => match (neutron, &loaded.host) {
            (Some(n), Some(h)) if n.answers => agent_of_host(r, &n.client, h).await,
            (Some(_), _) => {
                r.push("agent", Status::Skip, "needs a working Neutron");
                None
            }
            _ => {
                r.push("agent", Status::Skip, "needs a Keystone token");
                None
            }
        },
        Some(other) => {
            let why = format!("port driver {other} runs no L2 agent on the node");
            r.push("agent", Status::Skip, why);
            None
        }
        None => {
            r.push("agent", Status::Skip, "needs a loadable configuration");
            None
        }
    }
}

/// The L2 agent of this host; returns it when found alive.
async fn agent_of_host(r: &mut Report, n: &Neutron, host: &str) -> Option<Agent> {
    let agents = match n.list_agents(&Query::new().eq("host", host)).await {
        Ok(a) => a,
        Err(e) if matches!(e.status(), Some(401 | 403)) => {
            r.push(
                "agent",
                Status::Skip,
                format!(
                    "the credential may not list Neutron agents ({e}); with an application credential add the \
                     access rule GET /v2.0/agents to let this check run, or look on a controller: \
                     openstack network agent list --host {host}"
                ),
            );
            return None;
        }
        Err(e) => {
            r.push(
                "agent",
                Status::Fail,
                format!("cannot list Neutron agents: {e}"),
            );
            return None;
        }
    };
    let l2: Vec<_> = agents
        .iter()
        .filter(|a| L2_AGENT_TYPES.contains(&a.agent_type.as_str()))
        .collect();
    if let Some(a) = l2.iter().find(|a| a.alive && a.admin_state_up) {
        r.push(
            "agent",
            Status::Ok,
            format!("{} on host {host} is alive ({})", a.agent_type, a.binary),
        );
        return Some((*a).clone());
    }
    if let Some(a) = l2.first() {
        let why = if !a.admin_state_up {
            "is administratively down: openstack network agent set --enable"
        } else {
            "is not alive (no recent heartbeat): check `systemctl status` of the agent and its message-bus \
             connection ([DEFAULT] transport_url)"
        };
        r.push(
            "agent",
            Status::Fail,
            format!("{} on host {host} {why}", a.agent_type),
        );
        return None;
    }
    // Nothing for this host: the usual cause is a host name mismatch.
    let others = n
        .list_agents(&Query::new())
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|a| L2_AGENT_TYPES.contains(&a.agent_type.as_str()))
        .map(|a| a.host)
        .collect::<Vec<_>>();
    let hint = if others.is_empty() {
        String::new()
    } else {
        format!(" (L2 agents report hosts {})", others.join(", "))
    };
    r.push(
        "agent",
        Status::Fail,
        format!(
            "no Neutron L2 agent reports host {host}{hint}: start the agent (systemctl enable --now \
             neutron-openvswitch-agent) with [DEFAULT] host = {host}, the binding host kuryr uses"
        ),
    );
    None
}
