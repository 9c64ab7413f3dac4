//! Where kuryr's files are on a node, defined once. The daemon's defaults
//! ([`crate::config`]), what node setup writes and runs
//! ([`crate::cluster::render`], [`crate::cluster::setup`]) and what node
//! check looks at ([`crate::cluster::check`]) all name them from here, so a
//! path cannot drift between the writer and the reader.
//!
//! Every path is absolute on the node; node setup puts them under `--root`.

// --- kuryr's own files ---

/// The configuration directory (kuryr-libnetwork's packaging), mounted
/// read-only into the managed plugin.
pub const ETC_KURYR: &str = "/etc/kuryr";
/// The configuration file, read by the daemon and written by node setup.
pub const KURYR_CONF: &str = "/etc/kuryr/kuryr.conf";
/// The CA bundle node setup writes when the cluster parameters carry PEM.
pub const CA_PEM: &str = "/etc/kuryr/ca.pem";
/// The log directory the unit lets the daemon write (`LogsDirectory=`):
/// where `[DEFAULT] log_dir` should point.
pub const LOG_DIR: &str = "/var/log/kuryr";
/// The runtime directory the unit makes (`RuntimeDirectory=`), for a
/// metrics socket.
pub const RUN_KURYR: &str = "/run/kuryr";
/// The suggested `[metrics] listen` socket.
pub const METRICS_SOCKET: &str = "/run/kuryr/metrics.sock";
/// The `kuryr` binary on a node, unless the cluster parameters say otherwise.
pub const KURYR_BINARY: &str = "/usr/local/bin/kuryr";

// --- how Docker finds the driver ---

/// The plugin socket the driver serves by default, and the first place
/// Docker looks for a plugin named `kuryr`.
pub const PLUGIN_SOCKET: &str = "/run/docker/plugins/kuryr.sock";
/// The other socket Docker looks at for a plugin named `kuryr`.
pub const PLUGIN_SOCKET_IN_DIR: &str = "/run/docker/plugins/kuryr/kuryr.sock";
/// The sockets Docker discovers a plugin named `kuryr` at, in its order.
pub const SOCKET_PATHS: [&str; 2] = [PLUGIN_SOCKET, PLUGIN_SOCKET_IN_DIR];
/// TCP mode: kuryr-libnetwork's spec file, holding the driver's URL.
pub const PLUGIN_SPEC: &str = "/usr/lib/docker/plugins/kuryr/kuryr.spec";
/// Docker's lookup of a v1 plugin named `kuryr`, first hit wins
/// (`pkg/plugins/discovery.go`): sockets, then spec files.
pub const DOCKER_PLUGIN_LOOKUP: &[&str] = &[
    PLUGIN_SOCKET,
    PLUGIN_SOCKET_IN_DIR,
    "/etc/docker/plugins/kuryr.spec",
    "/etc/docker/plugins/kuryr/kuryr.spec",
    "/etc/docker/plugins/kuryr.json",
    "/etc/docker/plugins/kuryr/kuryr.json",
    "/usr/lib/docker/plugins/kuryr.spec",
    PLUGIN_SPEC,
    "/usr/lib/docker/plugins/kuryr.json",
    "/usr/lib/docker/plugins/kuryr/kuryr.json",
];
/// Where dockerd (default exec root `/run/docker`) puts a managed plugin's
/// socket: `<this>/<plugin id>/<socket>`.
pub const DOCKER_PLUGIN_RUNDIR: &str = "/run/docker/plugins";
/// dockerd's API, as a `docker -H` URL.
pub const DOCKER_HOST: &str = "unix:///run/docker.sock";

// --- systemd ---

/// Unit files live under here; a change there needs `systemctl daemon-reload`.
pub const SYSTEMD_DIR: &str = "/etc/systemd/system";
/// The driver's unit, by name.
pub const KURYR_UNIT_NAME: &str = "kuryr.service";
/// The driver's unit file.
pub const KURYR_UNIT: &str = "/etc/systemd/system/kuryr.service";
/// The drop-in that makes dockerd wait for the driver.
pub const DOCKER_DROPIN: &str = "/etc/systemd/system/docker.service.d/kuryr.conf";

// --- agent mode: the Neutron L2 agents' configuration ---

