//! The lab's environment as the kuryr tests see it: what
//! `kuryr-test-support` has for every crate, plus the kuryr account's
//! client, Docker IDs and their tags, logs, the repository and command
//! output.

use std::path::PathBuf;
use std::process::Output;

use kuryr::names;
use kuryr::protocol::DockerId;
use kuryr_openstack::Neutron;
pub use kuryr_test_support::{Slot, account, eventually, host, lab_dir, random_u64, unique, var};

/// A Neutron client of the lab's `kuryr` account, with its own session (and
/// so its own call counters).
pub fn neutron() -> Neutron {
    kuryr_test_support::neutron("kuryr")
}

/// A random 64-hex Docker ID, as libnetwork makes them.
pub fn docker_id() -> String {
    (0..4).map(|_| format!("{:016x}", random_u64())).collect()
}

/// The `kuryr.net.uuid.lh:/uh:` tags of a Docker ID.
pub fn id_tags(id: &str) -> Vec<String> {
    names::id_tags(&DockerId::parse(id).expect("docker id"))
}

/// Logs of the driver under test go to the test's output.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "kuryr=info,kuryr_openstack=warn".into()),
        )
        .try_init();
}

/// The repository's top directory (for `lab/` scripts and `docs/`).
pub fn repo_root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// stdout and stderr of a finished command, trimmed, for messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_string()
}

/// (stdout, stderr) of a finished command.
pub fn stdout_stderr(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A scratch directory, created empty and removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// `$TMPDIR/<prefix><random>`.
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(prefix));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a scratch directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// A path inside the directory.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
