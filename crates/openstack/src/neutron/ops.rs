//! Every Neutron operation the client can send, in one table.
//!
//! Each [`Neutron`](super::Neutron) method sends exactly one
//! [`Operation`] of [`OPERATIONS`]: its HTTP method and path come from
//! here and nowhere else (the client's `send` takes an `&Operation`), so
//! the table *is* the client's reach. Keystone access rules for a
//! credential are derived from the same table (`kuryr template
//! access-rules`), restricted to the operations a caller uses, and a test
//! checks that every method sends the request its entry says.

use crate::neutron::TagResource;

/// The HTTP method of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    /// `GET`, `POST`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Delete => "DELETE",
        }
    }

    pub(crate) fn method(self) -> reqwest::Method {
        match self {
            Verb::Get => reqwest::Method::GET,
            Verb::Post => reqwest::Method::POST,
            Verb::Put => reqwest::Method::PUT,
            Verb::Delete => reqwest::Method::DELETE,
        }
    }
}

/// One request shape of the Neutron API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The [`Neutron`](super::Neutron) method that sends it (`get_network`).
    pub function: &'static str,
    /// Its name in [`CallStats`](crate::CallStats) (`neutron.show_network`).
    pub name: &'static str,
    pub verb: Verb,
    /// The path below `/v2.0`. `{id}` and `{tag}` stand for one path
    /// segment each; `{resource}` for the collection of a
    /// [`TagResource`].
    pub path: &'static str,
}

/// The placeholder a tag operation's collection goes in.
const RESOURCE: &str = "{resource}";

impl Operation {
    const fn new(
        function: &'static str,
        name: &'static str,
        verb: Verb,
        path: &'static str,
    ) -> Self {
        Operation {
            function,
            name,
            verb,
            path,
        }
    }

    /// Whether the path names a [`TagResource`]'s collection.
    pub fn takes_resource(&self) -> bool {
        self.path.contains(RESOURCE)
    }

    /// How many `{...}` parameters the path has.
    pub fn arity(&self) -> usize {
        self.path.matches('{').count()
    }

    /// The path with `args` in its parameters, in order, each escaped as
    /// one path segment. Panics if the count is wrong: a bug in the
    /// client, which the table test catches.
    pub fn path_with(&self, args: &[&str]) -> String {
        assert_eq!(args.len(), self.arity(), "{}: arguments", self.function);
        let mut out = String::with_capacity(self.path.len() + 40);
        let mut rest = self.path;
        let mut args = args.iter();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
            out.push_str(&segment(args.next().copied().unwrap_or_default()));
            rest = &rest[close..];
        }
        out.push_str(rest);
        out
    }

    /// The Keystone access-rule path (`/v2.0/networks/*`): every
    /// parameter one `*` segment, `{resource}` the collection of
    /// `resource` (required exactly when [`Operation::takes_resource`]).
    pub fn rule_path(&self, resource: Option<TagResource>) -> String {
        let mut out = String::from("/v2.0");
        for part in self.path.split('/').skip(1) {
            out.push('/');
            if part == RESOURCE {
                let r = resource.unwrap_or_else(|| panic!("{} needs a resource", self.function));
                out.push_str(r.collection());
            } else if part.starts_with('{') {
                out.push('*');
            } else {
                out.push_str(part);
            }
        }
        out
    }
}

