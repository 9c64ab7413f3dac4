//! systemd unit files for the driver.

use std::path::Path;

use crate::paths::KURYR_UNIT_NAME;

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

/// The driver's unit: started before dockerd (which looks for the plugin
/// socket when a kuryr network is first used), after the network and, in
/// agent mode, after the L2 agent's units.
pub(crate) fn kuryr_service(
    header: &str,
    binary: &Path,
    config: &Path,
    after_units: &[String],
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
Requires=network-online.target
After={after}
Before=docker.service

[Service]
Type=simple
ExecStart={exec}
Restart=on-failure
RestartSec=2s
# Host interfaces (veth, macvlan, VLAN) and Open vSwitch ports: CAP_NET_ADMIN only.
CapabilityBoundingSet=CAP_NET_ADMIN
AmbientCapabilities=CAP_NET_ADMIN
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
",
        after = after.join(" "),
        exec = exec_line(&[&binary, "--config-file", &config, "server"]),
    )
}

/// The drop-in that makes dockerd wait for the driver.
pub(crate) fn docker_dropin(header: &str) -> String {
    let comments: String = header.lines().map(|l| format!("# {l}\n")).collect();
    format!("{comments}\n[Unit]\nAfter={KURYR_UNIT_NAME}\nWants={KURYR_UNIT_NAME}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

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
