//! Names and tags shared with kuryr-libnetwork.
//!
//! These strings are the contract that lets the Python driver and this one
//! find each other's networks and ports in Neutron: change none of them.

use ipnet::IpNet;

use crate::protocol::DockerId;

/// Driver and IPAM name Docker users type (`-d kuryr --ipam-driver kuryr`).
pub const DRIVER_NAME: &str = "kuryr";
/// `device_owner` of every port bound to a container.
pub const DEVICE_OWNER: &str = "compute:kuryr";
/// Tag kuryr IPAM puts on the ports it creates.
pub const PORT_CREATED_TAG: &str = "compute:kuryr";
/// Tag on a user's port reused by `--ip`; the port is restored, not deleted.
pub const PORT_EXISTING_TAG: &str = "kuryr.port.existing";
/// Tag on a user's subnet pool used through `neutron.pool.*`.
pub const SUBNETPOOL_EXISTING_TAG: &str = "kuryr.subnetpool.existing";
/// Tag keeping a reused user port's MAC when Docker asked for another one,
/// so the port can be given back as it was. (Ours; unknown to the Python
/// driver, which never restored the MAC.)
pub const TAG_ORIGINAL_MAC: &str = "kuryr.port.mac:";
/// Tag on subnets kuryr made inside a pre-existing network (ours), so only
/// those are deleted with the Docker network.
pub const TAG_CREATED_SUBNET: &str = "kuryr.subnet.created";
/// Name of a port created by IPAM before an endpoint claims it.
pub const UNBOUND_PORT_NAME: &str = "kuryr-unbound-port";
/// Name of a port made ahead of any RequestAddress (`ports_pool_size`):
/// ready to be handed out, renamed when an endpoint claims it. (Ours.)
pub const READY_PORT_NAME: &str = "kuryr-ready-port";
/// Tag prefix of the first 32 characters of a Docker ID.
pub const TAG_LOW: &str = "kuryr.net.uuid.lh:";
/// Tag prefix of the last 32 characters of a Docker ID.
pub const TAG_HIGH: &str = "kuryr.net.uuid.uh:";
/// Tag prefix marking a Neutron network that existed before Docker used it.
pub const TAG_EXISTING_NET: &str = "kuryr.net.existing:";
/// Host-side veth prefix.
pub const VETH_PREFIX: &str = "tap";
/// Container-side veth prefix (renamed by Docker inside the sandbox).
pub const CONTAINER_VETH_PREFIX: &str = "t_c";
/// Interface names are cut to this length, as kuryr-lib does.
pub const NIC_NAME_LEN: usize = 14;
/// Description of the security groups made for `--expose`.
pub const EXPOSED_SG_DESCRIPTION: &str = "Docker exposed ports created by Kuryr.";

/// The one or two tags that identify a Docker object (network or endpoint).
pub fn id_tags(id: &DockerId) -> Vec<String> {
    let s = id.as_str();
    let mut tags = vec![format!("{TAG_LOW}{}", &s[..s.len().min(32)])];
    if s.len() > 32 {
        tags.push(format!("{TAG_HIGH}{}", &s[32..]));
    }
    tags
}

/// Rebuild a Docker ID from a resource's tags, if it carries the pair.
pub fn id_from_tags(tags: &[String]) -> Option<String> {
    let low = tags.iter().find_map(|t| t.strip_prefix(TAG_LOW))?;
    match tags.iter().find_map(|t| t.strip_prefix(TAG_HIGH)) {
        Some(high) => Some(format!("{low}{high}")),
        None => Some(low.to_string()),
    }
}

/// The Docker IDs a network's tags name. Several Docker networks may share
/// one Neutron network (each adds its tags): every swarm ID (a
/// 25-character low tag, no high half) is returned, and a 64-character ID
/// when its two halves pair unambiguously (one 32-character low tag, one
/// high tag). Several 64-character IDs on one network cannot be paired
/// from tags alone: they are left out here and found by their two tags
/// when a request names them.
pub fn ids_from_tags(tags: &[String]) -> Vec<String> {
    let lows: Vec<&str> = tags
        .iter()
        .filter_map(|t| t.strip_prefix(TAG_LOW))
        .collect();
    let highs: Vec<&str> = tags
        .iter()
        .filter_map(|t| t.strip_prefix(TAG_HIGH))
        .collect();
    let mut ids: Vec<String> = lows
        .iter()
        .filter(|l| l.len() != 32)
        .map(|l| l.to_string())
        .collect();
    let halves: Vec<&&str> = lows.iter().filter(|l| l.len() == 32).collect();
    if let ([low], [high]) = (halves.as_slice(), highs.as_slice()) {
        ids.push(format!("{low}{high}"));
    }
    ids
}

