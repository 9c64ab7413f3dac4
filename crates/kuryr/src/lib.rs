//! Kuryr for Docker: a libnetwork remote network + IPAM driver backed by
//! OpenStack Neutron, drop-in compatible with kuryr-libnetwork.
//!
//! Layers, top down:
//! - [`server`] — HTTP over a unix socket (or TCP, HTTPS with `enable_ssl`): a request is
//!   parsed, executed, and its outcome turned into HTTP in one place
//! - [`protocol`] — the libnetwork wire types; (path, body) → [`protocol::PluginCall`]
//! - [`driver`] — what each call means in Neutron, idempotently
//!   ([`driver::Driver::execute`])
//! - [`binding`] — the host side (veth, Open vSwitch, Linux bridge, ...);
//!   [`capabilities`] — keeping only `CAP_NET_ADMIN` (the managed plugin)
//! - [`config`] — `/etc/kuryr/kuryr.conf`
//! - [`names`] — the names and tags shared with kuryr-libnetwork
//! - [`paths`] — where kuryr's files are on a node (sockets, `kuryr.conf`,
//!   units, the managed plugin's bundle), for the daemon and the cluster layer
//! - [`cluster`] — Swarm cluster integration: templates, node setup, node check
//! - [`daemon`], [`cli`] — assembly from kuryr.conf, the command line;
//!   [`notify`] — systemd readiness (`READY=1`, `STOPPING=1`)
//! - [`metrics`] — Prometheus metrics and `/health` (`[metrics] listen`);
//!   [`logging`] — where the log goes (oslo.log's options), one line per
//!   call; [`status`] — `kuryr status`, what this node serves and what is
//!   out of step; [`package`] — the files of the Debian package

// No function over 80 lines outside tests (threshold in clippy.toml);
// CI runs clippy with -D warnings.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

pub mod binding;
pub mod capabilities;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod driver;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod notify;
pub mod package;
pub mod paths;
pub mod protocol;
pub mod server;
pub mod status;
