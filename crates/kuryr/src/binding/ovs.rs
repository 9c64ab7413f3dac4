//! Open vSwitch through `ovs-vsctl`, one transaction per call, as
//! kuryr-lib's `ovs` script and os-vif do (no Rust OVSDB client is mature
//! enough to depend on).

use std::process::Stdio;
use std::time::Duration;

use super::{BindError, VethConfig};

/// The `external_ids` the OVS agent matches a port by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IfaceIds<'a> {
    pub port_id: &'a str,
    /// Lowercase `aa:bb:cc:dd:ee:ff`.
    pub mac: &'a str,
    pub endpoint_id: &'a str,
}

/// Options every invocation starts with.
fn global_args(cfg: &VethConfig) -> Vec<String> {
    let mut args = vec![format!("--timeout={}", cfg.ovs_timeout_secs)];
    if let Some(db) = &cfg.ovs_db {
        args.push(format!("--db={db}"));
    }
    if cfg.ovs_no_wait {
        args.push("--no-wait".to_string());
    }
    args
}

/// `ovs-vsctl --timeout=N -- --may-exist add-port <bridge> <dev> -- set
/// Interface <dev> external_ids:...=...`: the port and its IDs in one
/// transaction, so the agent never sees the port without its iface-id.
pub(crate) fn add_port_args(
    cfg: &VethConfig,
    bridge: &str,
    dev: &str,
    ids: &IfaceIds<'_>,
) -> Vec<String> {
    let mut args = global_args(cfg);
    args.extend(
        [
            "--",
            "--may-exist",
            "add-port",
            bridge,
            dev,
            "--",
            "set",
            "Interface",
            dev,
        ]
        .map(String::from),
    );
    args.extend([
        format!("external_ids:iface-id={}", ids.port_id),
        format!("external_ids:attached-mac={}", ids.mac),
        "external_ids:iface-status=active".to_string(),
        format!("external_ids:vm-uuid={}", ids.endpoint_id),
        "external_ids:owner=kuryr".to_string(),
    ]);
    args
}

/// `ovs-vsctl --timeout=N -- --if-exists del-port <dev> [-- --if-exists
/// del-port <dev2> ...]`: each from whatever bridge holds it, a no-op for
/// the ones no bridge holds; one transaction.
pub(crate) fn del_ports_args(cfg: &VethConfig, devs: &[String]) -> Vec<String> {
    let mut args = global_args(cfg);
    for dev in devs {
        args.extend(["--", "--if-exists", "del-port", dev].map(String::from));
    }
    args
}

/// Run ovs-vsctl with `args`; `action` names the operation in errors.
pub(crate) async fn run(
    cfg: &VethConfig,
    action: String,
    args: &[String],
) -> Result<(), BindError> {
    let mut cmd = tokio::process::Command::new(&cfg.ovs_vsctl);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tracing::debug!(program = %cfg.ovs_vsctl.display(), ?args, "ovs-vsctl");
    let out = cmd.output();
    // ovs-vsctl enforces --timeout itself (SIGALRM); this outer bound only
    // guards against a process that ignores it, and is off with timeout 0
    // like ovs-vsctl's own.
    let out = if cfg.ovs_timeout_secs > 0 {
        let secs = u64::from(cfg.ovs_timeout_secs) + 5;
        match tokio::time::timeout(Duration::from_secs(secs), out).await {
            Ok(r) => r,
            Err(_) => return Err(BindError::OvsTimeout { action, secs }),
        }
    } else {
        out.await
    };
    let out = out.map_err(|source| BindError::OvsSpawn {
        program: cfg.ovs_vsctl.display().to_string(),
        source,
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(BindError::Ovs {
        action,
        status: out.status.to_string(),
        stderr: if stderr.is_empty() {
            "(no output)".to_string()
        } else {
            stderr
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const IDS: IfaceIds<'static> = IfaceIds {
        port_id: "3f1e2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
        mac: "fa:16:3e:00:00:01",
        endpoint_id: "ab12",
    };

    #[test]
    fn add_port_default_config() {
        let args = add_port_args(&VethConfig::default(), "br-int", "tap3f1e2a4b-5c", &IDS);
        assert_eq!(
            args.join(" "),
            "--timeout=10 -- --may-exist add-port br-int tap3f1e2a4b-5c \
             -- set Interface tap3f1e2a4b-5c \
             external_ids:iface-id=3f1e2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b \
             external_ids:attached-mac=fa:16:3e:00:00:01 \
             external_ids:iface-status=active \
             external_ids:vm-uuid=ab12 external_ids:owner=kuryr"
        );
    }

    #[test]
    fn global_options_come_before_the_commands() {
        let cfg = VethConfig {
            ovs_timeout_secs: 3,
            ovs_db: Some("unix:/tmp/x/db.sock".into()),
            ovs_no_wait: true,
            ..Default::default()
        };
        let args = del_ports_args(&cfg, &["qvo3f1e2a4b-5c".into(), "tap3f1e2a4b-5c".into()]);
        assert_eq!(
            args,
            [
                "--timeout=3",
                "--db=unix:/tmp/x/db.sock",
                "--no-wait",
                "--",
                "--if-exists",
                "del-port",
                "qvo3f1e2a4b-5c",
                "--",
                "--if-exists",
                "del-port",
                "tap3f1e2a4b-5c"
            ]
        );
        let args = add_port_args(&cfg, "br-x", "tapx", &IDS);
        assert_eq!(
            &args[..4],
            ["--timeout=3", "--db=unix:/tmp/x/db.sock", "--no-wait", "--"]
        );
    }

    #[test]
    fn failure_carries_stderr_and_status() {
        let cfg = VethConfig {
            ovs_vsctl: PathBuf::from("sh"),
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(run(
                &cfg,
                "add-port tapx to br-int".into(),
                &[
                    "-c".into(),
                    "echo 'no bridge named br-int' >&2; exit 1".into(),
                ],
            ))
            .unwrap_err();
        let s = err.to_string();
        assert!(s.contains("add-port tapx to br-int"), "{s}");
        assert!(s.contains("no bridge named br-int"), "{s}");
        assert!(s.contains("exit status: 1"), "{s}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let cfg = VethConfig {
            ovs_vsctl: PathBuf::from("/nonexistent/ovs-vsctl"),
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt.block_on(run(&cfg, "x".into(), &[])).unwrap_err();
        assert!(matches!(err, BindError::OvsSpawn { .. }), "{err}");
        assert_eq!(err.errno(), Some(libc::ENOENT));
        assert!(err.to_string().contains("/nonexistent/ovs-vsctl"));
    }
}