/// Low tags (the first 32 characters of each Docker ID) other than `id`'s:
/// the other Docker networks using a Neutron network.
pub fn other_users<'a>(tags: &'a [String], id: &DockerId) -> Vec<&'a str> {
    let own = &id_tags(id)[0];
    tags.iter()
        .filter(|t| t.starts_with(TAG_LOW) && *t != own)
        .map(|t| &t[TAG_LOW.len()..])
        .collect()
}

/// Did the Docker network whose low tag value is `low` find the network
/// pre-existing (its `kuryr.net.existing:<id[:12]>` marker)?
pub fn found_existing(tags: &[String], low: &str) -> bool {
    let marker = format!("{TAG_EXISTING_NET}{}", &low[..low.len().min(12)]);
    tags.contains(&marker)
}

/// Marker on a pre-existing network adopted by a Docker network.
pub fn existing_net_tag(id: &DockerId) -> String {
    format!("{TAG_EXISTING_NET}{}", id.prefix(12))
}

/// Prefix of the description of what kuryr makes (ours; unknown to the
/// Python driver, which leaves descriptions empty).
pub const MADE_BY_PREFIX: &str = "kuryr: docker ";

/// Description of a Neutron object kuryr makes for Docker object `id` on
/// host `host`: even without tags (a crash before tagging) it is known as
/// kuryr's, whose, and where it was made.
pub fn made_by(id: &DockerId, host: &str) -> String {
    format!("{MADE_BY_PREFIX}{id} on {host}")
}

/// (Docker ID, host) of a description written by [`made_by`].
pub fn parse_made_by(description: &str) -> Option<(&str, &str)> {
    description.strip_prefix(MADE_BY_PREFIX)?.split_once(" on ")
}

/// Prefix of the description of the ports and subnet pools kuryr makes.
pub const MADE_IN_PREFIX: &str = "kuryr: request ";

/// Description of a port or subnet pool kuryr makes in one request on
/// `host`: the nonce is that request's alone, so a create whose answer
/// never came (a timeout, a crash) is found by it and undone; the host
/// says which node made it (nested modes bind no port to a host).
pub fn made_in(nonce: &str, host: &str) -> String {
    format!("{MADE_IN_PREFIX}{nonce} on {host}")
}

/// (nonce, host) of a description written by [`made_in`].
pub fn parse_made_in(description: &str) -> Option<(&str, &str)> {
    description.strip_prefix(MADE_IN_PREFIX)?.split_once(" on ")
}

/// A fresh nonce for [`made_in`]: 16 hex digits.
pub fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016x}", h.finish())
}

/// Name of a Neutron network created for a Docker network.
pub fn network_name(id: &DockerId) -> String {
    format!("kuryr-net-{}", id.prefix(8))
}

/// Prefix of the names of the subnets kuryr makes.
pub const SUBNET_NAME_PREFIX: &str = "kuryr-subnet-";

/// Name of a subnet created for a Docker pool.
pub fn subnet_name(cidr: &IpNet) -> String {
    format!("{SUBNET_NAME_PREFIX}{cidr}")
}

/// Name of a subnet pool created for a Docker pool.
pub fn subnetpool_name(prefix: &str, cidr: &IpNet) -> String {
    format!("{prefix}-{cidr}")
}

/// Name of a port created in CreateEndpoint (not by IPAM).
pub fn endpoint_port_name(endpoint: &DockerId) -> String {
    format!("{endpoint}-port")
}

fn ifname(prefix: &str, port_id: &str) -> String {
    let mut name = format!("{prefix}{port_id}");
    name.truncate(NIC_NAME_LEN);
    name
}

/// Host-side interface of a port: `tap` + 11 characters of the port ID.
pub fn host_ifname(port_id: &str) -> String {
    ifname(VETH_PREFIX, port_id)
}

/// Container-side interface of a port: `t_c` + 11 characters.
pub fn container_ifname(port_id: &str) -> String {
    ifname(CONTAINER_VETH_PREFIX, port_id)
}

/// Prefix of the alias of the host end of a veth pair kuryr made.
pub const HOST_LINK_ALIAS_PREFIX: &str = "kuryr port ";