/// The Open vSwitch agent's configuration.
pub const OVS_AGENT_INI: &str = "/etc/neutron/plugins/ml2/openvswitch_agent.ini";
/// The Linux bridge agent's configuration.
pub const LINUXBRIDGE_AGENT_INI: &str = "/etc/neutron/plugins/ml2/linuxbridge_agent.ini";

/// The Neutron configuration the agents read first (from their package).
pub const NEUTRON_CONF: &str = "/etc/neutron/neutron.conf";
/// The agents' runtime directories (their units' `RuntimeDirectory=`; the
/// packaged `lock_path` is `/var/lock/neutron`), made by node setup when it
/// starts an agent itself.
pub const NEUTRON_RUNTIME_DIRS: &[&str] = &["/run/neutron", "/run/lock/neutron"];

// --- agent mode: the node's Open vSwitch ---

/// Open vSwitch's run directory: pid files, control sockets, the database
/// socket (the distributions' default, also the binder's).
pub const OVS_RUNDIR: &str = "/run/openvswitch";
/// The database socket: the agent's `[ovs] ovsdb_connection`, the binder's
/// OVSDB client, the managed plugin's one mount of Open vSwitch.
pub const OVS_DB_SOCKET: &str = "/run/openvswitch/db.sock";
/// The database file (Debian's and RDO's).
pub const OVS_DB: &str = "/etc/openvswitch/conf.db";
/// The schema a new database is created from.
pub const OVS_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
/// The daemons' logs when node setup starts them itself.
pub const OVS_LOGDIR: &str = "/var/log/openvswitch";

// --- init `process`: daemons node setup starts itself ---

/// One record per daemon, `<name>.process`: its pid, its start time and its
/// command line. Under /run, so a reboot forgets them with the processes.
pub const PROCESS_RECORDS: &str = "/run/kuryr";
/// The daemons' output, `<name>.log`.
pub const PROCESS_LOGS: &str = "/var/log/kuryr";

// --- managed (v2) plugin mode ---

/// The plugin bundle given to `docker plugin create`: `config.json` and
/// `rootfs/`.
pub const PLUGIN_BUNDLE: &str = "/var/lib/kuryr/plugin";
/// The bundle's `config.json`.
pub const PLUGIN_CONFIG: &str = "/var/lib/kuryr/plugin/config.json";
/// The bundle's root file system.
pub const PLUGIN_ROOTFS: &str = "/var/lib/kuryr/plugin/rootfs";
/// A digest of the bundle, compared to decide a re-install.
pub const PLUGIN_DIGEST: &str = "/var/lib/kuryr/plugin.digest";
/// Inside the plugin's root file system: the driver binary.
pub const PLUGIN_ENTRYPOINT: &str = "/usr/bin/kuryr";
/// Inside the plugin's root file system: mount points and runtime
/// directories, relative to the root file system.
pub const PLUGIN_ROOTFS_DIRS: &[&str] = &[
    "etc/kuryr",
    "run/docker/plugins",
    "run/openvswitch",
    "tmp",
    "proc",
    "sys",
    "dev",
];
/// The system CA bundle (Debian's path), copied into the plugin's root file
/// system when the node has it.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The paths spelled out in full agree with the directories they are in.
    #[test]
    fn paths_nest() {
        let under = |path: &str, dir: &str| {
            assert!(Path::new(path).starts_with(dir), "{path} is not in {dir}")
        };
        under(KURYR_CONF, ETC_KURYR);
        under(CA_PEM, ETC_KURYR);
        under(METRICS_SOCKET, RUN_KURYR);
        under(KURYR_UNIT, SYSTEMD_DIR);
        under(DOCKER_DROPIN, SYSTEMD_DIR);
        under(PLUGIN_CONFIG, PLUGIN_BUNDLE);
        under(PLUGIN_ROOTFS, PLUGIN_BUNDLE);
        under(OVS_DB_SOCKET, OVS_RUNDIR);
        under(PLUGIN_SOCKET, DOCKER_PLUGIN_RUNDIR);
        assert!(KURYR_UNIT.ends_with(KURYR_UNIT_NAME));
        assert!(PLUGIN_ROOTFS_DIRS.contains(&&ETC_KURYR[1..]));
        assert_eq!(DOCKER_PLUGIN_LOOKUP[..2], SOCKET_PATHS);
        assert!(DOCKER_PLUGIN_LOOKUP.contains(&PLUGIN_SPEC));
    }
}