/// Percent-encode one path segment (tags may hold `:` and `/`).
pub(crate) fn segment(s: &str) -> String {
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

use Verb::{Delete, Get, Post, Put};

pub const LIST_EXTENSIONS: Operation = Operation::new(
    "list_extensions",
    "neutron.list_extensions",
    Get,
    "/extensions",
);
pub const LIST_AGENTS: Operation =
    Operation::new("list_agents", "neutron.list_agents", Get, "/agents");

pub const LIST_NETWORKS: Operation =
    Operation::new("list_networks", "neutron.list_networks", Get, "/networks");
pub const GET_NETWORK: Operation =
    Operation::new("get_network", "neutron.show_network", Get, "/networks/{id}");
pub const CREATE_NETWORK: Operation = Operation::new(
    "create_network",
    "neutron.create_network",
    Post,
    "/networks",
);
pub const UPDATE_NETWORK: Operation = Operation::new(
    "update_network",
    "neutron.update_network",
    Put,
    "/networks/{id}",
);
/// The same request as [`DELETE_NETWORK`], sent with `If-Match` on the
/// network's revision: refused (412) if anyone changed it, its tags
/// included, since it was read.
pub const DELETE_NETWORK_IF: Operation = Operation::new(
    "delete_network_if",
    "neutron.delete_network_if",
    Delete,
    "/networks/{id}",
);
pub const DELETE_NETWORK: Operation = Operation::new(
    "delete_network",
    "neutron.delete_network",
    Delete,
    "/networks/{id}",
);

pub const LIST_SUBNETS: Operation =
    Operation::new("list_subnets", "neutron.list_subnets", Get, "/subnets");
pub const GET_SUBNET: Operation =
    Operation::new("get_subnet", "neutron.show_subnet", Get, "/subnets/{id}");
pub const CREATE_SUBNET: Operation =
    Operation::new("create_subnet", "neutron.create_subnet", Post, "/subnets");
pub const UPDATE_SUBNET: Operation = Operation::new(
    "update_subnet",
    "neutron.update_subnet",
    Put,
    "/subnets/{id}",
);
pub const DELETE_SUBNET: Operation = Operation::new(
    "delete_subnet",
    "neutron.delete_subnet",
    Delete,
    "/subnets/{id}",
);

pub const LIST_SUBNETPOOLS: Operation = Operation::new(
    "list_subnetpools",
    "neutron.list_subnetpools",
    Get,
    "/subnetpools",
);
pub const GET_SUBNETPOOL: Operation = Operation::new(
    "get_subnetpool",
    "neutron.show_subnetpool",
    Get,
    "/subnetpools/{id}",
);
pub const CREATE_SUBNETPOOL: Operation = Operation::new(
    "create_subnetpool",
    "neutron.create_subnetpool",
    Post,
    "/subnetpools",
);
pub const DELETE_SUBNETPOOL: Operation = Operation::new(
    "delete_subnetpool",
    "neutron.delete_subnetpool",
    Delete,
    "/subnetpools/{id}",
);

pub const LIST_PORTS: Operation = Operation::new("list_ports", "neutron.list_ports", Get, "/ports");
pub const GET_PORT: Operation = Operation::new("get_port", "neutron.show_port", Get, "/ports/{id}");
/// The same request as [`LIST_PORTS`], sent while waiting for ports to go
/// ACTIVE: counted apart ([`CallSnapshot::neutron_polls`](crate::CallSnapshot::neutron_polls)),
/// as how often it is sent depends on the L2 agent, not on the driver.
pub const POLL_PORTS: Operation = Operation::new("poll_ports", "neutron.poll_ports", Get, "/ports");
pub const CREATE_PORT: Operation =
    Operation::new("create_port", "neutron.create_port", Post, "/ports");
pub const UPDATE_PORT: Operation =
    Operation::new("update_port", "neutron.update_port", Put, "/ports/{id}");
/// The same request as [`UPDATE_PORT`], sent with `If-Match` on the
/// port's revision (compare-and-swap).
pub const UPDATE_PORT_IF: Operation = Operation::new(
    "update_port_if",
    "neutron.update_port_if",
    Put,
    "/ports/{id}",
);
pub const DELETE_PORT: Operation =
    Operation::new("delete_port", "neutron.delete_port", Delete, "/ports/{id}");

pub const LIST_SECURITY_GROUPS: Operation = Operation::new(
    "list_security_groups",
    "neutron.list_security_groups",
    Get,
    "/security-groups",
);
pub const CREATE_SECURITY_GROUP: Operation = Operation::new(
    "create_security_group",
    "neutron.create_security_group",
    Post,
    "/security-groups",
);
pub const DELETE_SECURITY_GROUP: Operation = Operation::new(
    "delete_security_group",
    "neutron.delete_security_group",
    Delete,
    "/security-groups/{id}",
);
pub const LIST_SECURITY_GROUP_RULES: Operation = Operation::new(
    "list_security_group_rules",
    "neutron.list_security_group_rules",
    Get,
    "/security-group-rules",
);
pub const CREATE_SECURITY_GROUP_RULE: Operation = Operation::new(
    "create_security_group_rule",
    "neutron.create_security_group_rule",
    Post,
    "/security-group-rules",
);
pub const DELETE_SECURITY_GROUP_RULE: Operation = Operation::new(
    "delete_security_group_rule",
    "neutron.delete_security_group_rule",
    Delete,
    "/security-group-rules/{id}",
);

pub const LIST_TRUNKS: Operation =
    Operation::new("list_trunks", "neutron.list_trunks", Get, "/trunks");
pub const CREATE_TRUNK: Operation =
    Operation::new("create_trunk", "neutron.create_trunk", Post, "/trunks");
pub const DELETE_TRUNK: Operation = Operation::new(
    "delete_trunk",
    "neutron.delete_trunk",
    Delete,
    "/trunks/{id}",
);
pub const ADD_SUBPORTS: Operation = Operation::new(
    "add_subports",
    "neutron.add_subports",
    Put,
    "/trunks/{id}/add_subports",
);
pub const REMOVE_SUBPORTS: Operation = Operation::new(
    "remove_subports",
    "neutron.remove_subports",
    Put,
    "/trunks/{id}/remove_subports",
);
pub const GET_SUBPORTS: Operation = Operation::new(
    "get_subports",
    "neutron.get_subports",
    Get,
    "/trunks/{id}/get_subports",
);

pub const ADD_TAG: Operation = Operation::new(
    "add_tag",
    "neutron.add_tag",
    Put,
    "/{resource}/{id}/tags/{tag}",
);
pub const REMOVE_TAG: Operation = Operation::new(
    "remove_tag",
    "neutron.remove_tag",
    Delete,
    "/{resource}/{id}/tags/{tag}",
);
pub const REPLACE_TAGS: Operation = Operation::new(
    "replace_tags",
    "neutron.replace_tags",
    Put,
    "/{resource}/{id}/tags",
);
pub const GET_TAGS: Operation =
    Operation::new("get_tags", "neutron.get_tags", Get, "/{resource}/{id}/tags");

/// Every operation the client can send, in the order access rules are
/// printed.
pub const OPERATIONS: &[Operation] = &[
    LIST_EXTENSIONS,
    LIST_AGENTS,
    LIST_NETWORKS,
    GET_NETWORK,
    CREATE_NETWORK,
    UPDATE_NETWORK,
    DELETE_NETWORK,
    DELETE_NETWORK_IF,
    LIST_SUBNETS,
    GET_SUBNET,
    CREATE_SUBNET,
    UPDATE_SUBNET,
    DELETE_SUBNET,
    LIST_SUBNETPOOLS,
    GET_SUBNETPOOL,
    CREATE_SUBNETPOOL,
    DELETE_SUBNETPOOL,
    LIST_PORTS,
    GET_PORT,
    POLL_PORTS,
    CREATE_PORT,
    UPDATE_PORT,
    UPDATE_PORT_IF,
    DELETE_PORT,
    LIST_SECURITY_GROUPS,
    CREATE_SECURITY_GROUP,
    DELETE_SECURITY_GROUP,
    LIST_SECURITY_GROUP_RULES,
    CREATE_SECURITY_GROUP_RULE,
    DELETE_SECURITY_GROUP_RULE,
    LIST_TRUNKS,
    CREATE_TRUNK,
    DELETE_TRUNK,
    ADD_SUBPORTS,
    REMOVE_SUBPORTS,
    GET_SUBPORTS,
    ADD_TAG,
    REMOVE_TAG,
    REPLACE_TAGS,
    GET_TAGS,
];

/// The operation a [`Neutron`](super::Neutron) method sends.
pub fn by_function(function: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|op| op.function == function)
}

/// Every [`TagResource`], for callers that enumerate them.
pub const TAG_RESOURCES: &[TagResource] = &[
    TagResource::Network,
    TagResource::Subnet,
    TagResource::SubnetPool,
    TagResource::Port,
    TagResource::SecurityGroup,
    TagResource::Trunk,
    TagResource::Router,
];