/// Alias of the host end of a port's veth pair: the whole port ID (the
/// interface name holds 11 characters of it), so a host link left by a
/// crash is known as kuryr's and checked against Neutron.
pub fn host_link_alias(port_id: &str) -> String {
    format!("{HOST_LINK_ALIAS_PREFIX}{port_id}")
}

/// The port ID of a [`host_link_alias`].
pub fn port_of_host_link_alias(alias: &str) -> Option<&str> {
    alias
        .strip_prefix(HOST_LINK_ALIAS_PREFIX)
        .filter(|id| !id.is_empty())
}

/// Suffix of the security group made for a port's exposed ports.
pub const EXPOSED_SG_SUFFIX: &str = "-exposed_ports";

/// Security group made for a port's exposed ports.
pub fn exposed_sg_name(port_id: &str) -> String {
    format!("{port_id}{EXPOSED_SG_SUFFIX}")
}

/// A Neutron resource ID (a UUID in its canonical 8-4-4-4-12 form), as
/// kuryr puts in tags (a user subnet's ID on the pool made for it).
pub fn is_neutron_id(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_in_round_trips_and_nonces_differ() {
        let (a, b) = (nonce(), nonce());
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        let d = made_in(&a, "node-1");
        assert_eq!(parse_made_in(&d), Some((a.as_str(), "node-1")));
        assert_eq!(parse_made_in("kuryr: docker x on y"), None);
    }

    #[test]
    fn tags_split_and_join_ids() {
        let id = DockerId::parse(&"ab".repeat(32)).unwrap();
        let tags = id_tags(&id);
        assert_eq!(tags[0], format!("kuryr.net.uuid.lh:{}", "ab".repeat(16)));
        assert_eq!(tags[1], format!("kuryr.net.uuid.uh:{}", "ab".repeat(16)));
        assert!(tags.iter().all(|t| t.len() <= 50));
        assert_eq!(id_from_tags(&tags).as_deref(), Some(id.as_str()));
        let swarm = DockerId::parse("3n6ixqz7b4ms9ec2tmgoya1kk").unwrap();
        assert_eq!(id_tags(&swarm).len(), 1);
        assert_eq!(
            id_from_tags(&id_tags(&swarm)).as_deref(),
            Some(swarm.as_str())
        );
        assert_eq!(id_from_tags(&["other".into()]), None);
    }

    #[test]
    fn several_docker_ids_on_one_network() {
        let a = DockerId::parse(&"ab".repeat(32)).unwrap();
        let b = DockerId::parse(&"cd".repeat(32)).unwrap();
        let swarm = DockerId::parse("3n6ixqz7b4ms9ec2tmgoya1kk").unwrap();
        let mut tags: Vec<String> = id_tags(&a);
        assert_eq!(ids_from_tags(&tags), vec![a.to_string()]);
        tags.extend(id_tags(&swarm));
        assert_eq!(ids_from_tags(&tags), vec![swarm.to_string(), a.to_string()]);
        tags.extend(id_tags(&b));
        // Two 64-character IDs: the halves cannot be paired.
        assert_eq!(ids_from_tags(&tags), vec![swarm.to_string()]);
        assert_eq!(other_users(&tags, &a).len(), 2);
        tags.push(existing_net_tag(&b));
        assert!(found_existing(&tags, &"cd".repeat(16)));
        assert!(!found_existing(&tags, &"ab".repeat(16)));
    }

    #[test]
    fn made_by_round_trips() {
        let id = DockerId::parse(&"ab".repeat(32)).unwrap();
        let d = made_by(&id, "node-1");
        assert_eq!(parse_made_by(&d), Some((id.as_str(), "node-1")));
        assert_eq!(parse_made_by("a user's network"), None);
    }

    #[test]
    fn interface_names_fit_ifnamsiz() {
        let port = "0123456789abcdef-0000";
        assert_eq!(host_ifname(port), "tap0123456789a");
        assert_eq!(container_ifname(port), "t_c0123456789a");
        assert!(host_ifname(port).len() < 16);
    }

    #[test]
    fn kuryr_names() {
        let cidr: IpNet = "10.10.0.0/24".parse().unwrap();
        assert_eq!(subnet_name(&cidr), "kuryr-subnet-10.10.0.0/24");
        assert_eq!(
            subnetpool_name("kuryrPool", &cidr),
            "kuryrPool-10.10.0.0/24"
        );
        let id = DockerId::parse(&"0123456789abcdef".repeat(4)).unwrap();
        assert_eq!(network_name(&id), "kuryr-net-01234567");
        assert_eq!(existing_net_tag(&id), "kuryr.net.existing:0123456789ab");
    }
}
