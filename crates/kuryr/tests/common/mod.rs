//! Test support of the kuryr crate, one module tree: every test file loads
//! it with `mod common;` and adds only its own setup.
//!
//! - [`env`]: the lab's variables and accounts, IDs, names, slots, polling
//! - [`lab`]: [`lab::Lab`] (a test's Neutron view, tracking and cleanup),
//!   [`lab::Api`] (an in-process driver driven like dockerd), [`lab::run`]
//! - [`container`]: a container's endpoint, port and sandbox namespace
//! - [`requests`]: the Docker-shaped request bodies
//! - [`docker_cli`]: the lab's dockerd through the `docker` CLI, the daemon
//!   under test
//! - [`dockerd`]: dockerd's call sequences and reactions to failures, for
//!   an in-process driver
//! - [`explain`]: the fault suite's check: no object of the driver that no
//!   Docker object explains
//! - [`faults`]: the fault suite's hands on the lab (kill, stop, restart)
//! - [`host`]: the host's links and the lab's `br-int` ports
//! - [`http`]: raw HTTP exchanges with a plugin over a socket or TCP
//! - [`netns`]: network namespaces, `ip`, a thread in a fresh namespace
//! - [`machine`]: simulated machines (network, mount and UTS namespaces)
//!   for the multi-node agent-mode tests
//! - [`ops`]: a daemon's metrics, log lines and `kuryr status`
//! - [`plugin`]: the managed plugin's static binary, root file system and
//!   capabilities (measured, and the lists the docs quote)
//! - [`vm`]: simulated Nova VMs on real Neutron ports, waiting for ACTIVE

// Each test binary uses a part of this tree.
#![allow(dead_code, unused_imports)]

pub mod container;
pub mod docker_cli;
pub mod dockerd;
pub mod env;
pub mod explain;
pub mod faults;
pub mod host;
pub mod http;
pub mod lab;
pub mod machine;
pub mod netns;
pub mod ops;
pub mod plugin;
pub mod requests;
pub mod vm;
