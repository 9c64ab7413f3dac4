//! A private `ovsdb-server` for tests of the OVS binding: its own database
//! and unix socket in a temporary directory, never the host's
//! `/run/openvswitch`, so tests can add bridges and ports freely (no
//! ovs-vswitchd runs: nothing reaches the datapath). No root needed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// A private ovsdb-server, killed and its directory removed on drop.
#[derive(Debug)]
pub struct OvsdbServer {
    dir: PathBuf,
    child: Child,
    db: String,
}

impl OvsdbServer {
    /// Start one for `test`; `None` (saying so on stderr) when Open vSwitch
    /// is not installed, so that the caller can skip.
    pub fn start(test: &str) -> Option<OvsdbServer> {
        let installed = Path::new(SCHEMA).exists()
            && Command::new("ovsdb-server")
                .arg("--version")
                .output()
                .is_ok();
        if !installed {
            eprintln!("{test}: skipped: Open vSwitch (ovsdb-server, ovs-vsctl) not installed");
            return None;
        }
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kuryr-ovsdb-{}-{}-{test}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("conf.db");
        let st = Command::new("ovsdb-tool")
            .arg("create")
            .arg(&conf)
            .arg(SCHEMA)
            .status()
            .unwrap();
        assert!(st.success(), "ovsdb-tool create");
        let sock = dir.join("db.sock");
        Some(OvsdbServer {
            db: format!("unix:{}", sock.display()),
            child: spawn(&dir),
            dir,
        })
    }

    /// Kill the server and start a new one on the same database and
    /// socket path (as a host's ovsdb-server restart does to clients).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.dir.join("db.sock"));
        self.child = spawn(&self.dir);
    }

    /// Its address, `unix:<dir>/db.sock` (ovs-vsctl's `--db`).
    pub fn db(&self) -> &str {
        &self.db
    }

    /// The server's process ID (to stop it with SIGSTOP, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Run `ovs-vsctl --no-wait` on this database; stdout on success,
    /// stderr on failure.
    pub fn vsctl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ovs-vsctl")
            .arg(format!("--db={}", self.db))
            .arg("--timeout=5")
            .arg("--no-wait")
            .args(args)
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// `external_ids:<key>` of Interface `iface`, unquoted.
    pub fn external_id(&self, iface: &str, key: &str) -> Option<String> {
        self.vsctl(&["get", "Interface", iface, &format!("external_ids:{key}")])
            .ok()
            .map(|s| s.trim_matches('"').to_string())
    }

    /// The ports of `bridge`, sorted.
    pub fn ports(&self, bridge: &str) -> Vec<String> {
        let out = self.vsctl(&["list-ports", bridge]).unwrap();
        out.lines().map(str::to_string).collect()
    }
}

/// ovsdb-server on `dir`'s `conf.db`, listening on `dir/db.sock`, once
/// the socket is there.
fn spawn(dir: &Path) -> Child {
    let sock = dir.join("db.sock");
    let child = Command::new("ovsdb-server")
        .arg(dir.join("conf.db"))
        .arg(format!("--remote=punix:{}", sock.display()))
        .arg(format!("--unixctl={}", dir.join("ovsdb.ctl").display()))
        .arg("--no-chdir")
        .env("OVS_RUNDIR", dir)
        .env("OVS_LOGDIR", dir)
        .env("OVS_DBDIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "ovsdb-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Drop for OvsdbServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
