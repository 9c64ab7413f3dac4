//! Kuryr for Docker: a libnetwork remote network + IPAM driver backed by
//! OpenStack Neutron, drop-in compatible with kuryr-libnetwork.
//!
//! Layers, top down:
//! - [`server`] — HTTP over a unix socket (or loopback TCP), raw bytes in and out
//! - [`protocol`] — the libnetwork wire types
//! - [`driver`] — what each Docker call means in Neutron, idempotently
//! - [`binding`] — the host side (veth, Open vSwitch, Linux bridge, ...)
//! - [`config`] — `/etc/kuryr/kuryr.conf`
//! - [`names`] — the names and tags shared with kuryr-libnetwork
//! - [`paths`] — where kuryr's files are on a node (sockets, `kuryr.conf`,
//!   units, the managed plugin's bundle), for the daemon and the cluster layer
//! - [`cluster`] — Swarm cluster integration: templates, node setup, node check

pub mod binding;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod driver;
pub mod names;
pub mod paths;
pub mod protocol;
pub mod server;
