//! Network namespaces for the data-path tests: what Docker does with a
//! container's interface (move it into the sandbox, rename it, give it the
//! address and bring it up) and what the tests look at afterwards.
//!
//! This is the test harness, not the driver: it uses `ip` freely. Each
//! namespace is deleted when its [`NetNs`] is dropped (the virtual devices
//! in it go with it).

use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::env::output_text as text;

/// Run `ip ARGS` (in the host namespace); its output, success or not.
pub fn ip(args: &[&str]) -> (bool, String) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    (out.status.success(), text(&out))
}

/// `ip ARGS`, which must succeed.
pub fn ip_ok(args: &[&str]) -> String {
    let (ok, out) = ip(args);
    assert!(ok, "ip {} failed: {out}", args.join(" "));
    out
}

/// A named network namespace (`ip netns add`), deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    /// A fresh namespace with `lo` up. A leftover of the same name (from a
    /// killed run) is replaced.
    pub fn new(name: &str) -> NetNs {
        let _ = ip(&["netns", "del", name]);
        ip_ok(&["netns", "add", name]);
        let ns = NetNs {
            name: name.to_string(),
        };
        ns.ip_ok(&["link", "set", "lo", "up"]);
        ns
    }

    /// `/run/netns/NAME`, for `setns`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> (bool, String) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    pub fn ip_ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.ip(args);
        assert!(ok, "ip -n {} {} failed: {out}", self.name, args.join(" "));
        out
    }

    /// Run a command inside the namespace.
    pub fn exec(&self, cmd: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .output()
            .expect("run ip netns exec");
        (out.status.success(), text(&out))
    }

    /// `ip -d -j link show dev NAME` in this namespace, if it exists.
    pub fn link(&self, name: &str) -> Option<Value> {
        link_in(Some(self), name)
    }

    pub fn has_link(&self, name: &str) -> bool {
        self.link(name).is_some()
    }

    /// One ping (1 s deadline) to `ip`.
    pub fn ping_once(&self, ip: &str) -> bool {
        self.exec(&["ping", "-c", "1", "-W", "1", ip]).0
    }

    /// Does `ip` answer within `timeout`? (ARP and the agent's flows may
    /// need a moment.)
    pub fn pings(&self, ip: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.ping_once(ip) {
                return true;
            }
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// `ip` stays silent for a few consecutive tries.
    pub fn never_pings(&self, ip: &str, tries: usize) -> bool {
        (0..tries).all(|_| !self.ping_once(ip))
    }

    /// Do what Docker does with a container interface after Join: give it
    /// `addr` (CIDR) and bring it up as `ifname` (already moved in).
    pub fn configure(&self, ifname: &str, addr: &str) {
        self.ip_ok(&["addr", "add", addr, "dev", ifname]);
        self.ip_ok(&["link", "set", ifname, "up"]);
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// `ip -d -j link show dev NAME` in `ns` (`None`: the host namespace).
pub fn link_in(ns: Option<&NetNs>, name: &str) -> Option<Value> {
    let mut args: Vec<&str> = Vec::new();
    if let Some(ns) = ns {
        args.extend(["-n", ns.name.as_str()]);
    }
    args.extend(["-d", "-j", "link", "show", "dev", name]);
    let out = Command::new("ip").args(&args).output().expect("run ip");
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array().and_then(|a| a.first()).cloned()
}

/// Move `name` from `from` (`None`: the host namespace) into `to`,
/// renamed `new_name`: what Docker does at Join, and in reverse at Leave.
pub fn move_link(from: Option<&NetNs>, name: &str, to: Option<&NetNs>, new_name: &str) {
    let target = match to {
        Some(ns) => ns.name.clone(),
        // The host: PID 1's namespace.
        None => "1".to_string(),
    };
    let mut args: Vec<&str> = Vec::new();
    if let Some(ns) = from {
        args.extend(["-n", ns.name.as_str()]);
    }
    args.extend(["link", "set", "dev", name, "netns", target.as_str()]);
    ip_ok(&args);
    if name != new_name {
        let mut args: Vec<&str> = Vec::new();
        if let Some(ns) = to {
            args.extend(["-n", ns.name.as_str()]);
        }
        args.extend(["link", "set", "dev", name, "name", new_name]);
        ip_ok(&args);
    }
}

/// The link's `linkinfo.info_kind` (`macvlan`, `veth`, ...).
pub fn kind(link: &Value) -> &str {
    link["linkinfo"]["info_kind"].as_str().unwrap_or_default()
}

pub fn mac(link: &Value) -> &str {
    link["address"].as_str().unwrap_or_default()
}

pub fn mtu(link: &Value) -> u64 {
    link["mtu"].as_u64().unwrap_or_default()
}

/// Is this test running as root?
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Tests that need root fail without it, saying so (./run-tests runs as
/// root; a run that is not is misconfigured, not a pass).
pub fn require_root(what: &str) {
    assert!(
        is_root(),
        "{what} needs root (netlink, namespaces): run the tests as root"
    );
}

/// Run `body` with this thread in a fresh network namespace, on a
/// current-thread runtime, so nothing touches the host's interfaces. Works
/// under nextest (a process per test) and plain `cargo test` (a thread per
/// test: the namespace is per thread). `ip` commands the body runs inherit
/// the namespace of the thread that forks them.
pub fn in_netns<F, Fut>(test: &str, body: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    require_root(test);
    // SAFETY: unshare(CLONE_NEWNET) only changes the calling thread's
    // network namespace; no memory is involved. It runs before the runtime
    // and any socket exist, so all of them live in the new namespace.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(body());
}
