//! systemd unit files for the driver.

use std::path::Path;

use crate::paths::{KURYR_UNIT_NAME, LOG_DIR, RUN_KURYR};

/// One `ExecStart=` argument, escaped for systemd: `%` specifiers and `$`
/// expansion are disabled by doubling, and arguments with spaces, quotes,
/// backslashes or `;` are double-quoted with C-style escapes.
pub(crate) fn exec_arg(arg: &str) -> String {
    let escaped = arg.replace('%', "%%").replace('$', "$$");
    let needs_quotes = escaped.is_empty()
        || escaped.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'));
    if !needs_quotes {
        return escaped;
    }
    let mut out = String::with_capacity(escaped.len() + 2);
    out.push('"');
    for c in escaped.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An `ExecStart=` command line.
pub(crate) fn exec_line(args: &[&str]) -> String {
    args.iter()
        .map(|a| exec_arg(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where the driver's unit lets it write: the directory of its plugin
/// socket. Under `/run` systemd creates it (`RuntimeDirectory=`, kept at
/// stop: dockerd and other plugins share it); elsewhere it must exist.
fn writable(socket_dir: Option<&Path>) -> String {
    let Some(dir) = socket_dir else {
        return "# TCP mode: no plugin socket, nothing to write.\n".to_string();
    };
    match dir.strip_prefix("/run") {
        Ok(rel) if !rel.as_os_str().is_empty() => format!(
            "RuntimeDirectory={}\nRuntimeDirectoryMode=0700\nRuntimeDirectoryPreserve=yes\n",
            exec_arg(&rel.to_string_lossy())
        ),
        _ => format!("ReadWritePaths={}\n", exec_arg(&dir.to_string_lossy())),
    }
}

/// The driver's unit: started before dockerd (which looks for the plugin
/// socket when a kuryr network is first used), after the network and, in
/// agent mode, after the L2 agent's units; ready (`Type=notify`) once it
/// serves the plugin API. `socket_dir`: where the plugin socket goes
/// (`None` in TCP mode).
///
/// The sandbox follows what the daemon does, checked under strace (see
/// docs/security.md): it writes only its socket; it reads `kuryr.conf`,
/// the CA file and `/proc/sys/kernel/hostname`; it talks to Keystone and
/// Neutron (inet), netlink, and dockerd and the OVS database over unix
/// sockets (connecting needs no write access); it runs `ovs-vsctl`.
pub(crate) fn kuryr_service(
    header: &str,
    binary: &Path,
    config: &Path,
    after_units: &[String],
    socket_dir: Option<&Path>,
) -> String {
    let binary = binary.to_string_lossy();
    let config = config.to_string_lossy();
    let mut after = vec!["network-online.target".to_string()];
    after.extend(after_units.iter().cloned());
    let comments: String = header.lines().map(|l| format!("# {l}\n")).collect();
    format!(
        "{comments}
[Unit]
Description=Kuryr Docker network driver (OpenStack Neutron)
Wants=network-online.target
After={after}
Before=docker.service

[Service]
# Ready (READY=1) once the plugin API is served; at boot the driver waits
# up to about 90 s for Neutron first.
Type=notify
NotifyAccess=main
TimeoutStartSec=180
ExecStart={exec}
Restart=on-failure
RestartSec=2s
# Host interfaces (veth, macvlan, VLAN) and Open vSwitch ports: CAP_NET_ADMIN
# only. Root, because the OVS database socket and kuryr.conf are root's.
CapabilityBoundingSet=CAP_NET_ADMIN
NoNewPrivileges=yes
# A read-only system but for the plugin socket's directory, the log
# directory (for [DEFAULT] log_dir) and /run/kuryr (for a [metrics] socket).
ProtectSystem=strict
{writable}LogsDirectory={logs}
LogsDirectoryMode=0700
RuntimeDirectory={run}
ProtectHome=yes
PrivateTmp=yes
PrivateMounts=yes
PrivateDevices=yes
PrivateIPC=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
# Keystone and Neutron, netlink, unix sockets (dockerd, OVS database).
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM
UMask=0077
LimitCORE=0

[Install]
WantedBy=multi-user.target
",
        after = after.join(" "),
        exec = exec_line(&[&binary, "--config-file", &config, "server"]),
        writable = writable(socket_dir),
        logs = exec_arg(LOG_DIR.trim_start_matches("/var/log/")),
        run = exec_arg(RUN_KURYR.trim_start_matches("/run/")),
    )
}

/// The drop-in that makes dockerd wait for the driver.
pub(crate) fn docker_dropin(header: &str) -> String {
    let comments: String = header.lines().map(|l| format!("# {l}\n")).collect();
    format!("{comments}\n[Unit]\nAfter={KURYR_UNIT_NAME}\nWants={KURYR_UNIT_NAME}\n")
}

/// Managed plugin mode with Open vSwitch: dockerd starts the plugin, which
/// mounts the database socket, so dockerd waits for Open vSwitch's unit.
pub(crate) fn docker_dropin_after_ovs(header: &str, ovs_unit: &str) -> String {
    let comments: String = header.lines().map(|l| format!("# {l}\n")).collect();
    format!(
        "{comments}\n# The kuryr plugin mounts Open vSwitch's database socket: it must exist\n\
         # when dockerd starts the plugin.\n[Unit]\nAfter={ovs_unit}\nWants={ovs_unit}\n"
    )
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// The highest `systemd-analyze security` exposure the unit may have.
    /// What keeps it from lower is in docs/security.md (host network,
    /// CAP_NET_ADMIN, inet/netlink/unix sockets, no IP allow list).
    const MAX_EXPOSURE: f64 = 2.0;

    /// `systemd-analyze` from the `systemd` package (lab/up installs it):
    /// required, so a machine without it fails here instead of skipping.
    fn analyze(args: &[&str], unit: &Path) -> (bool, String) {
        let out = Command::new("systemd-analyze")
            .args(args)
            .arg(unit)
            .output()
            .expect("systemd-analyze (Debian package systemd) must be installed for this test");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Render the unit into a scratch directory, with an `ExecStart=` that
    /// exists (this test binary) so `verify` can check it.
    fn rendered(name: &str, socket_dir: Option<&Path>, after: &[String]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(kuryr_test_support::unique(name));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = std::env::current_exe().unwrap();
        let unit = kuryr_service(
            "test",
            &exe,
            Path::new("/etc/kuryr/kuryr.conf"),
            after,
            socket_dir,
        );
        let path = dir.join(KURYR_UNIT_NAME);
        std::fs::write(&path, unit).unwrap();
        path
    }

    #[test]
    fn the_unit_passes_systemd_analyze_verify_and_security() {
        let agent = ["openvswitch-switch.service".to_string()];
        let cases = [
            (
                "kuryr-unit-socket-",
                Some(Path::new("/run/docker/plugins")),
                &agent[..],
            ),
            ("kuryr-unit-tcp-", None, &[][..]),
        ];
        for (name, socket_dir, after) in cases {
            let unit = rendered(name, socket_dir, after);
            let (ok, text) = analyze(&["verify"], &unit);
            let ours: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("kuryr.service"))
                .collect();
            assert!(
                ok && ours.is_empty(),
                "systemd-analyze verify {}:\n{text}",
                unit.display()
            );

            let (_, text) = analyze(&["security", "--offline=true"], &unit);
            let score: f64 = text
                .lines()
                .find_map(|l| l.split("Overall exposure level for kuryr.service:").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
            println!("{name}: exposure {score}");
            assert!(
                score <= MAX_EXPOSURE,
                "exposure {score} > {MAX_EXPOSURE}:\n{text}"
            );
            // KURYR_KEEP_UNIT=1 keeps the rendered unit, to run
            // `systemd-analyze security` on it by hand.
            if std::env::var_os("KURYR_KEEP_UNIT").is_none() {
                let _ = std::fs::remove_dir_all(unit.parent().unwrap());
            }
        }
    }

    #[test]
    fn the_socket_directory_is_the_only_writable_place() {
        assert!(
            writable(Some(Path::new("/run/docker/plugins/kuryr")))
                .starts_with("RuntimeDirectory=docker/plugins/kuryr\n")
        );
        assert_eq!(
            writable(Some(Path::new("/srv/kuryr"))),
            "ReadWritePaths=/srv/kuryr\n"
        );
        assert!(writable(None).starts_with('#'));
    }

    #[test]
    fn escaping() {
        assert_eq!(exec_arg("/usr/local/bin/kuryr"), "/usr/local/bin/kuryr");
        assert_eq!(exec_arg("/etc/kuryr/100%.conf"), "/etc/kuryr/100%%.conf");
        assert_eq!(exec_arg("/opt/$HOME/kuryr"), "/opt/$$HOME/kuryr");
        assert_eq!(exec_arg("/opt/my dir/kuryr"), "\"/opt/my dir/kuryr\"");
        assert_eq!(exec_arg("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(exec_arg("a;b"), "\"a;b\"");
        assert_eq!(exec_arg(""), "\"\"");
        assert_eq!(
            exec_line(&["/opt/k %i/kuryr", "--config-file", "/etc/kuryr/kuryr.conf"]),
            "\"/opt/k %%i/kuryr\" --config-file /etc/kuryr/kuryr.conf"
        );
    }
}
